"""Pareto fronts and hypervolume over named objectives, each maximized or minimized."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Every objective the search knows, and whether it is maximized.
OBJECTIVES = {"accuracy": True, "latency_ms": False, "flops": False, "params": False,
              "mac": False}
#: Names users type on the command line, mapped to table columns.
ALIASES = {"accuracy": "accuracy", "latency": "latency_ms", "flops": "flops",
           "params": "params", "mac": "mac"}


def pareto_mask(table: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """Rows of ``table`` that no other row dominates on ``objectives`` (column names)."""
    costs = _costs(table, objectives)
    n = len(costs)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if keep[i]:
            dominated = np.all(costs[i] <= costs, axis=1) & np.any(costs[i] < costs, axis=1)
            keep &= ~dominated
    return keep


def hypervolume_2d(table: pd.DataFrame, objectives: list[str], reference: list[float]) -> float:
    """Area dominated by the rows (two objectives) and bounded by the ``reference`` point."""
    costs = _costs(table, objectives)
    ref = np.array([-r if OBJECTIVES[o] else r for o, r in zip(objectives, reference)])
    costs = costs[np.all(costs < ref, axis=1)]
    area, best_y = 0.0, ref[1]
    for x, y in costs[np.argsort(costs[:, 0])]:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def _costs(table: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """Objectives as costs to minimize (maximized ones negated)."""
    return np.column_stack([-table[o].to_numpy(float) if OBJECTIVES[o] else table[o].to_numpy(float)
                            for o in objectives]) if len(table) else np.empty((0, len(objectives)))
