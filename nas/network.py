"""A network config made into a PyTorch module, and counted analytically the same way.

The module is ``stem``, ``s1`` ... ``sN`` (each an ``nn.Sequential`` of blocks ``b1`` ...) and
``head``: pycls's AnyNet layout, so parameter names read like ``s2.b1.a.conv.weight``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nas.blocks.base import Stage, Unit
from nas.blocks.layers import BNAct, ConvBN
from nas.config import Head, Network, Stem
from nas.cost.complexity import Complexity, Cx, StageCost
from nas.errors import ConfigError

STEM_CONV = {"simple": (3, 2), "resnet": (7, 2), "cifar": (3, 1), "shufflenet": (3, 2)}
POOLED_STEMS = ("resnet", "deep", "shufflenet")


class StemModule(nn.Sequential):
    def __init__(self, kind: str, w_out: int, act: str = "relu", *, norm: bool = True):
        super().__init__()
        if kind == "deep":
            self.conv1 = stem_conv(3, w_out // 2, 3, 2, act, norm)
            self.conv2 = stem_conv(w_out // 2, w_out // 2, 3, 1, act, norm)
            self.conv3 = stem_conv(w_out // 2, w_out, 3, 1, act, norm)
        else:
            k, stride = STEM_CONV[kind]
            self.conv = stem_conv(3, w_out, k, stride, act, norm)
        if kind in POOLED_STEMS:
            self.pool = nn.MaxPool2d(3, 2, 1)

    @staticmethod
    def complexity(cx: Cx, kind: str, w_out: int, act: str = "relu", *, norm: bool = True) -> Cx:
        convs = ([(3, w_out // 2, 3, 2), (w_out // 2, w_out // 2, 3, 1), (w_out // 2, w_out, 3, 1)]
                 if kind == "deep" else [(3, w_out, *STEM_CONV[kind])])
        for w_in, w, k, stride in convs:
            if norm:
                ConvBN.complexity(cx, w_in, w, k, stride)
            else:
                cx.conv(w_in, w, k, stride)
        if kind in POOLED_STEMS:
            cx.pool(w_out, 3, 2)
        return cx


def stem_conv(w_in: int, w_out: int, k: int, stride: int, act: str, norm: bool) -> nn.Module:
    """A stem convolution, with batch norm and ``act`` after it unless ``norm`` is false."""
    if norm:
        return ConvBN(w_in, w_out, k, stride, act=act)
    return nn.Conv2d(w_in, w_out, k, stride, k // 2, bias=False)


class HeadModule(nn.Module):
    def __init__(self, w_in: int, num_classes: int, width: int = 0, act: str = "relu",
                 preact: bool = False, dropout: float = 0.0):
        super().__init__()
        self.preact = BNAct(w_in) if preact else None
        self.conv = ConvBN(w_in, width, 1, act=act) if width else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc = nn.Linear(width or w_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact is not None:
            x = self.preact(x)
        if self.conv is not None:
            x = self.conv(x)
        x = self.pool(x).flatten(1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)

    @staticmethod
    def complexity(cx: Cx, w_in: int, num_classes: int, width: int = 0, act: str = "relu",
                   preact: bool = False, dropout: float = 0.0) -> Cx:
        if preact:
            BNAct.complexity(cx, w_in)
        if width:
            ConvBN.complexity(cx, w_in, width, 1, act=act)
        c = width or w_in
        return cx.global_pool(c).linear(c, num_classes)


@dataclass(frozen=True)
class Part:
    """A run of the layout that recurs across networks: the stem, a stage entered with ``w_in``
    channels, or the head (``w_in`` channels in, ``num_classes`` out). Parts equal as values
    expand to equal units, whatever their place (``name`` is left out of equality)."""

    name: str = field(compare=False)  # stem, s1 ..., head
    spec: Stem | Stage | Head
    w_in: int = 3
    num_classes: int = 0

    def units(self) -> list[Unit]:
        if isinstance(self.spec, Stem):
            stem = self.spec
            return [Unit(StemModule, dict(kind=stem.kind, w_out=stem.width, act=stem.act,
                                          norm=stem.norm))]
        if isinstance(self.spec, Head):
            head = self.spec
            return [Unit(HeadModule, dict(w_in=self.w_in, num_classes=self.num_classes,
                                          width=head.width, act=head.act, preact=head.preact,
                                          dropout=head.dropout))]
        return self.spec.units(self.w_in)

    def named_units(self) -> list[tuple[str, Unit]]:
        """The units with their names in the layout: the part's name, or ``s1.b1`` ... ."""
        units = self.units()
        if isinstance(self.spec, Stage):
            return [(f"{self.name}.b{j}", unit) for j, unit in enumerate(units, 1)]
        return [(self.name, unit) for unit in units]


