"""Helpers the test modules share (test modules never import each other)."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float = 300, every: float = 0.5) -> None:
    """Return once ``condition()`` is true; fail the test when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s"
        time.sleep(every)
