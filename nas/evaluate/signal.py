"""The accuracy signal: a linear ranking model over cheap features of a candidate.

A feature is oriented so that higher means more accurate: ``log_flops``, ``log_params``,
``log_acts`` and ``log_mac``, the analytic counts of the network as it would be fully trained
(the deployment network), the zero-cost scores of its
proxy network (``nas.evaluate.zero_cost``), and, where a candidate is proxy-trained, ``proxy``
(validation top-1) and ``sotl`` (minus the sum of training losses over the last epoch). The
score is a weighted sum of the standardized features, fitted by ridge regression of minus the
log of the published top-1 error on the tuning part of the ground truth
(``benchmarks/proxy_ground_truth.py``, which also reports each model's held-out rank
correlation). A score is given as the fully trained CIFAR-10 top-1 (%) the model predicts;
only the ranking it induces is measured, so read it as a rank, not as an accuracy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas.config import Network
from nas.evaluate import zero_cost
from nas.evaluate.data import Cifar10, to_tensor
from nas.evaluate.proxy import NUM_CLASSES, ProxySettings, evaluate, proxy_network
from nas.evaluate.zero_cost import SCORES
from nas.network import build

ZERO_COST_BATCH = 64  # training images the zero-cost scores see
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
        return tuple(f for f in self.features if f in SCORES)

    @property
    def needs_measurement(self) -> bool:
        """Whether a candidate must be built (zero-cost scores) or trained to be scored."""
        return self.needs_training or bool(self.zero_cost)


#: The signals a search can maximise, as ``benchmarks/proxy_ground_truth.py`` fitted them (its
#: ``fitted`` entries, rounded). ``calibrated``, the default, had the best leave-one-out tau on
#: the tuning networks and needs no measurement; ``zero-cost`` is the best with a zero-cost
#: score (about 2 s per 400MF candidate); ``proxy`` ranks by the proxy training alone.
SIGNALS = {
    "calibrated": Ranking(("log_flops", "log_params", "log_acts", "log_mac"),
                          (20.7367, 15.6571, 15.4081, 17.4092), (1.0476, 1.1459, 0.8292, 0.8484),
                          (0.0322, 0.0399, 0.0442, 0.069), -1.2323),
    "zero-cost": Ranking(("log_flops", "log_params", "naswot"), (20.7367, 15.6571, 898.9787),
                         (1.0476, 1.1459, 54.5605), (0.0441, 0.0564, 0.0869), -1.2323),
    "proxy": Ranking(("proxy",), (30.0,), (5.0,), (0.1,), -1.3),
}
DEFAULT_SIGNAL = "calibrated"


def features(measured: Mapping[str, float], names: Sequence[str]) -> list[float]:
    """The named features from a record of raw measurements (flops, params, scores, ...)."""
    return [math.log(measured[LOG_COUNTS[n]]) if n in LOG_COUNTS else float(measured[n])
            for n in names]


def available(measured: Mapping[str, float], names: Sequence[str]) -> bool:
    """Whether every named feature was measured and is finite (synflow overflows in float64
    for networks of several hundred layers)."""
    return all(math.isfinite(measured.get(LOG_COUNTS.get(n, n), math.nan)) for n in names)


def name(names: Sequence[str]) -> str:
    return "rank:" + "+".join(names)


def score_batch(data: Cifar10) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed batch the zero-cost scores see: the first images of a seeded permutation."""
    order = np.random.default_rng(0).permutation(len(data.train_labels))[:ZERO_COST_BATCH]
    order.sort()
    return (to_tensor(data.train_images[order]),
            torch.from_numpy(np.asarray(data.train_labels[order])))


def measure(config: Network, data: Cifar10, ranking: Ranking, settings: ProxySettings,
            seed: int) -> tuple[dict[str, Any], dict | None]:
    """What ``ranking`` needs of a candidate beyond its analytic counts: the zero-cost scores of
    its proxy network, and the proxy training if the ranking uses it (with its weights).

    Never raises: a failure is a record with status ``failed`` and the reason."""
    record: dict[str, Any] = {"status": "ok", "reason": ""}
    weights = None
    start = time.perf_counter()
    if ranking.zero_cost:
        try:
            torch.set_num_threads(settings.threads or os.cpu_count() or 1)
            torch.manual_seed(seed)
            model = build(proxy_network(config, settings.width_mult), NUM_CLASSES)
            record.update(zero_cost.scores(model, *score_batch(data), ranking.zero_cost))
        except Exception as e:  # one candidate's failure is its result, not the search's
            record.update(status="failed", reason=f"{type(e).__name__}: {e}")
        record["score_seconds"] = time.perf_counter() - start
    if ranking.needs_training and record["status"] == "ok":
        result = evaluate(config, data, settings, seed)
        weights = result.weights
        record.update(result.to_dict())
        record.pop("train_loss")
    return record, weights
