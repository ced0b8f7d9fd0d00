"""ResNet basic block (He et al. 2016): two 3x3 convs, the first carrying the stride.

Post-activation (ResNet-18/34, the CIFAR ResNet-20/56/110): 3x3 conv + BN + ReLU, 3x3 conv +
BN, the sum with the shortcut, ReLU. Pre-activation (``preact: true``; PreResNet, Wide ResNet):
BN-ReLU before each conv and nothing after the sum. ``dropout`` drops features between the two
convs (Wide ResNet). The shortcut (``proj``, ``avgpool`` or CIFAR's parameter-free ``pad``) and
the SE placement (``se_at``, by default ``out`` as in SENet) are those of
:mod:`nas.blocks.residual`; ``mid`` gates the first conv's output, squeezed from the input width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.blocks.base import Stage, Unit, option
from nas.blocks.layers import SE, BNAct, ConvBN, PreactConv, se_width
from nas.blocks.residual import check_residual, make_shortcut, shortcut_complexity
from nas.checks import require
from nas.cost.complexity import Cx


def basic_se(se: float, se_at: str, w_in: int, w_out: int) -> SE | None:
    """The SE module of a basic block, on its w_out channels after either conv."""
    w_se = se_width(se, w_in if se_at == "mid" else w_out)
    return SE(w_out, w_se) if w_se else None


def _se_complexity(cx: Cx, se: float, se_at: str, w_in: int, w_out: int, here: str) -> None:
    w_se = se_width(se, w_in if se_at == "mid" else w_out)
    if se_at == here and w_se:
        cx.se(w_out, w_se)


class BasicBlock(nn.Module):
    """Post-activation: 3x3 conv + BN + ReLU, 3x3 conv + BN, the sum with the shortcut, ReLU.
    Pre-activation: BN-ReLU, 3x3 conv, BN-ReLU, 3x3 conv, the sum; the first BN-ReLU also feeds
    a shortcut that is not the identity. Dropout comes just before the second conv."""

    def __init__(self, w_in: int, w_out: int, stride: int, se: float = 0.0,
                 shortcut: str = "proj", *, preact: bool = False, se_at: str = "out",
                 dropout: float = 0.0):
        super().__init__()
        self.preact = BNAct(w_in) if preact else None
        self.shortcut = make_shortcut(w_in, w_out, stride, shortcut, norm=not preact)
        if preact:
            self.a = nn.Conv2d(w_in, w_out, 3, stride, 1, bias=False)
            self.b = PreactConv(w_out, w_out, 3)
        else:
            self.a = ConvBN(w_in, w_out, 3, stride)
            self.b = ConvBN(w_out, w_out, 3, act=None)
        self.drop = nn.Dropout(dropout) if dropout else None
        self.se = basic_se(se, se_at, w_in, w_out)
        self.se_at = se_at
        self.act = None if preact else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.preact is None else self.preact(x)
        identity = x if self.shortcut is None else self.shortcut(y)
        y = self.a(y)
        if self.se is not None and self.se_at == "mid":
            y = self.se(y)
        if self.act is None:  # pre-activation: dropout between the BN-ReLU and the conv
            y = self.b.preact(y)
        if self.drop is not None:
            y = self.drop(y)
        y = self.b.conv(y) if self.act is None else self.b(y)
        if self.se is not None and self.se_at == "out":
            y = self.se(y)
        y = y + identity
        return y if self.act is None else self.act(y)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.b.conv.weight if self.act is None else self.b.bn.weight)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, se: float = 0.0,
                   shortcut: str = "proj", *, preact: bool = False, se_at: str = "out",
                   dropout: float = 0.0) -> Cx:
        if preact:
            BNAct.complexity(cx, w_in)
        shortcut_complexity(cx, w_in, w_out, stride, shortcut, norm=not preact)
        if preact:
            cx.conv(w_in, w_out, 3, stride)
        else:
            ConvBN.complexity(cx, w_in, w_out, 3, stride)
        _se_complexity(cx, se, se_at, w_in, w_out, "mid")
        if preact:
            PreactConv.complexity(cx, w_out, w_out, 3)
        else:
            ConvBN.complexity(cx, w_out, w_out, 3, act=None)
        _se_complexity(cx, se, se_at, w_in, w_out, "out")
        cx.elementwise(w_out, inputs=2)
        return cx if preact else cx.elementwise(w_out)


@dataclass(frozen=True)
class Basic(Stage):
    block = "basic"
    width: int = 0
    shortcut: str = "proj"
    preact: bool = option(False)
    se_at: str = option("out")
    dropout: float = option(0.0)

    def check(self, w_in: int) -> None:
        super().check(w_in)
        check_residual(self, w_in)
        require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(BasicBlock, dict(w_in=w, w_out=self.width, stride=stride, se=self.se,
                                      shortcut=self.shortcut, preact=self.preact,
                                      se_at=self.se_at, dropout=self.dropout))
                for w, stride in self.block_inputs(w_in)]
