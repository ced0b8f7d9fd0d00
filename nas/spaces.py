"""Design spaces: a generator, its free parameters with their distributions, fixed settings and
constraints, loaded from YAML (``spaces/NAME.yaml``; the format is in ``spaces/README.md``).

A :class:`Space` draws parameter values with a numpy Generator (vectorized, for rejection
sampling) or asks an Optuna trial for them (define-by-run: a family's own parameters are asked
only when that family is chosen), turns values into a :class:`Network` deterministically, and
samples feasible networks under :class:`Constraints`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import groupby, islice
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nas.blocks import DEFAULT_FAMILY, FAMILIES, Stage, Unit
from nas.budget import band, flops_text, parse_count
from nas.checks import check_keys, check_types, field_names
from nas.config import Head, Network, Stem
from nas.cost.complexity import Complexity, Cx, StageCost
from nas.errors import ConfigError, NasError, excerpt
from nas.generators import (
    assemble,
    regnet_stages,
    regnet_widths,
    rule_stages,
    stage_counts,
    stage_runs,
)
from nas.network import layout
from nas.yamlfile import load_yaml

SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"
GENERATOR_SETTINGS = {"regnet": {"d", "w0", "wa", "wm", "block", "se"},
                      "anynet": {"block", "depth", "width", "stride", "se"}}
METRICS = ("flops", "params", "acts", "mac")
BATCH = 512  # candidates drawn at a time
CACHE_SIZE = 1 << 17  # part costs kept by cached_complexity
RULE = ("d", "w0", "wa", "wm")  # the parameters of the RegNet rule
PROBE = 10_000  # draws after which a space accepting under 1 in 10,000 is given up


class Infeasible(NasError):
    """The constraints admit (next to) nothing of the space."""


# --- distributions ---------------------------------------------------------------------------

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

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def asked(self, name: str, value: Any) -> dict[str, Any]:
        return {name: value}

    def to_dict(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


def _numeric(kind: str, low: float, high: float, step: float | None, log: bool
             ) -> dict[str, Any]:
    return {kind: [low, high], **({"step": step} if step else {}), **({"log": True} if log else {})}


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


# --- constraints -----------------------------------------------------------------------------

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

    def to_dict(self) -> dict[str, dict[str, float]]:
        """The bounds as a space file writes them (the defaults 0 and infinity left out)."""
        return {m: {k: v for k, v in (("min", lo), ("max", hi)) if v not in (0, math.inf)}
                for m, (lo, hi) in self.bounds.items()}

    def __str__(self) -> str:
        parts = [_bound_text(m, lo, hi) for m, (lo, hi) in self.bounds.items()]
        return (f"{', '.join(parts) or 'no constraints'} at {self.resolution}x{self.resolution}, "
                f"{self.num_classes} classes")


def _bound_text(metric: str, low: float, high: float) -> str:
    text = flops_text if metric == "flops" else "{:g}".format
    if low == high:
        return f"{metric} = {text(low)}"
    return " <= ".join([text(low)] * (low > 0) + [metric] + [text(high)] * (high < math.inf))


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


# --- the space -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    values: dict[str, Any]
    network: Network
    complexity: Complexity


@dataclass(frozen=True)
class Space:
    """A generator with free ``params`` (in asking order), ``fixed`` settings and constraints.

    For anynet the free parameters are per stage, named ``s1.depth``, ``s1.width``, ...; a
    family's own setting is named ``family.field`` (``s1.family.field``) when several families
    can be chosen.
    """

    name: str
    generator: str
    params: tuple[Param, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    stages: int = 0  # anynet's number of stages

    def to_dict(self) -> dict[str, Any]:
        """The space as its file writes it (per-stage parameters once, without the s1. scope)."""
        scope = "s1." if self.generator == "anynet" else ""
        return {"generator": self.generator, **({"stages": self.stages} if scope else {}),
                "params": {p.name.removeprefix(scope): p.dist.to_dict() for p in self.params
                           if p.name.startswith(scope)},
                "fixed": dict(self.fixed), "constraints": self.constraints.to_dict()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def draw(self, rng: np.random.Generator, n: int = 1) -> list[dict[str, Any]]:
        """n values drawn independently (inactive family parameters left out)."""
        columns = {p.name: p.dist.draw(rng, n) for p in self.params}
        rows = [dict(zip(columns, row)) for row in zip(*columns.values())] if columns \
            else [{} for _ in range(n)]
        conditional = [p for p in self.params if p.when]
        for row in rows:
            for p in conditional:
                if not p.active(row):
                    del row[p.name]
        return rows

    def suggest(self, trial) -> dict[str, Any]:
        """Values asked of an Optuna trial, define-by-run."""
        values: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                values[p.name] = p.dist.suggest(trial, p.name)
        return values

    def asked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna parameters that make :meth:`suggest` return ``values`` (to enqueue them)."""
        return {k: v for p in self.params if p.name in values
                for k, v in p.dist.asked(p.name, values[p.name]).items()}

    def network(self, values: Mapping[str, Any]) -> Network:
        """The network of these values and the fixed settings."""
        return self._assemble(values).validate()

    def _assemble(self, values: Mapping[str, Any], runs: list | None = None) -> Network:
        """The network before validation; ``runs``: the RegNet rule's stages, if known."""
        fixed = dict(self.fixed)
        parts = {k: fixed.pop(k) for k in ("stem", "head") if k in fixed}
        if self.generator == "regnet":
            settings = _for_family({**fixed, **values})
            rule = [settings.pop(k) for k in RULE]
            return assemble(rule_stages(runs or regnet_stages(*rule), **settings), **parts)
        stages = []
        for i in range(1, self.stages + 1):
            prefix = f"s{i}."
            own = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
            stages.append(_for_family({**fixed, **own}))
        return assemble(stages, **parts)

    def sample(self, n: int, seed: int = 0, constraints: Constraints | None = None
               ) -> list[Sample]:
        """The first n samples of :meth:`search`."""
        return list(islice(self.search(seed, constraints), n))

    def search(self, seed: int = 0, constraints: Constraints | None = None
               ) -> Iterator[Sample]:
        """Feasible samples, endlessly, by rejection sampling (the space's own constraints
        unless others are given).

        The stage count is checked for a whole batch from the parameters, then each network is
        counted once, exactly, from cached parts (:func:`cached_complexity`). Raises Infeasible
        when acceptance is below 1 in 10,000 after 10,000 draws.
        """
        cx = constraints or self.constraints
        rng = np.random.default_rng(seed)
        drawn = accepted = 0
        smallest = invalid = None
        while accepted * 10_000 >= drawn or drawn < PROBE:
            drawn += BATCH
            for values, net in self._candidates(rng, cx):
                counted = cached_complexity(net, cx.resolution, cx.num_classes)
                costs = counted.totals()
                if smallest is None or costs["flops"] < smallest["flops"]:
                    smallest = costs
                if not cx.admits_costs(costs):
                    continue
                try:
                    net.validate()
                except ConfigError as e:
                    invalid = e
                    continue
                accepted += 1
                yield Sample(values, net, counted)
        raise Infeasible(self._infeasible(drawn, accepted, smallest, invalid, cx))

    def _candidates(self, rng: np.random.Generator, cx: Constraints
                    ) -> Iterator[tuple[dict[str, Any], Network]]:
        """A batch of draws with an admitted number of stages, and their unvalidated networks."""
        rows = self.draw(rng, BATCH)
        if self.generator == "anynet":
            if cx.admits("stages", self.stages):
                yield from ((values, self._assemble(values)) for values in rows)
            return
        rule = [[row[k] if k in row else self.fixed[k] for row in rows] for k in RULE]
        widths = regnet_widths(*map(np.asarray, rule))
        low, high = cx.bounds.get("stages", (0, math.inf))
        counts = stage_counts(widths)
        for i in np.flatnonzero((low <= counts) & (counts <= high)).tolist():
            yield rows[i], self._assemble(rows[i], stage_runs(widths[i]))

    def _infeasible(self, drawn: int, accepted: int, smallest: dict | None,
                    invalid: ConfigError | None, cx: Constraints) -> str:
        found = (f"only {accepted} feasible networks" if accepted else "no feasible network")
        found = f"space {self.name}: {found} in {drawn} draws"
        if smallest is None:
            low, high = cx.bounds["stages"]
            return f"{found}: none has {low:g} to {high:g} stages"
        if invalid is not None and not accepted:
            return f"{found}: the networks within the constraints are invalid ({invalid})"
        least = ", ".join(f"{m} {flops_text(v) if m == 'flops' else v}"
                          for m, v in smallest.items())
        return f"{found}; the smallest drawn network has {least} (constraints: {cx})"


