"""Screening: each candidate a search scores is the best of many, chosen by cheap predictions.

A screen keeps a pool of the ``size`` feasible networks last drawn from the space
(``Space.feasible``: exact analytic costs, within every limit; a quarter of the pool is drawn
anew for each choice) and predicts each one's objectives without measuring anything:
``accuracy`` by the calibrated signal (exactly the run's signal when that is the default),
``latency_ms`` from the latency table where it has every unit of the network (exactly what the
candidate will be given), else by a least-squares fit of log latency on the log analytic
counts of the networks whose latency is known, and FLOPs, params and MAC exactly. Under a
latency budget, a pooled network predicted over it is dropped from the pool.

A table's sum carries the noise of the sessions that timed its units, and the pool's fastest
networks by the table are those that noise flatters most. Where the table states its noise
(``Table.sum_noise``), the screen therefore compares networks, scored and pooled, by their
expected latency (:class:`Shrinkage`): the table's sum drawn toward the counts' fit as far as
the sum's noise outweighs what the fit leaves unexplained. A latency budget still drops
networks by the table's sum, which is what a candidate is given and checked by.

It proposes the network with the most hypervolume gain per second: the hypervolume it would add
to the front of the scored candidates (the objectives scaled to the range of front and pool),
divided by what scoring it is expected to cost. A network whose units the table lacks costs a
measurement of them; the two costs are the median seconds (proposing plus scoring) of the
scored candidates that measured units and of those that did not (``MEASURE_COST`` times the
latter until both are known). Until ``STARTUP`` candidates are scored it proposes its newest
draw (a random feasible network; under a latency budget, the newest the table puts within it,
else the newest it cannot predict, never one it puts over it, drawing anew while it puts them
all over it), and when no pooled network would improve the front it proposes nothing, and
the sampler's own proposal is taken.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from nas.config import Network
from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features
from nas.latency import Key, Table, placed_keys
from nas.search.pareto import OBJECTIVES, dominated_volume, nondominated
from nas.spaces import Sample

STARTUP = 8  # scored candidates before the screen predicts (until then it draws at random)
COUNTS = ("flops", "params", "acts", "mac")  # what the latency fit predicts from
REDRAWN = 4  # a pool of N takes N / REDRAWN fresh draws per choice, dropping the oldest
MEASURE_COST = 10.0  # a candidate that measures units, in candidates that do not (a prior)
START_POOLS = 4  # whole pools a random start draws while the table puts every draw over budget


@dataclass(frozen=True)
class Lookup:
    """Latencies the table already knows, at its typical speed, as the search predicts them."""

    table: Table
    resolution: int
    num_classes: int

    def keys(self, network: Network) -> tuple[Key, ...]:
        return placed_keys(network, self.table.profile, self.resolution, self.num_classes)

    def parts(self) -> Callable[[Sequence[Key]], list[tuple[Key, float]] | None]:
        """A function of a network's keys: its entries as (key, milliseconds at the table's
        typical speed), or None if a unit is missing."""
        typical = self.table.typical_probe_ms() if len(self.table) else 1.0

        def parts(keys: Sequence[Key]) -> list[tuple[Key, float]] | None:
            entries = [self.table.get(k) for k in keys]
            return None if None in entries else [(k, e.ms_at(typical))
                                                 for k, e in zip(keys, entries)]
        return parts

    def known(self) -> Callable[[Sequence[Key]], Known | None]:
        """A function of a network's keys: its predicted latency and that prediction's noise
        (``Table.sum_noise``), or None if a unit is missing."""
        parts_of = self.parts()

        def known(keys: Sequence[Key]) -> Known | None:
            parts = parts_of(keys)
            if parts is None:
                return None
            return Known(sum(ms for _, ms in parts), self.table.sum_noise(parts))
        return known


class Known(NamedTuple):
    ms: float
    noise: float | None  # the standard deviation of the sum's log, if the table states it


@dataclass
class Pooled:
    sample: Sample
    keys: tuple[Key, ...] = field(default=())  # its latency-table keys, with a Lookup
    known: Known | None = None  # what the table predicts for it ...
    as_of: int = -1  # ... as of this ``Table.version``


class Screen:
    def __init__(self, pool: Iterator[Sample], size: int, columns: Sequence[str],
                 lookup: Lookup | None = None, latency_budget: float = math.inf):
        self.pool, self.size, self.columns, self.lookup = pool, size, list(columns), lookup
        self.latency_budget = latency_budget  # milliseconds, on the predicted latency
        self.signal = SIGNALS[DEFAULT_SIGNAL]  # analytic: it needs no measurement
        self.drawn: list[Pooled] = []  # the pool: the newest draws not chosen yet

    def choose(self, scored: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """The space's values of the pooled network that most improves the front of ``scored``
        (records with the objective columns, the analytic counts and their seconds) per expected
        second, or None; until ``STARTUP`` are scored, too few to predict from, :meth:`start`."""
        if len(scored) < STARTUP:
            return self.start()
        self._draw()
        known = self._known_latency()
        if self.latency_budget < math.inf:
            self._within_budget(self.predicted("latency_ms", scored, known))
            if not self.drawn:
                return None
            known = [p.known for p in self.drawn]
        predicted = np.column_stack([self.predicted(c, scored, known) for c in self.columns])
        front = np.array([[r[c] for c in self.columns] for r in scored], dtype=float)
        if "latency_ms" in self.columns and (expect := self._shrinkage(scored, known)):
            i = self.columns.index("latency_ms")
            front[:, i] = [expect(r, r["latency_ms"], self._noise(r)) for r in scored]
            predicted[:, i] = [ms if k is None else expect(p.sample.complexity.totals(), *k)
                               for ms, k, p in zip(predicted[:, i], known, self.drawn)]
        gains = improvements(_as_costs(front, self.columns), _as_costs(predicted, self.columns))
        if "latency_ms" in self.columns:  # a network the table lacks costs a measurement
            measure = measure_cost(scored)
            gains = gains / np.array([1.0 if ms is not None else measure for ms in known])
        best = int(np.argmax(gains))
        return self.drawn.pop(best).sample.values if gains[best] > 0 else None

    def start(self) -> dict[str, Any] | None:
        """A random start: the space's values of the newest draw; under a latency budget, the
        newest the table puts within it, else the newest it cannot predict, never one it puts
        over it (under a budget that binds, most draws are over it, and most are known to be
        only once their units are measured). While the table puts the whole pool over it, it
        draws again, ``START_POOLS`` whole pools in all, then returns None."""
        for _ in range(REDRAWN * START_POOLS):
            self._draw()
            if self.latency_budget == math.inf:
                return self.drawn.pop().sample.values
            self._within_budget([None if k is None else k.ms for k in self._known_latency()])
            if self.drawn:
                known_within = [i for i, p in enumerate(self.drawn) if p.known is not None]
                return self.drawn.pop(known_within[-1] if known_within else -1).sample.values
        return None

    def _within_budget(self, latencies: Sequence[float | None]) -> None:
        """Drops the pooled networks whose latency (None: not predicted) is over the budget."""
        self.drawn = [p for p, ms in zip(self.drawn, latencies)
                      if ms is None or ms <= self.latency_budget]

    def predicted(self, column: str, scored: Sequence[Mapping[str, Any]],
                  known: Sequence[Known | None]) -> list[float]:
        """The objective ``column`` of each pooled network, predicted without measuring it;
        ``known`` holds the latencies the table knows."""
        counts = [p.sample.complexity.totals() for p in self.drawn]
        if column == "accuracy":
            return [self.signal.score(features(c, self.signal.features)) for c in counts]
        if column == "latency_ms":
            fit = latency_fit(self._timed(scored, known))
            return [fit(c) if k is None else k.ms for c, k in zip(counts, known)]
        return [float(c[column]) for c in counts]

    def _timed(self, scored: Sequence[Mapping[str, Any]],
               known: Sequence[Known | None]) -> list[Mapping[str, Any]]:
        """Records of the networks whose latency the table gives, scored and pooled."""
        return [*scored, *({**p.sample.complexity.totals(), "latency_ms": k.ms,
                            "latency_noise": k.noise}
                           for p, k in zip(self.drawn, known) if k is not None)]

    def _shrinkage(self, scored: Sequence[Mapping[str, Any]],
                   known: Sequence[Known | None]) -> Shrinkage | None:
        """The expected latencies, if the table states its noise."""
        if self.lookup is None or self.lookup.table.session_noise() is None:
            return None
        timed = self._timed(scored, known)
        return Shrinkage.of(latency_fit(timed), [self._noise(r) for r in timed])

    def _noise(self, record: Mapping[str, Any]) -> float:
        """A latency's noise as the table stated it when it was predicted; one session's for
        one predicted before the table stated any."""
        noise = record.get("latency_noise")
        return self.lookup.table.session_noise() if noise is None else noise

    def _draw(self) -> None:
        """Pools ``size / REDRAWN`` fresh draws, dropping the oldest beyond ``size``."""
        fresh = [self._pooled(next(self.pool)) for _ in range(max(1, self.size // REDRAWN))]
        self.drawn = [*self.drawn, *fresh][-self.size:]

    def _pooled(self, sample: Sample) -> Pooled:
        return Pooled(sample, self.lookup.keys(sample.network) if self.lookup else ())

    def _known_latency(self) -> list[Known | None]:
        """Each pooled network's latency as the table predicts it, None where it lacks a unit."""
        if self.lookup is None:
            return [None] * len(self.drawn)
        version, known = self.lookup.table.version, None
        for p in self.drawn:  # predicted again only after the table has changed
            if p.as_of != version:
                if known is None:
                    known = self.lookup.known()
                p.known, p.as_of = known(p.keys), version
        return [p.known for p in self.drawn]


