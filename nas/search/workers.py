"""Ray actors that proxy-train candidates: one per slot, each loading the data set once.

Actors rather than Ray Tune trials: a call to a live actor costs about a millisecond, a Tune
trial about 2.4 s of start-up on this machine (``benchmarks/search_overhead.py``), and the
actor keeps CIFAR-10 (memory-mapped) and torch warm between candidates.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ray

from nas.config import Network
from nas.evaluate.data import load
from nas.evaluate.proxy import ProxySettings
from nas.evaluate.ranking import SIGNALS
from nas.evaluate.signal import measure


@ray.remote
class Evaluator:
    def __init__(self, data: str | None, proxy: dict[str, Any], threads: int, signal: str):
        self.data = load(data)
        self.settings = dataclasses.replace(ProxySettings(**proxy), threads=threads)
        self.ranking = SIGNALS[signal]

    def evaluate(self, config_json: str, seed: int) -> tuple[dict[str, Any], dict | None]:
        """What the signal needs of the candidate (``nas.evaluate.signal.measure``), and the
        trained weights (None if it was not trained or failed)."""
        return measure(Network.from_json(config_json), self.data, self.ranking, self.settings,
                       seed)