def cached_complexity(net: Network, resolution: int, num_classes: int) -> Complexity:
    """The network's complexity, equal to :func:`nas.network.complexity`'s, summed from cached
    costs of its parts: the stem, each stage (a function of the stage, its input width and
    size) and the head. A part grows the receptive field by a fixed multiple of the jump it is
    entered with, so that too adds up from the parts."""
    widths = net.widths()
    parts = [(net.stem,), *zip(net.stages, widths), (net.head, widths[-1], num_classes)]
    totals = [0, 0, 0, 0]
    stages = []
    h = w = resolution
    rf = jump = 1
    for i, part in enumerate(parts):
        key = (*part, h, w)
        if key not in _PART_COSTS:
            if len(_PART_COSTS) >= CACHE_SIZE:
                _PART_COSTS.clear()
            _PART_COSTS[key] = _cost(_units(net, part, num_classes), h, w)
        *cost, h, w, growth, stride = _PART_COSTS[key]
        rf, jump = rf + growth * jump, jump * stride
        totals = [t + c for t, c in zip(totals, cost)]
        if 0 < i < len(parts) - 1:
            stage = part[0]
            stages.append(StageCost(stage.block, stage.depth, widths[i], stage.stride, *cost,
                                    h, rf))
    return Complexity(*totals, stages[-1].receptive_field, tuple(stages))


