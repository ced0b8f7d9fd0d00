"""Bounds on a deployment network's costs and stage count, at its input size and class count."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nas.budget import band, flops_text, parse_count
from nas.errors import ConfigError

if TYPE_CHECKING:
    from nas.spaces.space import Space

METRICS = ("flops", "params", "acts", "mac")


@dataclass(frozen=True)
class Constraints:
    """Bounds (low, high) on costs and the stage count of the deployment network, whose input
    size and class count they are measured at."""

    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    resolution: int = 224
    num_classes: int = 1000

    def with_budget(self, budget: int | None, ratio: float | None = None) -> Constraints:
        """These constraints with a FLOPs ceiling (and the band's floor) added."""
        if budget is None:
            return self
        low, high = band(budget, ratio) if ratio is not None else (0, budget)
        old_low, old_high = self.bounds.get("flops", (0, math.inf))
        return replace(self, bounds={**self.bounds,
                                     "flops": (max(low, old_low), min(high, old_high))})

    def admits(self, metric: str, value: float) -> bool:
        low, high = self.bounds.get(metric, (0, math.inf))
        return low <= value <= high

    def admits_costs(self, costs: Mapping[str, int]) -> bool:
        return all(self.admits(m, costs[m]) for m in METRICS)

    def violations(self, costs: Mapping[str, float]) -> list[str]:
        """``flops 412.3MF, not flops <= 400MF``: each cost in ``costs`` outside its bounds."""
        return [f"{m} {value_text(m, costs[m])}, not {_bound_text(m, *self.bounds[m])}"
                for m in costs if m in self.bounds and not self.admits(m, costs[m])]

    def to_dict(self) -> dict[str, dict[str, float]]:
        """The bounds as a space file writes them (the defaults 0 and infinity left out)."""
        return {m: {k: v for k, v in (("min", lo), ("max", hi)) if v not in (0, math.inf)}
                for m, (lo, hi) in self.bounds.items()}

    def __str__(self) -> str:
        parts = [_bound_text(m, lo, hi) for m, (lo, hi) in self.bounds.items()]
        return (f"{', '.join(parts) or 'no constraints'} at {self.resolution}x{self.resolution}, "
                f"{self.num_classes} classes")


def value_text(metric: str, value: float) -> str:
    return flops_text(value) if metric == "flops" else f"{value:g}"


def _bound_text(metric: str, low: float, high: float) -> str:
    if low == high:
        return f"{metric} = {value_text(metric, low)}"
    return " <= ".join([value_text(metric, low)] * (low > 0) + [metric]
                       + [value_text(metric, high)] * (high < math.inf))


def constraints_for(space: Space, budget: str | None = None, ratio: float | None = None,
                    resolution: int = 224, num_classes: int = 1000) -> Constraints:
    """The space's constraints at a resolution and class count, with a FLOPs budget string
    (and a band ratio) as the command line gives them."""
    if ratio is not None and budget is None:
        raise ConfigError("--band needs --budget: the band is a fraction of the budget")
    for name, value in (("resolution", resolution), ("num-classes", num_classes)):
        if value < 1:
            raise ConfigError(f"--{name}: must be a positive integer, got {value}")
    constraints = replace(space.constraints, resolution=resolution, num_classes=num_classes)
    return constraints.with_budget(parse_count(budget) if budget else None, ratio)
