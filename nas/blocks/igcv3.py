"""IGCV3 block (Sun et al. 2018): MobileNetV2's inverted residual with group pointwise convs.

1x1 group conv of groups1 groups expanding to w_b = round(w_in * expansion) + BN + ReLU6, a
channel shuffle of groups1 groups (the permutation that lets every projection group see every
expansion group), 3x3 depthwise conv carrying the stride + BN + ReLU6, optional SE (squeeze
width round(se * w_in)), linear 1x1 group conv of groups2 groups to width + BN. The input is
added back when the stride is 1 and the widths are equal. The module is
:class:`nas.blocks.mobilenetv2.InvertedResidual`; as there, expansion 1 means no expansion conv.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.blocks.base import Stage, Unit, require
from nas.blocks.mobilenetv2 import InvertedResidual


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
            if self.expansion != 1:
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
        return [Unit(InvertedResidual, dict(w_in=w, w_out=self.width, stride=stride,
                                            expansion=self.expansion, se=self.se,
                                            groups1=self.groups1, groups2=self.groups2))
                for w, stride in self.block_inputs(w_in)]
