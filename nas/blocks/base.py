"""The block-family protocol: what a family declares so that nothing outside its file knows it.

A family is one file in ``nas/blocks/`` holding its module classes, each with a ``complexity``
static method that mirrors its constructor, and a frozen :class:`Stage` dataclass registered in
``nas/blocks/__init__.py``. The stage declares:

``block``
    the family's name in configs and spaces.
``size``
    the field that a generator's per-stage width sets: ``width`` (the default) or, for a
    family whose stages grow by a rate, that field (DenseNet's ``growth``). The proxy scales
    it, ``nas info`` and run tables print it.
``generated(settings)``
    a classmethod turning the settings a generator made (``width`` among them) into stage
    fields; the default renames ``width`` to ``size``. ResNeXt moves the width to the nearest
    one whose bottleneck divides into groups (pycls's compatibility step).
``generator_needs``
    fields a generator must be given, as it has no good default for them (ResNeXt's group
    width).
``resized(size)``
    the stage with its size field set to another value, and what must follow it (a ResNeXt
    stage of one group stays one group); the proxy's width multiplier uses it.
``check(w_in)``, ``units(w_in)``, ``out_width(w_in)``
    validation that names the field at fault, the blocks as :class:`Unit` values, and the
    width the stage ends with (by default its ``size``).
``info()``
    derived values that ``nas info`` shows beside the fields (ResNeXt's group count).

Fields made with :func:`option` are options: a config written before the option existed
stays the same value, because ``to_dict`` leaves an option out while it has its default. The
module classes take options as keyword-only arguments, which a latency table's key names only
when they differ from their default, so a family can gain options without invalidating
measured tables.

A residual module defines ``zero_init_last()``, which makes its residual branch output zero
(the scale of its last batch norm, or the weight of its last conv where no norm ends it):
the proxy's short trainings start every residual block as its shortcut.

Export copies the source of each unit class and, recursively, of every class, function and
UPPERCASE module constant of ``nas`` that it names, leaving out ``complexity``: a module's
``__init__`` and ``forward`` may use torch and such names, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from torch import nn

from nas.checks import require
from nas.cost.complexity import Cx


@dataclass(frozen=True)
class Unit:
    """One block as the network runs it: a module class and its constructor's arguments.

    ``cls(**kwargs)`` builds it, ``cls.complexity(cx, **kwargs)`` counts it and, with the
    input size, the pair keys latency tables."""

    cls: type[nn.Module]
    kwargs: dict[str, Any]

    def build(self) -> nn.Module:
        return self.cls(**self.kwargs)

    def complexity(self, cx: Cx) -> Cx:
        return self.cls.complexity(cx, **self.kwargs)


def option(default: Any) -> Any:
    """A stage field left out of the config's dict while it has its default."""
    return field(default=default, metadata={"option": True})


def plain(value: Any) -> dict[str, Any]:
    """A config part's fields as a dict, options at their default left out."""
    return {f.name: getattr(value, f.name) for f in fields(value)
            if not (f.metadata.get("option") and getattr(value, f.name) == f.default)}


@dataclass(frozen=True)
class Stage:
    """A run of ``depth`` blocks of one family, the first with ``stride``; ``se`` is the
    squeeze-and-excitation ratio (0: none). Subclasses add the family's own fields."""

    block: ClassVar[str]
    size: ClassVar[str] = "width"
    generator_needs: ClassVar[tuple[str, ...]] = ()
    depth: int
    stride: int = 2
    se: float = 0.0

    @classmethod
    def generated(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Stage fields from a generator's settings, whose ``width`` is this family's size."""
        if cls.size != "width" and "width" in settings:
            settings = dict(settings)
            settings[cls.size] = settings.pop("width")
        return settings

    def resized(self, size: int) -> Stage:
        """This stage with its size field set to ``size``."""
        return replace(self, **{self.size: size})

    def out_width(self, w_in: int) -> int:
        return getattr(self, self.size)

    def units(self, w_in: int) -> list[Unit]:
        """The blocks of this stage, given the width coming in."""
        raise NotImplementedError

    def block_inputs(self, w_in: int) -> list[tuple[int, int]]:
        """Input width and stride of each block: the first takes the stage's, the rest its
        output width and 1."""
        return [(w_in, self.stride)] + [(self.out_width(w_in), 1)] * (self.depth - 1)

    def check(self, w_in: int) -> None:
        """Raise ConfigError, naming the field, if the stage cannot be built after w_in."""
        require(self.depth >= 1, "depth", f"must be a positive integer, got {self.depth}")
        require(self.stride in (1, 2), "stride", f"must be 1 or 2, got {self.stride}")
        require(0 <= self.se < 1, "se", f"must be a ratio in [0, 1), got {self.se}")
        size = getattr(self, self.size)
        require(size >= 1, self.size, f"must be a positive integer, got {size}")

    def info(self) -> dict[str, Any]:
        """Values derived from the fields that ``nas info`` shows."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, **plain(self)}


def choose(name: str, value: Any, allowed: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    require(value in allowed, name,
            f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
