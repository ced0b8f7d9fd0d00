"""A design space: a generator, its free parameters, fixed settings and constraints, and the
rejection sampler of its feasible networks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import yaml

from nas.blocks import DEFAULT_FAMILY
from nas.config import Network
from nas.cost.complexity import Complexity
from nas.errors import ConfigError, NasError
from nas.generators import (
    assemble,
    regnet_stages,
    regnet_widths,
    rule_stages,
    stage_counts,
    stage_runs,
)
from nas.spaces.constraints import METRICS, Constraints, value_text
from nas.spaces.costs import cached_complexity
from nas.spaces.distributions import Param

BATCH = 512  # candidates drawn at a time
RULE = ("d", "w0", "wa", "wm")  # the parameters of the RegNet rule
GIVE_UP_DRAWS = 10_000  # draws after which a space accepting under 1 in 10,000 is given up


class Infeasible(NasError):
    """The constraints admit (next to) nothing of the space."""


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
        """The first n samples of :meth:`feasible`."""
        return list(islice(self.feasible(seed, constraints), n))

    def feasible(self, seed: int = 0, constraints: Constraints | None = None
               ) -> Iterator[Sample]:
        """Feasible samples, endlessly, by rejection sampling (the space's own constraints
        unless others are given).

        The stage count is checked for a whole batch from the parameters, then each network is
        counted once, exactly, from cached parts (:func:`cached_complexity`). Raises Infeasible
        when acceptance is below 1 in 10,000 after 10,000 draws.
        """
        limits = constraints or self.constraints
        rng = np.random.default_rng(seed)
        drawn = accepted = staged = 0  # staged: draws with an admitted number of stages
        bounded = [m for m in METRICS if m in limits.bounds]
        spans: dict[str, list[float]] = {}  # each bounded cost's least and greatest drawn
        invalid = None
        while accepted * 10_000 >= drawn or drawn < GIVE_UP_DRAWS:
            drawn += BATCH
            for values, net in self._candidates(rng, limits):
                staged += 1
                counted = cached_complexity(net, limits.resolution, limits.num_classes)
                costs = counted.totals()
                for m in bounded:
                    value, span = costs[m], spans.get(m)
                    if span is None:
                        spans[m] = [value, value]
                    elif value < span[0]:
                        span[0] = value
                    elif value > span[1]:
                        span[1] = value
                if not limits.admits_costs(costs):
                    continue
                try:
                    net.validate()
                except ConfigError as e:
                    invalid = e
                    continue
                accepted += 1
                yield Sample(values, net, counted)
        raise Infeasible(self._infeasible(drawn, accepted, staged, spans, invalid, limits))

    def neighbour(self, rng: np.random.Generator, values: Mapping[str, Any],
                  constraints: Constraints | None = None, scale: float = 0.05
                  ) -> Sample | None:
        """A sample near ``values`` (each parameter moved by its distribution's ``near``, a
        family's own settings drawn afresh when the family changes), or None when it is outside
        the constraints (the space's own unless others are given) or invalid."""
        near: dict[str, Any] = {}
        for p in self.params:
            if p.active(near):
                near[p.name] = (p.dist.near(rng, values[p.name], scale) if p.name in values
                                else p.dist.draw(rng, 1)[0])
        limits = constraints or self.constraints
        try:
            net = self.network(near)
        except ConfigError:
            return None
        if not limits.admits("stages", len(net.stages)):
            return None
        counted = cached_complexity(net, limits.resolution, limits.num_classes)
        return Sample(near, net, counted) if limits.admits_costs(counted.totals()) else None

    def _candidates(self, rng: np.random.Generator, limits: Constraints
                    ) -> Iterator[tuple[dict[str, Any], Network]]:
        """A batch of draws with an admitted number of stages, and their unvalidated networks."""
        rows = self.draw(rng, BATCH)
        if self.generator == "anynet":
            if limits.admits("stages", self.stages):
                yield from ((values, self._assemble(values)) for values in rows)
            return
        rule = [[row[k] if k in row else self.fixed[k] for row in rows] for k in RULE]
        widths = regnet_widths(*map(np.asarray, rule))
        low, high = limits.bounds.get("stages", (0, math.inf))
        counts = stage_counts(widths)
        for i in np.flatnonzero((low <= counts) & (counts <= high)).tolist():
            yield rows[i], self._assemble(rows[i], stage_runs(widths[i]))

    def _infeasible(self, drawn: int, accepted: int, staged: int,
                    spans: dict[str, list[float]], invalid: ConfigError | None,
                    limits: Constraints) -> str:
        found = (f"only {accepted} feasible networks" if accepted else "no feasible network")
        found = f"space {self.name}: {found} in {drawn} draws"
        if not staged:  # only a stage bound rejects a draw before it is counted
            low, high = limits.bounds["stages"]
            return f"{found}: none has {low:g} to {high:g} stages"
        if invalid is not None and not accepted:
            return f"{found}: the networks within the constraints are invalid ({invalid})"
        ranges = ", ".join(f"{m} {value_text(m, lo)} to {value_text(m, hi)}"
                           for m, (lo, hi) in spans.items())
        return f"{found}{'; the drawn networks have ' + ranges if ranges else ''} " \
               f"(constraints: {limits})"


def _for_family(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with ``family.field`` keys kept (unprefixed) only for the chosen block family."""
    block = settings.get("block", DEFAULT_FAMILY)
    return {k.removeprefix(f"{block}."): v for k, v in settings.items()
            if "." not in k or k.startswith(f"{block}.")}
