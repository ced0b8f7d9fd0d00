"""The screen: predictions from analytic counts, hypervolume gains, and the search it steers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.cli import main
from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features
from nas.network import complexity
from nas.search.screen import STARTUP, Screen, improvements, latency_fit
from nas.spaces import constraints_for, load_space


def test_latency_fit_recovers_a_power_law_of_the_counts():
    rng = np.random.default_rng(0)
    records = [dict(zip(("flops", "params", "acts", "mac"), rng.uniform(1e6, 1e9, 4)))
               for _ in range(12)]
    for r in records:
        r["latency_ms"] = 3.0 * r["flops"] ** 0.5 * r["mac"] ** 0.25
    fit = latency_fit(records[:8])
    for r in records[8:]:
        assert fit(r) == pytest.approx(r["latency_ms"], rel=1e-6)


def test_a_candidate_gains_what_it_adds_to_the_front_and_a_dominated_one_nothing():
    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    gains = improvements(front, np.array([[2.0, 2.0], [1.5, 1.5], [3.0, 3.0]]))
    assert gains[2] == 0 and 0 < gains[0] < gains[1]


def record(totals: dict) -> dict:
    """A network's record as a complete trial of the default signal holds it."""
    signal = SIGNALS[DEFAULT_SIGNAL]
    return {**totals, "accuracy": signal.score(features(totals, signal.features))}


def test_the_screen_draws_at_random_until_startup_then_improves_the_front():
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    screen = Screen(space.feasible(0, cx), 32, ["accuracy", "flops"])
    newest = space.sample(32 // 4, 0, cx)[-1]  # the pool's first draws, as the screen draws
    assert screen.choose([]) == newest.values  # nothing scored, nothing predicted
    scored = [record(s.complexity.totals()) for s in space.sample(STARTUP, 5, cx)]
    values = screen.choose(scored)
    assert values is not None and len(screen.drawn) == 2 * (32 // 4) - 2  # chosen ones left
    chosen = record(complexity(space.network(values)).totals())
    known = np.array([[-r["accuracy"], r["flops"]] for r in scored])
    assert improvements(known, np.array([[-chosen["accuracy"], chosen["flops"]]]))[0] > 0


def test_an_analytic_search_is_screened_and_starts_no_ray(tmp_path, capsys):
    """The default signal needs no data and no Ray: candidates are scored in the search's own
    process, and the screen's choices reach the study as drawn (so none is infeasible)."""
    import ray

    run = tmp_path / "run"
    assert main(["search", "--objectives", "accuracy,flops", "--trials", "30", "--data",
                 str(tmp_path / "none"), "--out", str(run)]) == 0
    assert not ray.is_initialized()
    assert capsys.readouterr().out.startswith(f"run folder: {run}\n")  # said before it starts
    assert (tmp_path / "latest").resolve() == run.resolve()  # the last run, by a fixed name
    trials = pd.read_csv(run / "trials.csv")
    screened = trials["screened"].fillna(False).astype(bool)
    complete = trials[trials["status"] == "complete"]
    assert len(complete) == 30 and (complete["flops"] <= 400e6).all()
    assert screened[trials["status"] == "complete"].sum() >= 25  # a few improved nothing
    assert set(trials[screened]["status"]) == {"complete"}
    assert set(pd.read_csv(run / "pareto.csv")["trial_id"]) <= set(complete["trial_id"])
