"""The accuracy signal measured: what a ranking (``nas.evaluate.ranking``) needs of a candidate
beyond its analytic counts, the zero-cost scores of its proxy network and its proxy training."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from nas.config import Network
from nas.evaluate import zero_cost
from nas.evaluate.data import Cifar10, to_tensor
from nas.evaluate.proxy import NUM_CLASSES, ProxySettings, evaluate, proxy_network
from nas.evaluate.ranking import Ranking
from nas.network import build

ZERO_COST_BATCH = 64  # training images the zero-cost scores see
ZERO_COST_WIDTH = 0.5  # the proxy network's width multiplier they are computed (and fitted) at


def score_batch(data: Cifar10) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed batch the zero-cost scores see: the first images of a seeded permutation."""
    order = np.random.default_rng(0).permutation(len(data.train_labels))[:ZERO_COST_BATCH]
    order.sort()
    return (to_tensor(data.train_images[order]),
            torch.from_numpy(np.asarray(data.train_labels[order])))


def measure(config: Network, data: Cifar10, ranking: Ranking, settings: ProxySettings,
            seed: int) -> tuple[dict[str, Any], dict | None]:
    """What ``ranking`` needs of a candidate beyond its analytic counts: the zero-cost scores of
    its proxy network at ``ZERO_COST_WIDTH``, and the proxy training if the ranking uses it
    (with its weights).

    Never raises: a failure is a record with status ``failed`` and the reason."""
    record: dict[str, Any] = {"status": "ok", "reason": ""}
    weights = None
    start = time.perf_counter()
    if ranking.zero_cost:
        try:
            torch.set_num_threads(settings.threads or os.cpu_count() or 1)
            torch.manual_seed(seed)
            model = build(proxy_network(config, ZERO_COST_WIDTH), NUM_CLASSES)
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