def measure_cost(scored: Sequence[Mapping[str, Any]]) -> float:
    """What a candidate that measures latency units costs, in candidates that measure none: the
    ratio of their median seconds (proposing and scoring), MEASURE_COST until both kinds were
    scored."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for r in scored:
        if "latency_measured" in r:
            seconds[r["latency_measured"] > 0].append(r.get("propose_seconds", 0.0)
                                                      + r.get("wall_seconds", 0.0))
    if not (seconds[True] and seconds[False]):
        return MEASURE_COST
    return max(1.0, statistics.median(seconds[True]) / max(1e-3, statistics.median(seconds[False])))


@dataclass(frozen=True)
class LatencyFit:
    """Latency as a power law of the analytic counts, and the variance of the log latencies
    it leaves unexplained (per degree of freedom)."""

    weights: np.ndarray
    residual_variance: float

    def __call__(self, counts: Mapping[str, int]) -> float:
        return float(np.exp(self.weights[0] + sum(
            w * math.log(counts[c]) for w, c in zip(self.weights[1:], COUNTS))))


def latency_fit(scored: Sequence[Mapping[str, Any]]) -> LatencyFit:
    """The fit of latency on the analytic counts, least squares in logs over ``scored``."""
    x = np.array([[1.0, *(math.log(r[c]) for c in COUNTS)] for r in scored])
    y = np.log([r["latency_ms"] for r in scored])
    weights = np.linalg.lstsq(x, y, rcond=None)[0]
    residuals = y - x @ weights
    return LatencyFit(weights, float(residuals @ residuals) / max(1, len(y) - x.shape[1]))


@dataclass(frozen=True)
class Shrinkage:
    """A network's expected latency, given the table's sum and the counts' fit: the mean of
    their logs weighted by their precisions (empirical Bayes). The sum's variance is its noise
    squared (``Table.sum_noise``); the fit's, ``prior_variance``, is the fit's residual
    variance less the part the sums' noise explains. Where that leaves nothing, the fit is
    taken."""

    fit: LatencyFit
    prior_variance: float  # of the true latencies' logs around the fit

    @classmethod
    def of(cls, fit: LatencyFit, noises: Sequence[float]) -> Shrinkage:
        """``noises``: those of the latencies ``fit`` was fitted on."""
        explained = statistics.fmean(noise ** 2 for noise in noises)
        return cls(fit, max(0.0, fit.residual_variance - explained))

    def weight(self, noise: float) -> float:
        """How far a sum with this noise is trusted over the fit, from 0 to 1."""
        total = self.prior_variance + noise ** 2
        return self.prior_variance / total if total else 1.0

    def __call__(self, counts: Mapping[str, int], ms: float, noise: float) -> float:
        fitted = self.fit(counts)
        return fitted * (ms / fitted) ** self.weight(noise)


def improvements(front: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The hypervolume each candidate row would add to ``front`` (costs, minimized), with every
    objective scaled to the range of both and the reference point 10% beyond the worst."""
    front = front[nondominated(front)]
    both = np.vstack([front, candidates])
    low, span = both.min(0), np.ptp(both, axis=0)
    span[span == 0] = 1.0
    front, candidates = (front - low) / span, (candidates - low) / span
    ref = np.full(front.shape[1], 1.1)
    base = dominated_volume(front, ref)
    return np.array([dominated_volume(np.vstack([front, c]), ref) - base for c in candidates])


def _as_costs(values: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    return np.column_stack([-values[:, i] if OBJECTIVES[c] else values[:, i]
                            for i, c in enumerate(columns)])
