"""ResNeXt bottleneck (Xie et al. 2017), pycls's residual bottleneck block.

1x1 conv to w_b = round(width * bot_mul), 3x3 group conv of group width group_w carrying the
stride, optional SE (squeeze width round(se * w_in), of the block's input width), 1x1 conv to
width; ReLU after the sum with the shortcut. With bot_mul = 1 this is RegNetX, and with
se = 0.25 RegNetY. The shortcut is a projection when width or stride changes: a strided 1x1
conv + BN ("proj") or ResNet-D's 2x2 average pool then a 1x1 conv + BN ("avgpool").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit, require
from nas.blocks.layers import SE, ConvBN, se_width
from nas.cost.complexity import Cx

SHORTCUTS = ("proj", "avgpool")


class Shortcut(nn.Sequential):
    """Projection shortcut of a block that changes width or resolution."""

    def __init__(self, w_in: int, w_out: int, stride: int, kind: str = "proj"):
        super().__init__()
        if kind == "avgpool" and stride > 1:
            self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            stride = 1
        self.conv = nn.Conv2d(w_in, w_out, 1, stride, bias=False)
        self.bn = nn.BatchNorm2d(w_out)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, kind: str = "proj") -> Cx:
        with cx.branch():
            if kind == "avgpool" and stride > 1:
                cx.pool(w_in, stride, stride)
                stride = 1
            cx.conv(w_in, w_out, 1, stride).bn(w_out)
        return cx


class ResNeXtBlock(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                 se: float = 0.0, shortcut: str = "proj"):
        super().__init__()
        w_b = round(w_out * bot_mul)
        w_se = se_width(se, w_in)
        self.shortcut = (Shortcut(w_in, w_out, stride, shortcut)
                         if w_in != w_out or stride != 1 else None)
        self.a = ConvBN(w_in, w_b, 1)
        self.b = ConvBN(w_b, w_b, 3, stride, groups=w_b // group_w)
        self.se = SE(w_b, w_se) if w_se else None
        self.c = ConvBN(w_b, w_out, 1, act=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        x = self.b(self.a(x))
        if self.se is not None:
            x = self.se(x)
        return self.act(self.c(x) + identity)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                   se: float = 0.0, shortcut: str = "proj") -> Cx:
        w_b = round(w_out * bot_mul)
        w_se = se_width(se, w_in)
        if w_in != w_out or stride != 1:
            Shortcut.complexity(cx, w_in, w_out, stride, shortcut)
        ConvBN.complexity(cx, w_in, w_b, 1)
        ConvBN.complexity(cx, w_b, w_b, 3, stride, groups=w_b // group_w)
        if w_se:
            cx.se(w_b, w_se)
        ConvBN.complexity(cx, w_b, w_out, 1, act=None)
        return cx.elementwise(w_out, inputs=2).elementwise(w_out)


@dataclass(frozen=True)
class ResNeXt(Stage):
    block = "resnext"
    width: int = 0
    bot_mul: float = 1.0
    group_w: int = 1
    shortcut: str = "proj"

    def check(self, w_in: int) -> None:
        super().check(w_in)
        w_b = round(self.width * self.bot_mul)
        require(self.bot_mul > 0 and w_b >= 1, "bot_mul",
                f"must give a bottleneck width >= 1, got {self.bot_mul} x {self.width}")
        require(self.group_w >= 1, "group_w", f"must be a positive integer, got {self.group_w}")
        require(w_b % self.group_w == 0, "width",
                f"bottleneck width {w_b} (width {self.width} x bot_mul {self.bot_mul}) "
                f"is not divisible by group width {self.group_w}")
        require(self.shortcut in SHORTCUTS, "shortcut",
                f"must be one of {', '.join(SHORTCUTS)}, got {self.shortcut!r}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(ResNeXtBlock, dict(w_in=w, w_out=self.width, stride=stride,
                                        bot_mul=self.bot_mul, group_w=self.group_w, se=self.se,
                                        shortcut=self.shortcut))
                for w, stride in self.block_inputs(w_in)]
