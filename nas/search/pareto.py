"""Pareto fronts and hypervolume over named objectives, each maximized or minimized."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Every objective the search knows, and whether it is maximized.
OBJECTIVES = {"accuracy": True, "latency_ms": False, "flops": False, "params": False,
              "mac": False}
#: Names users type on the command line, mapped to table columns.
ALIASES = {"accuracy": "accuracy", "latency": "latency_ms", "flops": "flops",
           "params": "params", "mac": "mac"}


def pareto_mask(table: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """Rows of ``table`` that no other row dominates on ``objectives`` (column names)."""
    return nondominated(costs(table, objectives))


def nondominated(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (costs, minimized) that no other row dominates."""
    keep = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        if keep[i]:
            keep &= ~(np.all(points[i] <= points, axis=1) & np.any(points[i] < points, axis=1))
    return keep


def hypervolume(table: pd.DataFrame, objectives: list[str], reference: list[float]) -> float:
    """Volume dominated by the rows and bounded by the ``reference`` point (in the objectives'
    own units and directions)."""
    ref = np.array([-r if OBJECTIVES[o] else r for o, r in zip(objectives, reference)])
    return dominated_volume(costs(table, objectives), ref)


def dominated_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Volume that ``points`` (rows of costs, minimized) dominate within the box below ``ref``:
    exact, by slicing along the last objective (fast for the few objectives and the fronts of
    tens of points a search has)."""
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:  # a staircase: each x to the next, below the best y so far
        points = points[np.argsort(points[:, 0])]
        widths = np.append(points[1:, 0], ref[0]) - points[:, 0]
        return float(np.sum(widths * (ref[1] - np.minimum.accumulate(points[:, 1]))))
    points = points[np.argsort(points[:, -1])]
    volume = 0.0
    for i in range(len(points)):
        top = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        if top > points[i, -1]:
            volume += (top - points[i, -1]) * dominated_volume(points[:i + 1, :-1], ref[:-1])
    return volume


def costs(table: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """Objectives as costs to minimize (maximized ones negated)."""
    return np.column_stack([-table[o].to_numpy(float) if OBJECTIVES[o] else table[o].to_numpy(float)
                            for o in objectives]) if len(table) else np.empty((0, len(objectives)))
