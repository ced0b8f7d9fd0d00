"""IGCV3 block (Sun et al. 2018): MobileNetV2's inverted residual with group pointwise convs.

1x1 group conv of groups1 groups expanding to w_b = round(w_in * expansion) + BN + ReLU6, a
channel shuffle of groups1 groups (the permutation that lets every projection group see every
expansion group), 3x3 depthwise conv carrying the stride + BN + ReLU6, optional SE (squeeze
width round(se * w_in)), linear 1x1 group conv of groups2 groups to width + BN. The input is
added back when the stride is 1 and the widths are equal. Unlike MobileNetV2's block, an
expansion of 1 keeps its expansion conv, as the released IGCV3 networks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit
from nas.blocks.layers import SE, ConvBN, channel_shuffle, se_width
from nas.checks import require
from nas.cost.complexity import Cx


class IGCV3Block(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int, expansion: float = 6.0,
                 se: float = 0.0, groups1: int = 2, groups2: int = 2):
        super().__init__()
        w_b = round(w_in * expansion)
        w_se = se_width(se, w_in)
        self.expand = ConvBN(w_in, w_b, 1, groups=groups1, act="relu6")
        self.groups1 = groups1
        self.depthwise = ConvBN(w_b, w_b, 3, stride, groups=w_b, act="relu6")
        self.se = SE(w_b, w_se) if w_se else None
        self.project = ConvBN(w_b, w_out, 1, groups=groups2, act=None)
        self.residual = stride == 1 and w_in == w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        if self.groups1 > 1:
            y = channel_shuffle(y, self.groups1)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y

    def zero_init_last(self) -> None:
        if self.residual:
            nn.init.zeros_(self.project.bn.weight)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, expansion: float = 6.0,
                   se: float = 0.0, groups1: int = 2, groups2: int = 2) -> Cx:
        w_b = round(w_in * expansion)
        w_se = se_width(se, w_in)
        ConvBN.complexity(cx, w_in, w_b, 1, groups=groups1, act="relu6")
        if groups1 > 1:
            cx.elementwise(w_b)  # channel shuffle: one copy
        ConvBN.complexity(cx, w_b, w_b, 3, stride, groups=w_b, act="relu6")
        if w_se:
            cx.se(w_b, w_se)
        ConvBN.complexity(cx, w_b, w_out, 1, groups=groups2, act=None)
        return cx.elementwise(w_out, inputs=2) if stride == 1 and w_in == w_out else cx


@dataclass(frozen=True)
class IGCV3(Stage):
    block = "igcv3"
    width: int = 0
    expansion: float = 6.0
    groups1: int = 2
    groups2: int = 2

    def check(self, w_in: int) -> None:
        super().check(w_in)
        require(self.groups1 >= 1, "groups1", f"must be a positive integer, got {self.groups1}")
        require(self.groups2 >= 1, "groups2", f"must be a positive integer, got {self.groups2}")
        for w in {w for w, _ in self.block_inputs(w_in)}:
            w_b = round(w * self.expansion)
            require(self.expansion > 0 and w_b >= 1, "expansion",
                    f"must give an expanded width >= 1, got {self.expansion} x {w}")
            require(w % self.groups1 == 0, "groups1",
                    f"input width {w} is not divisible by groups1 {self.groups1}")
            require(w_b % self.groups1 == 0, "groups1",
                    f"expanded width {w_b} ({w} x expansion {self.expansion}) is not "
                    f"divisible by groups1 {self.groups1}")
            require(w_b % self.groups2 == 0, "groups2",
                    f"expanded width {w_b} ({w} x expansion {self.expansion}) is not "
                    f"divisible by groups2 {self.groups2}")
        require(self.width % self.groups2 == 0, "width",
                f"{self.width} is not divisible by groups2 {self.groups2}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(IGCV3Block, dict(w_in=w, w_out=self.width, stride=stride,
                                      expansion=self.expansion, se=self.se,
                                      groups1=self.groups1, groups2=self.groups2))
                for w, stride in self.block_inputs(w_in)]
