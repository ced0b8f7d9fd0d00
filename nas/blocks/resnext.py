"""ResNeXt bottleneck (Xie et al. 2017), pycls's residual bottleneck block, and its
pre-activation form (He et al. 2016, "Identity Mappings in Deep Residual Networks").

1x1 conv to w_b = round(width * bot_mul), 3x3 group conv of group width group_w, 1x1 conv to
width; ReLU after the sum with the shortcut (:mod:`nas.blocks.residual`). With bot_mul = 1
this is RegNetX, with se = 0.25 RegNetY, with group_w = w_b (one group) and bot_mul = 0.25
ResNet-50. The stride is on the 3x3 conv (``stride_at: middle``, ResNet v1.5 and pycls) or on
the first 1x1 conv (``first``, ResNet v1 and SENet as released in Caffe). ``se_at`` places the
optional SE gate. ``preact: true`` puts BN-ReLU before each conv instead of after it and
nothing after the sum (PreResNet-164).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from nas.blocks.base import Stage, Unit, choose, option
from nas.blocks.layers import SE, BNAct, ConvBN, PreactConv, se_width
from nas.blocks.residual import check_residual, make_shortcut, shortcut_complexity
from nas.checks import require
from nas.cost.complexity import Cx
from nas.errors import ConfigError

STRIDE_PLACES = ("middle", "first")


def strides(stride: int, stride_at: str) -> tuple[int, int]:
    """Strides of the first 1x1 conv and of the 3x3 conv."""
    return (stride, 1) if stride_at == "first" else (1, stride)


def se_gate(se: float, se_at: str, w_in: int, w_b: int, w_out: int) -> SE | None:
    """The SE module of a bottleneck: on w_b channels squeezed from w_in (``mid``) or on the
    w_out output channels squeezed from w_out (``out``)."""
    c, w_se = (w_b, se_width(se, w_in)) if se_at == "mid" else (w_out, se_width(se, w_out))
    return SE(c, w_se) if w_se else None


class ResNeXtBlock(nn.Module):
    """Post-activation: 1x1 conv + BN + ReLU, 3x3 group conv + BN + ReLU, 1x1 conv + BN, the
    sum with the shortcut, ReLU. Pre-activation: BN-ReLU, 1x1 conv, BN-ReLU, 3x3 group conv,
    BN-ReLU, 1x1 conv, the sum; the first BN-ReLU also feeds a shortcut that is not the
    identity."""

    def __init__(self, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                 se: float = 0.0, shortcut: str = "proj", *, preact: bool = False,
                 se_at: str = "mid", stride_at: str = "middle"):
        super().__init__()
        w_b = round(w_out * bot_mul)
        s1, s3 = strides(stride, stride_at)
        groups = w_b // group_w
        self.preact = BNAct(w_in) if preact else None
        self.shortcut = make_shortcut(w_in, w_out, stride, shortcut, norm=not preact)
        if preact:
            self.a = nn.Conv2d(w_in, w_b, 1, s1, bias=False)
            self.b = PreactConv(w_b, w_b, 3, s3, groups=groups)
        else:
            self.a = ConvBN(w_in, w_b, 1, s1)
            self.b = ConvBN(w_b, w_b, 3, s3, groups=groups)
        self.se = se_gate(se, se_at, w_in, w_b, w_out)
        self.se_at = se_at
        self.c = PreactConv(w_b, w_out, 1) if preact else ConvBN(w_b, w_out, 1, act=None)
        self.act = None if preact else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.preact is None else self.preact(x)
        identity = x if self.shortcut is None else self.shortcut(y)
        y = self.b(self.a(y))
        if self.se is not None and self.se_at == "mid":
            y = self.se(y)
        y = self.c(y)
        if self.se is not None and self.se_at == "out":
            y = self.se(y)
        y = y + identity
        return y if self.act is None else self.act(y)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.c.conv.weight if self.act is None else self.c.bn.weight)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                   se: float = 0.0, shortcut: str = "proj", *, preact: bool = False,
                   se_at: str = "mid", stride_at: str = "middle") -> Cx:
        w_b = round(w_out * bot_mul)
        s1, s3 = strides(stride, stride_at)
        if preact:
            BNAct.complexity(cx, w_in)
        if w_in != w_out or stride != 1:
            shortcut_complexity(cx, w_in, w_out, stride, shortcut, norm=not preact)
        if preact:
            cx.conv(w_in, w_b, 1, s1)
            PreactConv.complexity(cx, w_b, w_b, 3, s3, groups=w_b // group_w)
        else:
            ConvBN.complexity(cx, w_in, w_b, 1, s1)
            ConvBN.complexity(cx, w_b, w_b, 3, s3, groups=w_b // group_w)
        if se and se_at == "mid" and se_width(se, w_in):
            cx.se(w_b, se_width(se, w_in))
        if preact:
            PreactConv.complexity(cx, w_b, w_out, 1)
        else:
            ConvBN.complexity(cx, w_b, w_out, 1, act=None)
        if se and se_at == "out" and se_width(se, w_out):
            cx.se(w_out, se_width(se, w_out))
        cx.elementwise(w_out, inputs=2)
        return cx if preact else cx.elementwise(w_out)


def compatible(width: int, bot_mul: float, group_w: int) -> tuple[int, int]:
    """pycls's compatibility step; returns (width, group width).

    The group width becomes at most the bottleneck width w * b, which is rounded (half to even)
    to a multiple of it (and of b when b is an integer > 1); the width follows from it.
    """
    if width < 1 or group_w < 1 or bot_mul <= 0 or (bot_mul > 1 and bot_mul % 1):
        raise ConfigError(f"width {width}, bot_mul {bot_mul}, group_w {group_w}: need a positive "
                          "width and group width, and bot_mul below 1 or a positive integer")
    w_b = int(max(1, width * bot_mul))
    group_w = min(group_w, w_b)
    multiple = math.lcm(group_w, int(bot_mul)) if bot_mul > 1 else group_w
    w_b = max(multiple, round(w_b / multiple) * multiple)
    return int(w_b / bot_mul), group_w


@dataclass(frozen=True)
class ResNeXt(Stage):
    block = "resnext"
    generator_needs = ("group_w",)
    width: int = 0
    bot_mul: float = 1.0
    group_w: int = 1
    shortcut: str = "proj"
    preact: bool = option(False)
    se_at: str = option("mid")
    stride_at: str = option("middle")

    @classmethod
    def generated(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """The width and group width moved by :func:`compatible`."""
        settings = dict(settings)
        settings["width"], settings["group_w"] = compatible(
            settings.get("width", 0), settings.get("bot_mul", 1.0), settings.get("group_w", 1))
        return settings

    def resized(self, size: int) -> ResNeXt:
        """A stage of one group (a plain bottleneck, as ResNet-50's) stays one group."""
        if self.group_w != round(self.width * self.bot_mul):
            return replace(self, width=size)
        return replace(self, width=size, group_w=max(1, round(size * self.bot_mul)))

    def check(self, w_in: int) -> None:
        super().check(w_in)
        w_b = round(self.width * self.bot_mul)
        require(self.bot_mul > 0 and w_b >= 1, "bot_mul",
                f"must give a bottleneck width >= 1, got {self.bot_mul} x {self.width}")
        require(self.group_w >= 1, "group_w", f"must be a positive integer, got {self.group_w}")
        require(w_b % self.group_w == 0, "width",
                f"bottleneck width {w_b} (width {self.width} x bot_mul {self.bot_mul}) "
                f"is not divisible by group width {self.group_w}")
        check_residual(self, w_in)
        choose("stride_at", self.stride_at, STRIDE_PLACES)

    def info(self) -> dict[str, Any]:
        return {"group_width": self.group_w}

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(ResNeXtBlock, dict(w_in=w, w_out=self.width, stride=stride,
                                        bot_mul=self.bot_mul, group_w=self.group_w, se=self.se,
                                        shortcut=self.shortcut, preact=self.preact,
                                        se_at=self.se_at, stride_at=self.stride_at))
                for w, stride in self.block_inputs(w_in)]
