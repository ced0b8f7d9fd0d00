"""What the residual families (``basic``, ``resnext``) share: the shortcut and the options.

A block that changes width or resolution needs a shortcut of its own:
``proj``
    a 1x1 conv carrying the stride, then batch norm (ResNet's option B);
``avgpool``
    ResNet-D's 2x2 average pool of stride 2 (ceil mode), then the 1x1 conv and batch norm;
``pad``
    ResNet's option A for CIFAR: the input subsampled with the stride and zero channels
    appended up to the output width; no parameters, and the width may only grow.
In pre-activation blocks the shortcut takes the pre-activated input and its conv has no
batch norm after it, as in He et al.'s identity-mappings networks.

``se_at`` places the squeeze-and-excitation gate: ``mid`` on the bottleneck before the last
conv, squeezed from the block's input width (RegNetY); ``out`` on the residual branch's
output after its last batch norm, squeezed from the output width (SENet, whose ratio 1/16 is
``se: 0.0625``).
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import choose
from nas.checks import require
from nas.cost.complexity import Cx

SHORTCUTS = ("proj", "avgpool", "pad")
SE_PLACES = ("mid", "out")


class Shortcut(nn.Sequential):
    """A projection shortcut: ``proj`` or ``avgpool``, with batch norm unless pre-activated."""

    def __init__(self, w_in: int, w_out: int, stride: int, kind: str = "proj", norm: bool = True):
        super().__init__()
        if kind == "avgpool" and stride > 1:
            self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            stride = 1
        self.conv = nn.Conv2d(w_in, w_out, 1, stride, bias=False)
        if norm:
            self.bn = nn.BatchNorm2d(w_out)


class PadShortcut(nn.Module):
    """Option A: the input subsampled with the stride, then zero channels up to ``w_out``."""

    def __init__(self, w_in: int, w_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = w_out - w_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))


def make_shortcut(w_in: int, w_out: int, stride: int, kind: str, norm: bool = True
             ) -> nn.Module | None:
    """The shortcut module of a block, or None when the input passes unchanged."""
    if w_in == w_out and stride == 1:
        return None
    if kind == "pad":
        return PadShortcut(w_in, w_out, stride)
    return Shortcut(w_in, w_out, stride, kind, norm)


def shortcut_complexity(cx: Cx, w_in: int, w_out: int, stride: int, kind: str,
                        norm: bool = True) -> Cx:
    if w_in == w_out and stride == 1:
        return cx
    with cx.branch():
        if kind == "pad":
            cx.subsample(w_in, w_out, stride)
        else:
            if kind == "avgpool" and stride > 1:
                cx.pool(w_in, stride, stride)
                stride = 1
            cx.conv(w_in, w_out, 1, stride)
            if norm:
                cx.bn(w_out)
    return cx


def check_residual(stage, w_in: int) -> None:
    """The checks of the options every residual family has."""
    choose("shortcut", stage.shortcut, SHORTCUTS)
    choose("se_at", stage.se_at, SE_PLACES)
    require(stage.shortcut != "pad" or stage.width >= w_in, "shortcut",
            f"pad (option A) cannot narrow input width {w_in} to width {stage.width}")