def parts(config: Network, num_classes: int = 1000) -> list[Part]:
    """The network as parts, in order: the stem, each stage with its input width, the head."""
    result = [Part("stem", config.stem)]
    w_in = config.stem.width
    for i, stage in enumerate(config.stages, 1):
        result.append(Part(f"s{i}", stage, w_in))
        w_in = stage.out_width(w_in)
    return [*result, Part("head", config.head, w_in, num_classes)]


def layout(config: Network, num_classes: int = 1000) -> list[tuple[str, Unit]]:
    """The network as named units, in order: ``stem``, ``s1.b1`` ..., ``head``.

    The one expansion of a config that building, counting and latency tables all walk
    (:func:`parts` groups it into the runs that recur across networks).
    """
    return [named for part in parts(config, num_classes) for named in part.named_units()]


class Net(nn.Module):
    def __init__(self, config: Network, num_classes: int = 1000):
        super().__init__()
        for name, unit in layout(config.validate(), num_classes):
            stage, _, block = name.partition(".")
            if block:
                if not hasattr(self, stage):
                    self.add_module(stage, nn.Sequential())
                getattr(self, stage).add_module(block, unit.build())
            else:
                self.add_module(name, unit.build())
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


def init_weights(model: nn.Module) -> None:
    """pycls's initialization: He-normal convs (fan-out), unit BN, small normal classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def build(config: Network, num_classes: int = 1000) -> Net:
    """The module of the config; ConfigError, before anything is allocated, if its weights
    would not fit in memory."""
    check_fits(config, num_classes)
    return Net(config, num_classes)


def check_fits(config: Network, num_classes: int = 1000, resolution: int = 224,
               batch: int = 0) -> None:
    """Raise ConfigError, naming the network's size, when its float32 weights and the
    activations of ``batch`` images (the conv and linear outputs alone: less than running it
    takes) exceed the memory this machine has available."""
    counts = complexity(config, resolution, num_classes)
    needed = 4 * (counts.params + batch * counts.acts)
    available = available_memory()
    if needed > available:
        acts = (f" and {counts.acts:.3g} activations per {resolution}x{resolution} image"
                * (batch > 0))
        raise ConfigError(f"network too large: {counts.params:.3g} params{acts} need at least "
                          f"{needed / 2**30:.3g} GiB{f' at batch {batch}' * (batch > 0)}, "
                          f"and {available / 2**30:.3g} GiB of memory is available")


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else all RAM)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def complexity(config: Network, resolution: int = 224, num_classes: int = 1000) -> Complexity:
    """Analytic FLOPs, params, acts, MAC and receptive field, per stage and in total."""
    cx = Cx(resolution, resolution)
    ends: dict[str, tuple[int, ...]] = {}  # stem, s1 ...: flops, params, acts, mac, h, rf after
    for name, unit in layout(config, num_classes):
        unit.complexity(cx)
        ends[name.partition(".")[0]] = (cx.flops, cx.params, cx.acts, cx.mac, cx.h, cx.rf)
    totals = list(ends.values())
    stages = tuple(StageCost(stage.block, stage.depth, width, stage.stride,
                             *(a - b for a, b in zip(end[:4], start[:4])), *end[4:])
                   for stage, width, start, end
                   in zip(config.stages, config.widths()[1:], totals, totals[1:]))
    return Complexity(cx.flops, cx.params, cx.acts, cx.mac, stages[-1].receptive_field, stages)
