"""Layers shared by the block families, each with its complexity beside it."""

from __future__ import annotations

import torch
from torch import nn

from nas.cost.complexity import Cx

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class ConvBN(nn.Sequential):
    """k x k convolution (padding k // 2, no bias), batch norm, optional activation."""

    def __init__(self, w_in: int, w_out: int, k: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(w_in, w_out, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(w_out)
        if act:
            self.act = ACTIVATIONS[act](inplace=True)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, k: int = 1, stride: int = 1, groups: int = 1,
                   act: str | None = "relu") -> Cx:
        cx.conv(w_in, w_out, k, stride, groups).bn(w_out)
        return cx.elementwise(w_out) if act else cx


class BNAct(nn.Sequential):
    """Batch norm then ReLU, as pre-activation networks place them before a conv."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def complexity(cx: Cx, c: int) -> Cx:
        return cx.bn(c, folded=False).elementwise(c)


class PreactConv(nn.Sequential):
    """Batch norm, ReLU, then a k x k convolution (padding k // 2, no bias): the conv of
    pre-activation networks (DenseNet, PreResNet)."""

    def __init__(self, w_in: int, w_out: int, k: int = 1, stride: int = 1, groups: int = 1):
        super().__init__()
        self.preact = BNAct(w_in)
        self.conv = nn.Conv2d(w_in, w_out, k, stride, k // 2, groups=groups, bias=False)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, k: int = 1, stride: int = 1,
                   groups: int = 1) -> Cx:
        return BNAct.complexity(cx, w_in).conv(w_in, w_out, k, stride, groups)


class SE(nn.Module):
    """Squeeze-and-excitation: global pool, 1x1 conv to w_se, ReLU, 1x1 conv back, sigmoid gate."""

    def __init__(self, c: int, w_se: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(c, w_se, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(w_se, c, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))

    @staticmethod
    def complexity(cx: Cx, c: int, w_se: int) -> Cx:
        return cx.se(c, w_se)


def se_width(se: float, c: int) -> int:
    """Squeeze width for an SE ratio relative to c channels (0 means no SE)."""
    return max(1, round(se * c)) if se > 0 else 0


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
