"""The accuracy signal's ranking model: a linear score over cheap features of a candidate.

A feature is oriented so that higher means more accurate: ``log_flops``, ``log_params``,
``log_acts`` and ``log_mac``, the analytic counts of the network as it would be fully trained
(the deployment network), the zero-cost scores of its proxy network
(``nas.evaluate.zero_cost``), and, where a candidate is proxy-trained, ``proxy`` (validation
top-1) and ``sotl`` (minus the sum of training losses over the last epoch). The score is a
weighted sum of the standardized features, fitted by ridge regression of minus the log of the
published top-1 error on the tuning part of the ground truth
(``benchmarks/proxy_ground_truth.py``, which also reports each model's held-out rank
correlation). A score is given as the fully trained CIFAR-10 top-1 (%) the model predicts;
only the ranking it induces is measured, so read it as a rank, not as an accuracy.

Nothing here needs torch: ``nas.evaluate.signal`` measures what a ranking needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RIDGE = 1.0  # on standardized features: shrinks the weights toward equal-footed averages
LOG_COUNTS = {"log_flops": "flops", "log_params": "params", "log_acts": "acts", "log_mac": "mac"}
TRAINED = ("proxy", "sotl")
CANDIDATES: tuple[tuple[str, ...], ...] = (  # the models the benchmark fits and reports
    ("proxy",),
    ("log_flops", "log_params"),
    ("log_acts",),
    ("log_flops", "log_params", "log_acts"),
    ("log_flops", "log_params", "log_acts", "log_mac"),
    ("log_flops", "log_params", "log_acts", "naswot"),
    ("log_flops", "log_params", "log_acts", "synflow"),
    ("log_flops", "log_params", "synflow"),
    ("log_flops", "log_params", "naswot"),
    ("log_flops", "log_params", "snip"),
    ("log_flops", "log_params", "naswot", "synflow"),
    ("log_flops", "log_params", "proxy"),
    ("log_flops", "log_params", "sotl"),
    ("log_flops", "log_params", "naswot", "proxy"),
)


@dataclass(frozen=True)
class Ranking:
    """score = 100 - exp(-(intercept + sum(weight * (feature - mean) / scale)))."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(cls, features: Sequence[str], x: Sequence[Sequence[float]],
            errors: Sequence[float], ridge: float = RIDGE) -> Ranking:
        """Ridge regression of -log(error) on the standardized features."""
        x = np.asarray(x, dtype=float)
        mean, scale = x.mean(0), x.std(0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        target = -np.log(np.asarray(errors, dtype=float))
        weights = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]),
                                  z.T @ (target - target.mean()))
        return cls(tuple(features), *(tuple(float(v) for v in a) for a in (mean, scale, weights)),
                   float(target.mean()))

    def score(self, values: Sequence[float]) -> float:
        logit = self.intercept + sum(w * (v - m) / s for w, v, m, s in
                                     zip(self.weights, values, self.mean, self.scale))
        return 100.0 - math.exp(-logit)

    @property
    def needs_training(self) -> bool:
        return any(f in TRAINED for f in self.features)

    @property
    def zero_cost(self) -> tuple[str, ...]:
        """The features that are zero-cost scores: neither analytic counts nor trained."""
        return tuple(f for f in self.features if f not in LOG_COUNTS and f not in TRAINED)

    @property
    def needs_measurement(self) -> bool:
        """Whether a candidate must be built (zero-cost scores) or trained to be scored."""
        return self.needs_training or bool(self.zero_cost)


#: The signals a search can maximise, as ``benchmarks/proxy_ground_truth.py`` fitted them (its
#: ``fitted`` entries, rounded). ``calibrated``, the default, needs no measurement and ranked
#: the held-out networks as well as ``zero-cost`` on CIFAR-10 (0.82 each on 14; 0.69 and 0.65 on
#: the 47 held out with the networks added later, params alone 0.70) and better on the ImageNet
#: RegNets (0.96 against 0.87; on all 24 of pycls's, 0.95 against 0.92, RegNetY above RegNetX at
#: 12 of 12 FLOPs levels against 9); ``zero-cost`` is the model with a zero-cost score the
#: tuning networks rank best (leave-one-out; about 0.4 s per 400MF candidate); ``proxy`` ranks
#: by the proxy training alone (centred on the default proxy's typical top-1).
SIGNALS = {
    "calibrated": Ranking(("log_flops", "log_params", "log_acts", "log_mac"),
                          (20.7367, 15.6571, 15.4081, 17.4092), (1.0476, 1.1459, 0.8292, 0.8484),
                          (0.0322, 0.0399, 0.0442, 0.069), -1.2323),
    "zero-cost": Ranking(("log_flops", "log_params", "naswot"), (20.7367, 15.6571, 884.4291),
                         (1.0476, 1.1459, 48.1736), (0.0132, 0.0675, 0.1048), -1.2323),
    "proxy": Ranking(("proxy",), (38.0,), (5.0,), (0.1,), -1.3),
}
DEFAULT_SIGNAL = "calibrated"


def features(measured: Mapping[str, float], names: Sequence[str]) -> list[float]:
    """The named features from a record of raw measurements (flops, params, scores, ...)."""
    return [math.log(measured[LOG_COUNTS[n]]) if n in LOG_COUNTS else float(measured[n])
            for n in names]


def available(measured: Mapping[str, float], names: Sequence[str]) -> bool:
    """Whether every named feature was measured and is finite (a score is missing where its
    measurement failed)."""
    return all(math.isfinite(measured.get(LOG_COUNTS.get(n, n), math.nan)) for n in names)


def name(names: Sequence[str]) -> str:
    return "rank:" + "+".join(names)
