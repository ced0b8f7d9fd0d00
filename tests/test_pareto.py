"""Pareto fronts and hypervolume against hand-worked examples."""

import pandas as pd
import pytest

from nas.search.pareto import hypervolume_2d, pareto_mask


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
    assert hypervolume_2d(table, ["accuracy", "flops"], [0.0, 1.0]) == pytest.approx(expected)


def test_points_beyond_the_reference_add_nothing():
    table = pd.DataFrame({"accuracy": [50.0], "flops": [1.5]})
    assert hypervolume_2d(table, ["accuracy", "flops"], [0.0, 1.0]) == 0.0
