"""What every block family provides: a stage value that expands into units.

A *unit* is one block as the network runs it: a module class and the keyword arguments of
its constructor. The same (class, kwargs) pair builds the module (``cls(**kwargs)``), counts
its cost (``cls.complexity(cx, **kwargs)``) and, with the input size, keys latency tables.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from torch import nn

from nas.cost.complexity import Cx
from nas.errors import ConfigError


@dataclass(frozen=True)
class Unit:
    cls: type[nn.Module]
    kwargs: dict[str, Any]

    def build(self) -> nn.Module:
        return self.cls(**self.kwargs)

    def complexity(self, cx: Cx) -> Cx:
        return self.cls.complexity(cx, **self.kwargs)


@dataclass(frozen=True)
class Stage:
    """A run of blocks of one family; subclasses add the family's own parameters."""

    block: ClassVar[str]
    depth: int
    stride: int = 2
    se: float = 0.0

    def out_width(self, w_in: int) -> int:
        return self.width

    def units(self, w_in: int) -> list[Unit]:
        """The blocks of this stage, given the width coming in."""
        raise NotImplementedError

    def block_inputs(self, w_in: int) -> list[tuple[int, int]]:
        """Input width and stride of each block: the first takes the stage's, the rest width, 1."""
        return [(w_in, self.stride)] + [(self.width, 1)] * (self.depth - 1)

    def check(self, w_in: int) -> None:
        """Raise ConfigError, naming the field, if the stage cannot be built after w_in."""
        require(self.depth >= 1, "depth", f"must be a positive integer, got {self.depth}")
        require(self.stride in (1, 2), "stride", f"must be 1 or 2, got {self.stride}")
        require(0 <= self.se < 1, "se", f"must be a ratio in [0, 1), got {self.se}")
        if hasattr(self, "width"):
            require(self.width >= 1, "width", f"must be a positive integer, got {self.width}")

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, **{f.name: getattr(self, f.name) for f in fields(self)}}


def require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")
