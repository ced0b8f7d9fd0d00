"""MobileNetV2 inverted residual (Sandler et al. 2018), torchvision's layout.

1x1 expansion conv to w_b = round(w_in * expansion) + BN + ReLU6 (omitted when expansion is 1),
k x k depthwise conv carrying the stride + BN + ReLU6, optional SE (after the depthwise conv,
squeeze width round(se * w_in), of the block's input width, as EfficientNet), then the linear
1x1 projection + BN. The input is added back when the stride is 1 and the widths are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit
from nas.blocks.layers import SE, ConvBN, se_width
from nas.checks import require
from nas.cost.complexity import Cx


class InvertedResidual(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int, expansion: float = 6.0,
                 kernel: int = 3, se: float = 0.0):
        super().__init__()
        w_b = round(w_in * expansion)
        w_se = se_width(se, w_in)
        self.expand = ConvBN(w_in, w_b, 1, act="relu6") if expansion != 1 else None
        self.depthwise = ConvBN(w_b, w_b, kernel, stride, groups=w_b, act="relu6")
        self.se = SE(w_b, w_se) if w_se else None
        self.project = ConvBN(w_b, w_out, 1, act=None)
        self.residual = stride == 1 and w_in == w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
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
                   kernel: int = 3, se: float = 0.0) -> Cx:
        w_b = round(w_in * expansion)
        w_se = se_width(se, w_in)
        if expansion != 1:
            ConvBN.complexity(cx, w_in, w_b, 1, act="relu6")
        ConvBN.complexity(cx, w_b, w_b, kernel, stride, groups=w_b, act="relu6")
        if w_se:
            cx.se(w_b, w_se)
        ConvBN.complexity(cx, w_b, w_out, 1, act=None)
        return cx.elementwise(w_out, inputs=2) if stride == 1 and w_in == w_out else cx


@dataclass(frozen=True)
class MobileNetV2(Stage):
    block = "mobilenetv2"
    width: int = 0
    expansion: float = 6.0
    kernel: int = 3

    def check(self, w_in: int) -> None:
        super().check(w_in)
        w_min = min(w_in, self.width)
        require(self.expansion > 0 and round(w_min * self.expansion) >= 1, "expansion",
                f"must give an expanded width >= 1, got {self.expansion} x {w_min}")
        require(self.kernel >= 1 and self.kernel % 2 == 1, "kernel",
                f"must be a positive odd integer, got {self.kernel}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(InvertedResidual, dict(w_in=w, w_out=self.width, stride=stride,
                                            expansion=self.expansion, kernel=self.kernel,
                                            se=self.se))
                for w, stride in self.block_inputs(w_in)]
