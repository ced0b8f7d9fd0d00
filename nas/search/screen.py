"""Screening: each candidate a search scores is the best of many, chosen by cheap predictions.

A screen keeps a pool of the ``size`` feasible networks last drawn from the space
(``Space.search``: exact analytic costs, within every limit; a quarter of the pool is drawn
anew for each choice) and predicts each one's objectives without measuring anything:
``accuracy`` by the calibrated signal (exactly the run's signal when that is the default),
``latency_ms`` by a least-squares fit of log latency on the log analytic counts of the
candidates scored so far, and FLOPs, params and MAC exactly. It proposes the network that
would add the most hypervolume to the front of the scored candidates, the objectives scaled
to the range of front and pool. Until ``STARTUP`` candidates are scored it proposes its newest
draw (a random feasible network), and when no pooled network would improve the front it
proposes nothing, and the sampler's own proposal is taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features
from nas.search.pareto import OBJECTIVES, dominated_volume, nondominated
from nas.spaces import Sample

STARTUP = 8  # scored candidates before the screen predicts (until then it draws at random)
COUNTS = ("flops", "params", "acts", "mac")  # what the latency fit predicts from
REDRAWN = 4  # a pool of N takes N / REDRAWN fresh draws per choice, dropping the oldest


class Screen:
    def __init__(self, pool: Iterator[Sample], size: int, columns: Sequence[str]):
        self.pool, self.size, self.columns = pool, size, list(columns)
        self.signal = SIGNALS[DEFAULT_SIGNAL]  # analytic: it needs no measurement
        self.drawn: list[Sample] = []  # the pool: the newest draws not chosen yet

    def choose(self, scored: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """The space's values of the pooled network that most improves the front of ``scored``
        (records with the objective columns and the analytic counts), or None."""
        fresh = [next(self.pool) for _ in range(max(1, self.size // REDRAWN))]
        self.drawn = [*self.drawn, *fresh][-self.size:]
        if len(scored) < STARTUP:  # too few to predict from: the newest draw, at random
            return self.drawn.pop().values
        predict = [self.predictor(c, scored) for c in self.columns]
        predicted = np.array([[p(s.complexity.totals()) for p in predict] for s in self.drawn])
        known = np.array([[r[c] for c in self.columns] for r in scored], dtype=float)
        gains = improvements(_as_costs(known, self.columns), _as_costs(predicted, self.columns))
        best = int(np.argmax(gains))
        return self.drawn.pop(best).values if gains[best] > 0 else None

    def predictor(self, column: str, scored: Sequence[Mapping[str, Any]]
                  ) -> Callable[[Mapping[str, int]], float]:
        """The objective ``column`` of a network, predicted from its analytic counts."""
        if column == "accuracy":
            return lambda counts: self.signal.score(features(counts, self.signal.features))
        if column == "latency_ms":
            return latency_fit(scored)
        return lambda counts: float(counts[column])


def latency_fit(scored: Sequence[Mapping[str, Any]]) -> Callable[[Mapping[str, int]], float]:
    """A predictor of latency from analytic counts, least squares in logs over ``scored``."""
    x = np.array([[1.0, *(math.log(r[c]) for c in COUNTS)] for r in scored])
    y = np.log([r["latency_ms"] for r in scored])
    weights = np.linalg.lstsq(x, y, rcond=None)[0]
    return lambda counts: float(np.exp(weights[0] + sum(
        w * math.log(counts[c]) for w, c in zip(weights[1:], COUNTS))))


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
