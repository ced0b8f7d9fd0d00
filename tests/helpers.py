"""Helpers the test modules share (test modules never import each other)."""

from __future__ import annotations

import time

from nas.config import Network
from nas.evaluate.settings import ProxySettings

#: A two-stage network that trains in a fraction of a second, and a recipe that does so.
TINY = Network.from_dict({"stem": {"kind": "simple", "width": 8}, "stages": [
    {"block": "resnext", "depth": 1, "width": 16, "group_w": 8},
    {"block": "resnext", "depth": 2, "width": 32, "group_w": 8}]})
QUICK = ProxySettings(epochs=1, train_images=100, val_images=50, batch_size=25, threads=1,
                      bn_batches=2)


def wait_for(condition, timeout: float = 300, every: float = 0.5) -> None:
    """Return once ``condition()`` is true; fail the test when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s"
        time.sleep(every)