_PART_COSTS: dict[tuple, tuple[int, ...]] = {}


def _units(net: Network, part: tuple, num_classes: int) -> list[Unit]:
    if isinstance(part[0], Stage):
        return part[0].units(part[1])
    name = "stem" if isinstance(part[0], Stem) else "head"
    return [unit for unit_name, unit in layout(net, num_classes) if unit_name == name]


def _cost(units: list[Unit], h: int, w: int) -> tuple[int, ...]:
    """Costs of a run of units, the size they leave, and their receptive-field growth (in units
    of the jump they are entered with) and stride; a unit repeated without changing the size or
    the jump (the blocks after a stage's first) is looked up once and multiplied."""
    totals = [0, 0, 0, 0]
    growth, stride = 0, 1
    for unit, run in groupby(units):
        left = len(list(run))
        while left:
            *cost, h_out, w_out, unit_growth, unit_stride = _unit_cost(
                unit.cls, tuple(unit.kwargs.items()), h, w)
            times = left if (h_out, w_out, unit_stride) == (h, w, 1) else 1
            totals = [t + times * c for t, c in zip(totals, cost)]
            growth += times * unit_growth * stride
            stride *= unit_stride
            h, w, left = h_out, w_out, left - times
    return *totals, h, w, growth, stride


@functools.lru_cache(maxsize=CACHE_SIZE)
def _unit_cost(cls: type, kwargs: tuple, h: int, w: int) -> tuple[int, ...]:
    cx = cls.complexity(Cx(h, w), **dict(kwargs))
    return cx.flops, cx.params, cx.acts, cx.mac, cx.h, cx.w, cx.rf - 1, cx.jump


