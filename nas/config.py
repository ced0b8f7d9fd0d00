"""The network config: a stem, stages of block families and a head, as a plain value.

It round-trips through dicts, YAML and JSON; ``validate`` names the field at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from nas.blocks import FAMILIES, ConfigError, Stage
from nas.blocks.base import option, plain
from nas.blocks.layers import ACTIVATIONS
from nas.checks import check_keys, coerce, field_names, type_hints
from nas.errors import excerpt
from nas.yamlfile import parse_yaml

STEMS = ("simple", "resnet", "deep", "cifar", "shufflenet")


@dataclass(frozen=True)
class Stem:
    """simple: 3x3/2 conv (pycls); resnet: 7x7/2 conv + 3x3/2 max-pool; deep: ResNet-C's three
    3x3 convs (width/2, width/2, width; the first strided) + max-pool; cifar: 3x3/1 conv;
    shufflenet: 3x3/2 conv + 3x3/2 max-pool. ``norm: false`` leaves out the batch norm and
    activation after each conv (the first conv of the CIFAR DenseNets and PreResNets)."""

    kind: str = "simple"
    width: int = 32
    act: str = "relu"
    norm: bool = option(True)


@dataclass(frozen=True)
class Head:
    """Optional BN-ReLU (pre-activation networks), optional 1x1 conv to ``width``, global
    average pool, dropout and the linear classifier."""

    width: int = 0
    act: str = "relu"
    preact: bool = False
    dropout: float = 0.0


@dataclass(frozen=True)
class Network:
    stages: tuple[Stage, ...]
    stem: Stem = field(default_factory=Stem)
    head: Head = field(default_factory=Head)

    def widths(self) -> list[int]:
        """Output width of the stem and of every stage."""
        ws = [self.stem.width]
        for stage in self.stages:
            ws.append(stage.out_width(ws[-1]))
        return ws

    def validate(self) -> Network:
        _check_part("stem", self.stem, kind=STEMS, act=tuple(ACTIVATIONS))
        _check_positive("stem.width", self.stem.width)
        _check_part("head", self.head, act=tuple(ACTIVATIONS))
        if self.head.width < 0:
            raise ConfigError(f"head.width: must be 0 (no conv) or positive, got {self.head.width}")
        if not 0 <= self.head.dropout < 1:
            raise ConfigError(f"head.dropout: must be in [0, 1), got {self.head.dropout}")
        if not self.stages:
            raise ConfigError("stages: at least one stage is needed")
        w_in = self.stem.width
        for i, stage in enumerate(self.stages):
            try:
                stage.check(w_in)
            except ConfigError as e:
                raise ConfigError(f"stages[{i}].{e}") from None
            w_in = stage.out_width(w_in)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"stem": plain(self.stem), "stages": [s.to_dict() for s in self.stages],
                "head": plain(self.head)}

    @classmethod
    def from_dict(cls, data: Any) -> Network:
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a mapping with 'stages', got {excerpt(data)}")
        check_keys("config", data, {"stem", "stages", "head"})
        if not isinstance(data.get("stages"), list):
            raise ConfigError("stages: expected a list of stages")
        stages = tuple(_stage_from_dict(i, s) for i, s in enumerate(data["stages"]))
        stem = _typed("stem", Stem, data.get("stem") or {})
        head = _typed("head", Head, data.get("head") or {})
        return cls(stages, stem, head).validate()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Network:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, text: str) -> Network:
        return cls.from_dict(parse_yaml(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())


def _stage_from_dict(i: int, data: Any) -> Stage:
    where = f"stages[{i}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {excerpt(data)}")
    data = dict(data)
    name = data.pop("block", None)
    if name not in FAMILIES:
        raise ConfigError(f"{where}.block: unknown family {excerpt(name)}; "
                          f"choose from {', '.join(FAMILIES)}")
    cls = FAMILIES[name]
    return _typed(where, cls, data, required={"depth", cls.size})


def _typed(where: str, cls: type, data: Any, required: set[str] = frozenset()):
    """Build dataclass ``cls`` from a mapping, checking names, presence and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {excerpt(data)}")
    data = dict(data)
    hints = type_hints(cls)
    check_keys(where, data, field_names(cls))
    for f in fields(cls):
        if f.name in required and f.name not in data:
            raise ConfigError(f"{where}.{f.name}: missing")
        if f.name in data:
            data[f.name] = coerce(f"{where}.{f.name}", hints[f.name], data[f.name])
    return cls(**data)


def _check_part(where: str, part: Any, **choices: tuple[str, ...]) -> None:
    for name, allowed in choices.items():
        value = getattr(part, name)
        if value not in allowed:
            raise ConfigError(f"{where}.{name}: must be one of {', '.join(allowed)}, "
                              f"got {excerpt(value)}")


def _check_positive(where: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{where}: must be a positive integer, got {value}")
