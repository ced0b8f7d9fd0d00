"""DenseNet-BC dense block (Huang et al. 2017), torchvision's layout.

Each dense layer is BN + ReLU + 1x1 conv to bottleneck * growth (no such conv when
``bottleneck`` is 0: the paper's DenseNet without B), BN + ReLU + 3x3 conv to growth new
features, optional SE on the new features (squeeze width round(se * growth), as
the layer's input can be far wider than what it adds), and returns its input concatenated with
them: the width grows by ``growth`` per layer. A stage of stride 2 starts with a transition:
BN + ReLU + 1x1 conv to int(w_in * compression), then 2x2 average pooling of stride 2 (ceil
mode, so odd sizes round up as everywhere else). Stride 1 means no transition, as for the first
stage of DenseNet-121. ``compression: 1.0`` keeps the width (the paper's DenseNet without C).
The network's final BN + ReLU is the head's ``preact``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit
from nas.blocks.layers import SE, PreactConv, se_width
from nas.checks import require
from nas.cost.complexity import Cx


class DenseLayer(nn.Module):
    def __init__(self, w_in: int, growth: int, bottleneck: int = 4, se: float = 0.0):
        super().__init__()
        w_se = se_width(se, growth)
        self.a = PreactConv(w_in, bottleneck * growth, 1) if bottleneck else None
        self.b = PreactConv(bottleneck * growth or w_in, growth, 3)
        self.se = SE(growth, w_se) if w_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.b(x if self.a is None else self.a(x))
        if self.se is not None:
            new = self.se(new)
        return torch.cat([x, new], 1)

    @staticmethod
    def complexity(cx: Cx, w_in: int, growth: int, bottleneck: int = 4, se: float = 0.0) -> Cx:
        w_se = se_width(se, growth)
        if bottleneck:
            PreactConv.complexity(cx, w_in, bottleneck * growth, 1)
        PreactConv.complexity(cx, bottleneck * growth or w_in, growth, 3)
        if w_se:
            cx.se(growth, w_se)
        return cx.elementwise(w_in + growth)  # concatenation: one copy


class Transition(nn.Sequential):
    def __init__(self, w_in: int, w_out: int):
        super().__init__()
        self.conv = PreactConv(w_in, w_out, 1)
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int) -> Cx:
        return PreactConv.complexity(cx, w_in, w_out, 1).pool(w_out, 2, 2)


@dataclass(frozen=True)
class DenseNet(Stage):
    """``depth`` dense layers, after a transition when the stride is 2."""

    block = "densenet"
    size = "growth"
    growth: int = 0
    bottleneck: int = 4
    compression: float = 0.5

    def transition_width(self, w_in: int) -> int:
        return int(w_in * self.compression) if self.stride == 2 else w_in

    def out_width(self, w_in: int) -> int:
        return self.transition_width(w_in) + self.depth * self.growth

    def check(self, w_in: int) -> None:
        super().check(w_in)
        require(self.bottleneck >= 0, "bottleneck",
                f"must be 0 (no 1x1 conv) or a positive integer, got {self.bottleneck}")
        require(0 < self.compression <= 1, "compression",
                f"must be in (0, 1], got {self.compression}")
        require(self.transition_width(w_in) >= 1, "compression",
                f"{self.compression} x input width {w_in} leaves no channels after the "
                "transition")

    def units(self, w_in: int) -> list[Unit]:
        w = self.transition_width(w_in)
        transition = [Unit(Transition, dict(w_in=w_in, w_out=w))] if self.stride == 2 else []
        return transition + [Unit(DenseLayer, dict(w_in=w + i * self.growth, growth=self.growth,
                                                   bottleneck=self.bottleneck, se=self.se))
                             for i in range(self.depth)]