def _for_family(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with ``family.field`` keys kept (unprefixed) only for the chosen block family."""
    block = settings.get("block", DEFAULT_FAMILY)
    return {k.removeprefix(f"{block}."): v for k, v in settings.items()
            if "." not in k or k.startswith(f"{block}.")}


# --- loading ---------------------------------------------------------------------------------

KINDS = {"int": Int, "float": Float, "pow2": Pow2, "choice": Choice}
GENERATED = {"depth", "width", "stride"}  # stage fields a generator sets (and the size field)


def available() -> list[str]:
    """Names of the shipped spaces."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def space_path(name: str) -> Path:
    """``spaces/NAME.yaml`` for a name, the path itself for a file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    if not (SPACES_DIR / f"{name}.yaml").exists():
        raise ConfigError(f"unknown space {excerpt(name)}; choose from {', '.join(available())} "
                          "or give a .yaml file")
    return SPACES_DIR / f"{name}.yaml"


def load_space(name: str) -> Space:
    """A shipped space by name, or a space file; errors name the file and the key."""
    path = space_path(name)
    data = load_yaml(path)
    try:
        return parse_space(path.stem, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_space(name: str, data: Any) -> Space:
    """A space from the mapping of a space file."""
    _expect_mapping("space", data)
    check_keys("space", data, {"generator", "stages", "params", "fixed", "constraints"})
    generator = data.get("generator")
    if generator not in GENERATOR_SETTINGS:
        raise ConfigError(f"generator: expected one of {', '.join(GENERATOR_SETTINGS)}, "
                          f"got {excerpt(generator)}")
    stages = data.get("stages", 0)
    if (generator == "anynet") != (isinstance(stages, int) and stages >= 1):
        raise ConfigError("stages: anynet needs the number of stages (a positive integer); "
                          "regnet takes none")
    params, fixed = (_expect_mapping(k, data.get(k) or {}) for k in ("params", "fixed"))
    dists = {k: _distribution(f"params.{k}", v) for k, v in params.items()}
    families = _families(dists.get("block"), fixed.get("block", DEFAULT_FAMILY))
    for where, keys in (("params", params), ("fixed", fixed)):
        for key in keys:
            _check_name(f"{where}.{key}", key, generator, families, where == "fixed")
    _check_fixed_types(fixed, families)
    if generator == "regnet" and {"d", "w0", "wa", "wm"} - set(params) - set(fixed):
        raise ConfigError("regnet needs d, w0, wa and wm, each in params or fixed")
    space = Space(name, generator, _expand(dists, stages, "block" in dists), fixed,
                  _constraints(data.get("constraints") or {}), stages)
    space.network(space.draw(np.random.default_rng(0))[0])  # settings the generator refuses
    return space


def _families(block: Choice | None, fixed_block: Any) -> tuple[str, ...]:
    families = block.values if isinstance(block, Choice) else (fixed_block,)
    if block is not None and not isinstance(block, Choice):
        raise ConfigError("params.block: expected {choice: [families]}")
    for family in families:
        if family not in FAMILIES:
            raise ConfigError(f"block: unknown family {excerpt(family)}; choose from "
                              f"{', '.join(FAMILIES)}")
    return families


def _check_name(where: str, key: str, generator: str, families: tuple[str, ...],
                fixed: bool) -> None:
    own = {f: field_names(FAMILIES[f]) - GENERATED - {FAMILIES[f].size} for f in families}
    allowed = (GENERATOR_SETTINGS[generator] | set.intersection(*map(set, own.values()))
               | {f"{f}.{name}" for f, names in own.items() for name in names}
               | ({"stem", "head"} if fixed else set()))
    if key not in allowed:
        raise ConfigError(f"{where}: not a setting of {generator} with block "
                          f"{' or '.join(families)}; expected one of {', '.join(sorted(allowed))}")


def _check_fixed_types(fixed: Mapping[str, Any], families: tuple[str, ...]) -> None:
    for part, cls in (("stem", Stem), ("head", Head)):
        if part in fixed:
            check_types(f"fixed.{part}", cls, _expect_mapping(f"fixed.{part}", fixed[part]))
    for key, value in fixed.items():
        family, _, name = key.rpartition(".")
        for f in [family] if family else families:
            check_types("fixed" + (f".{family}" if family else ""), FAMILIES[f], {name: value})


def _expand(dists: dict[str, Any], stages: int, chosen: bool) -> tuple[Param, ...]:
    """The free parameters in asking order (the block choice first), per stage for anynet."""
    order = sorted(dists, key=lambda k: k != "block")
    scopes = [f"s{i}." for i in range(1, stages + 1)] or [""]
    return tuple(Param(scope + key, dists[key],
                       (scope + "block", key.split(".")[0]) if chosen and "." in key else None)
                 for scope in scopes for key in order)


def _distribution(where: str, spec: Any) -> Int | Float | Pow2 | Choice:
    kinds = set(spec) & set(KINDS) if isinstance(spec, dict) else set()
    if len(kinds) != 1:
        raise ConfigError(f"{where}: expected a distribution {{int: [low, high]}}, "
                          f"{{float: [low, high]}} (either with step and log), "
                          f"{{pow2: [low, high]}} or {{choice: [values]}}; got {excerpt(spec)}")
    kind = kinds.pop()
    check_keys(where, spec, {kind, "step", "log"} if kind in ("int", "float") else {kind})
    bounds = spec[kind]
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{where}.choice: expected a non-empty list of values")
        return Choice(tuple(bounds))
    number = int if kind == "int" else (int, float)
    if not (isinstance(bounds, list) and len(bounds) == 2
            and all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
            and 0 <= bounds[0] <= bounds[1]):
        raise ConfigError(f"{where}.{kind}: expected [low, high] with 0 <= low <= high"
                          f"{' (integers)' if kind == 'int' else ''}, got {excerpt(bounds)}")
    low, high = bounds
    step, log = spec.get("step"), spec.get("log", False)
    if kind == "pow2":
        if low <= 0 or not all(math.log2(b).is_integer() for b in bounds):
            raise ConfigError(f"{where}.pow2: expected powers of two, got {excerpt(bounds)}")
        return Pow2(low, high)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {excerpt(log)}")
    if step is not None and not (isinstance(step, number) and step > 0
                                 and _multiple(high - low, step)
                                 and (not log or _multiple(low, step))):
        raise ConfigError(f"{where}.step: expected a positive {kind} dividing high - low"
                          f"{' and low' if log else ''}, got {excerpt(step)}")
    if log and low <= 0:
        raise ConfigError(f"{where}.log: a log scale needs low > 0, got {low}")
    if kind == "int":
        return Int(low, high, step or 1, log)
    return Float(float(low), float(high), step and float(step), log)


def _multiple(x: float, step: float) -> bool:
    return abs(x / step - round(x / step)) < 1e-9


def _constraints(spec: Any) -> Constraints:
    _expect_mapping("constraints", spec)
    check_keys("constraints", spec, {*METRICS, "stages"})
    bounds = {}
    for metric, limits in spec.items():
        where = f"constraints.{metric}"
        if not isinstance(limits, dict) or not limits or set(limits) - {"min", "max"}:
            raise ConfigError(f"{where}: expected {{min: ..., max: ...}} (either or both), "
                              f"got {excerpt(limits)}")
        low, high = (parse_count(limits[k], f"{where}.{k}") if k in limits else default
                     for k, default in (("min", 0), ("max", math.inf)))
        if low > high:
            raise ConfigError(f"{where}: min {low} is above max {high}")
        bounds[metric] = (low, high)
    return Constraints(bounds)


def _expect_mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {excerpt(value)}")
    return value
