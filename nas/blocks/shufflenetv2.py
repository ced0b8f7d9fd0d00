"""ShuffleNetV2 unit (Ma et al. 2018), torchvision's layout.

Each branch is w_out // 2 wide. The main branch is 1x1 conv + BN + ReLU, 3x3 depthwise conv
carrying the stride + BN (no activation), 1x1 conv + BN + ReLU, then the optional SE (squeeze
width round(se * w_in), of the unit's input width). The split unit (stride 1, equal widths)
splits the channels in halves, passes the first through and feeds the second to the main
branch. The two-branch unit (stride 2, or a change of width) feeds the whole input to both the
main branch and a side branch of 3x3 depthwise conv + BN then 1x1 conv + BN + ReLU. The branch
outputs are concatenated and channel-shuffled with 2 groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit
from nas.blocks.layers import SE, ConvBN, channel_shuffle, se_width
from nas.checks import require
from nas.cost.complexity import Cx


class ShuffleUnit(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int, se: float = 0.0):
        super().__init__()
        w_b = w_out // 2
        w_se = se_width(se, w_in)
        split = stride == 1 and w_in == w_out
        self.side = None if split else nn.Sequential(
            ConvBN(w_in, w_in, 3, stride, groups=w_in, act=None), ConvBN(w_in, w_b, 1))
        self.main = nn.Sequential(ConvBN(w_b if split else w_in, w_b, 1),
                                  ConvBN(w_b, w_b, 3, stride, groups=w_b, act=None),
                                  ConvBN(w_b, w_b, 1))
        if w_se:
            self.main.append(SE(w_b, w_se))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.side is None:
            passed, x = x.chunk(2, dim=1)
        else:
            passed = self.side(x)
        return channel_shuffle(torch.cat([passed, self.main(x)], 1), 2)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, se: float = 0.0) -> Cx:
        w_b = w_out // 2
        w_se = se_width(se, w_in)
        split = stride == 1 and w_in == w_out
        if not split:
            with cx.branch():
                ConvBN.complexity(cx, w_in, w_in, 3, stride, groups=w_in, act=None)
                ConvBN.complexity(cx, w_in, w_b, 1)
        ConvBN.complexity(cx, w_b if split else w_in, w_b, 1)
        ConvBN.complexity(cx, w_b, w_b, 3, stride, groups=w_b, act=None)
        ConvBN.complexity(cx, w_b, w_b, 1)
        if w_se:
            cx.se(w_b, w_se)
        return cx.elementwise(w_out).elementwise(w_out)  # concatenation, shuffle: a copy each


@dataclass(frozen=True)
class ShuffleNetV2(Stage):
    """The first unit is the two-branch one when the stride is 2 or the width changes."""

    block = "shufflenetv2"
    width: int = 0

    def check(self, w_in: int) -> None:
        super().check(w_in)
        require(self.width % 2 == 0, "width", f"must be even (two branches), got {self.width}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(ShuffleUnit, dict(w_in=w, w_out=self.width, stride=stride, se=self.se))
                for w, stride in self.block_inputs(w_in)]
