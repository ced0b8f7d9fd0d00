"""Pareto fronts and hypervolume against hand-worked examples."""

import numpy as np
import pandas as pd
import pytest

from nas.search.pareto import dominated_volume, hypervolume, pareto_mask


def test_front_keeps_exactly_the_undominated_rows():
    table = pd.DataFrame({"accuracy": [70, 80, 75, 60, 80, 90],
                          "latency_ms": [10, 20, 15, 12, 25, 40]})
    # (60, 12) is beaten by (70, 10); (80, 25) by (80, 20); the rest trade off.
    assert pareto_mask(table, ["accuracy", "latency_ms"]).tolist() == \
        [True, True, True, False, False, True]


def test_front_of_one_objective_is_the_best_rows():
    table = pd.DataFrame({"flops": [5, 3, 3, 9]})
    assert pareto_mask(table, ["flops"]).tolist() == [False, True, True, False]


def test_hypervolume_of_a_staircase():
    table = pd.DataFrame({"accuracy": [50.0, 80.0, 40.0], "flops": [0.2, 0.6, 0.5]})
    # Boxes from the reference (0, 1): [0,50]x[0.2,1] and [0,80]x[0.6,1]; (40, 0.5) is inside.
    expected = 50 * 0.8 + (80 - 50) * 0.4
    assert hypervolume(table, ["accuracy", "flops"], [0.0, 1.0]) == pytest.approx(expected)


def test_points_beyond_the_reference_add_nothing():
    table = pd.DataFrame({"accuracy": [50.0], "flops": [1.5]})
    assert hypervolume(table, ["accuracy", "flops"], [0.0, 1.0]) == 0.0


def test_hypervolume_of_two_overlapping_boxes_in_three_objectives():
    table = pd.DataFrame({"flops": [1.0, 2.0], "params": [1.0, 2.0], "mac": [3.0, 1.0]})
    # Boxes to (4, 4, 4): 3*3*1 + 2*2*3, less their overlap [2,4]x[2,4]x[3,4].
    assert hypervolume(table, ["flops", "params", "mac"], [4.0, 4.0, 4.0]) == \
        pytest.approx(9 + 12 - 4)


def test_hypervolume_matches_counting_grid_cells():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(12, 3)).astype(float)
    grid = np.stack(np.meshgrid(*[np.arange(6) + 0.5] * 3, indexing="ij"), -1).reshape(-1, 3)
    covered = np.any(np.all(points[None, :, :] <= grid[:, None, :], axis=2), axis=1)
    assert dominated_volume(points, np.full(3, 6.0)) == pytest.approx(covered.sum())
