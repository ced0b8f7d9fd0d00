"""FLOPs budgets: counts written like ``400MF``, ``1.6GF``, ``0.4G``, ``400M`` or ``4e8``.

A budget is a FLOPs ceiling of the deployment network (by default 224x224 input and 1000
classes, as in the RegNet paper). A band ``r`` adds the floor ``r * budget``, as pycls's design-
space studies compare networks of nearly equal cost.
"""

from __future__ import annotations

import math
import re

from nas.errors import ConfigError, excerpt

SCALES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
COUNT = re.compile(r"(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*([kmgt]?)f?", re.IGNORECASE)


def parse_count(text: str | float, what: str = "budget") -> int:
    """A positive count from a number or a string like 400MF (case and the F are optional)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = COUNT.fullmatch(str(text).strip())
        if not match:
            raise ConfigError(f"{what}: expected a count like 400MF, 1.6GF, 0.4G, 400M or 4e8, "
                              f"got {excerpt(text)}")
        number, exponent, unit = match.groups()
        value = float(number + (exponent or "")) * SCALES[unit.lower()]
    if not 1 <= value < math.inf:
        raise ConfigError(f"{what}: must be at least 1 and finite, got {excerpt(text)}")
    return round(value)


def band(ceiling: int, ratio: float) -> tuple[int, int]:
    """The FLOPs range [ratio * ceiling, ceiling] of a design-space study."""
    if not 0 < ratio < 1:
        raise ConfigError(f"band: must be a ratio in (0, 1), got {ratio:g}"
                          + " (a floor at the budget admits no network but one of exactly "
                            "the budget)" * (ratio == 1))
    return round(ratio * ceiling), ceiling


def count_text(n: float, suffix: str = "") -> str:
    """A count the way budgets are written, 4 digits at most: 400M, 1.814G (with ``suffix``
    F for FLOPs: 400MF)."""
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}{suffix}"
    return f"{n:.4g}{suffix}"


def flops_text(flops: float) -> str:
    """A FLOPs count the way budgets are written: 400MF, 1.6GF."""
    return count_text(flops, "F")
