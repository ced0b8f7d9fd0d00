"""The distributions of a space's free parameters: drawn in batches with numpy for rejection
sampling, or asked of an Optuna trial (and given back to it, :meth:`asked`); :meth:`near` gives
a value close to another (a local search's step).

``near(rng, value, scale)``: a normal step of ``scale`` times the range (in log units on a log
scale; on a grid, at least half a grid step), rounded to the grid and kept in range; a choice
is drawn afresh with probability ``scale``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Int:
    """Integers low, low + step, ..., high; ``log``: the multiples of step drawn log-uniformly."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def draw(self, rng: np.random.Generator, n: int) -> list[int]:
        if self.log:
            return (self.step * _log_int(rng, self.low // self.step, self.high // self.step, n)
                    ).tolist()
        return (self.low + self.step * rng.integers(0, self.count, n)).tolist()

    def near(self, rng: np.random.Generator, value: int, scale: float) -> int:
        if self.log:
            return self.step * round(_nudge(rng, value // self.step, self.low // self.step,
                                            self.high // self.step, scale, True))
        return self.low + self.step * round(_nudge(rng, (value - self.low) / self.step, 0,
                                                   self.count - 1, scale, False))

    def suggest(self, trial, name: str) -> int:
        if self.log and self.step > 1:  # Optuna's log scale takes no step: ask the multiple
            return self.step * trial.suggest_int(f"{name}/{self.step}", self.low // self.step,
                                                 self.high // self.step, log=True)
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def asked(self, name: str, value: int) -> dict[str, int]:
        """The Optuna parameter that makes :meth:`suggest` return ``value``."""
        if self.log and self.step > 1:
            return {f"{name}/{self.step}": value // self.step}
        return {name: value}

    @property
    def count(self) -> int:
        return (self.high - self.low) // self.step + 1

    def to_dict(self) -> dict[str, Any]:
        return _numeric("int", self.low, self.high, self.step != 1 and self.step, self.log)


@dataclass(frozen=True)
class Float:
    """Reals in [low, high], uniform or log-uniform, optionally quantized to multiples of step."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    def draw(self, rng: np.random.Generator, n: int) -> list[float]:
        if self.step and self.log:
            x = self.step * _log_int(rng, *self._multiples(), n)
        elif self.step:
            x = self.low + self.step * rng.integers(0, round((self.high - self.low) / self.step)
                                                    + 1, n)
        elif self.log:
            x = np.exp(rng.uniform(math.log(self.low), math.log(self.high), n))
        else:
            x = rng.uniform(self.low, self.high, n)
        return (np.round(x, 10) if self.step else x).tolist()

    def near(self, rng: np.random.Generator, value: float, scale: float) -> float:
        if not self.step:
            return _nudge(rng, value, self.low, self.high, scale, self.log, grid=False)
        if self.log:
            return round(self.step * round(_nudge(rng, value / self.step, *self._multiples(),
                                                  scale, True)), 10)
        return round(self.low + self.step * round(_nudge(
            rng, (value - self.low) / self.step, 0, round((self.high - self.low) / self.step),
            scale, False)), 10)

    def suggest(self, trial, name: str) -> float:
        if self.step and self.log:  # Optuna's log scale takes no step: ask the multiple
            k = trial.suggest_int(f"{name}/{self.step}", *self._multiples(), log=True)
            return round(k * self.step, 10)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def asked(self, name: str, value: float) -> dict[str, float]:
        if self.step and self.log:
            return {f"{name}/{self.step}": round(value / self.step)}
        return {name: value}

    def _multiples(self) -> tuple[int, int]:
        return round(self.low / self.step), round(self.high / self.step)

    def to_dict(self) -> dict[str, Any]:
        return _numeric("float", self.low, self.high, self.step, self.log)


@dataclass(frozen=True)
class Pow2:
    """Powers of two from low to high, uniform over the exponent (asked of Optuna as log2)."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator, n: int) -> list[float]:
        low, high = self._exponents()
        return [self._value(e) for e in rng.integers(low, high + 1, n).tolist()]

    def near(self, rng: np.random.Generator, value: float, scale: float) -> float:
        return self._value(round(_nudge(rng, math.log2(value), *self._exponents(), scale,
                                        False)))

    def suggest(self, trial, name: str) -> float:
        return self._value(trial.suggest_int(f"log2({name})", *self._exponents()))

    def asked(self, name: str, value: float) -> dict[str, int]:
        return {f"log2({name})": round(math.log2(value))}

    def _exponents(self) -> tuple[int, int]:
        return round(math.log2(self.low)), round(math.log2(self.high))

    def _value(self, e: int) -> float:
        return 2**e if e >= 0 else 2.0**e

    def to_dict(self) -> dict[str, Any]:
        return {"pow2": [self.low, self.high]}


@dataclass(frozen=True)
class Choice:
    """One of a list of values, uniform (categorical for Optuna)."""

    values: tuple

    def draw(self, rng: np.random.Generator, n: int) -> list:
        return [self.values[i] for i in rng.integers(0, len(self.values), n).tolist()]

    def near(self, rng: np.random.Generator, value: Any, scale: float) -> Any:
        return self.draw(rng, 1)[0] if rng.random() < scale else value

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def asked(self, name: str, value: Any) -> dict[str, Any]:
        return {name: value}

    def to_dict(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


def _numeric(kind: str, low: float, high: float, step: float | None, log: bool
             ) -> dict[str, Any]:
    return {kind: [low, high], **({"step": step} if step else {}), **({"log": True} if log else {})}


def _nudge(rng: np.random.Generator, x: float, low: float, high: float, scale: float,
           log: bool, grid: bool = True) -> float:
    """x moved by a normal step of scale times the range [low, high] (in log units if log),
    kept in the range; on a grid of integers the step's deviation is at least half of one
    (unless scale is 0), so that a short range moves too."""
    if log:
        x, low, high, least = math.log(x), math.log(low), math.log(high), math.log1p(0.5 / x)
    else:
        least = 0.5
    deviation = max(scale * (high - low), least if grid and scale else 0.0)
    moved = min(max(x + rng.normal(0.0, deviation), low), high)
    return math.exp(moved) if log else moved


def _log_int(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """Integers in [low, high], log-uniform over [low - 1/2, high + 1/2] then rounded."""
    x = np.exp(rng.uniform(math.log(low - 0.5), math.log(high + 0.5), n))
    return np.clip(np.rint(x), low, high).astype(int)


@dataclass(frozen=True)
class Param:
    """A free parameter; with ``when`` = (block parameter, family) it exists only for that
    family (a family's own setting in a space that chooses between families)."""

    name: str
    dist: Int | Float | Pow2 | Choice
    when: tuple[str, str] | None = None

    def active(self, values: Mapping[str, Any]) -> bool:
        return self.when is None or values.get(self.when[0]) == self.when[1]
