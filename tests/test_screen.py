"""The screen: predictions from analytic counts, hypervolume gains, and the search it steers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nas.cli import main
from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features
from nas.latency import Entry, Profile, Table, placed_units, predict
from nas.latency.table import NOISE_SESSIONS
from nas.network import complexity
from nas.search.screen import (
    MEASURE_COST,
    REDRAWN,
    START_POOLS,
    STARTUP,
    LatencyFit,
    Lookup,
    Screen,
    Shrinkage,
    improvements,
    latency_fit,
    measure_cost,
)
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


def test_a_measurement_costs_the_ratio_of_median_seconds_and_the_prior_until_both_are_seen():
    cheap = [{"latency_measured": 0, "propose_seconds": s} for s in (0.1, 0.2, 0.3)]
    dear = [{"latency_measured": 2, "propose_seconds": 3.0, "wall_seconds": 1.0},
            {"latency_measured": 1, "propose_seconds": 5.0, "wall_seconds": 1.0}]
    assert measure_cost(cheap + dear) == pytest.approx(5.0 / 0.2)
    assert measure_cost(cheap) == measure_cost(dear) == MEASURE_COST
    assert measure_cost([{"latency_measured": 1, "propose_seconds": 0.1}, cheap[2]]) == 1.0


def table_knowing(path, network, total_ms: float) -> Table:
    """A table that knows every unit of ``network``, whose latency it predicts as ``total_ms``."""
    table = Table(path, Profile())
    units = [p.key(table.profile) for p in placed_units(network)]
    ms = total_ms / len(units)
    table.add(Entry(k, ms, ms, 0.0, 20, 2.0, "2025-01-01T00:00:00+00:00") for k in units)
    return table


@pytest.mark.parametrize("seconds_measuring", [1.0, 1e6])
def test_the_screen_takes_latency_the_table_knows_and_weighs_gains_by_cost(tmp_path,
                                                                            seconds_measuring):
    """A pooled network whose units the table knows is predicted as the table predicts it.
    Made barely faster than the fastest scored network at least as accurate, it adds a sliver
    of hypervolume: less
    than networks the table lacks, so it is not chosen while measuring costs nothing more, and
    it is while a measurement costs a million candidates."""
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    scored = [{**record(s.complexity.totals()), "latency_ms": 1.0 + s.complexity.flops / 1e8,
               "latency_measured": 1, "propose_seconds": seconds_measuring}
              for s in space.sample(STARTUP, 5, cx)]
    scored[0].update(latency_measured=0, propose_seconds=1.0)
    draws = space.sample(8, 0, cx)  # the pool's first draws, as the screen draws them
    accuracy = record(draws[3].complexity.totals())["accuracy"]
    fastest = min(r["latency_ms"] for r in scored if r["accuracy"] >= accuracy)
    table = table_knowing(tmp_path / "t.csv", draws[3].network, 0.9999 * fastest)
    lookup = Lookup(table, 224, 1000)
    assert lookup.known()(lookup.keys(draws[3].network)) == (
        pytest.approx(predict(draws[3].network, table).total_ms), None)  # states no noise
    assert lookup.known()(lookup.keys(draws[4].network)) is None
    screen = Screen(space.feasible(0, cx), 32, ["accuracy", "latency_ms"], lookup)
    assert (screen.choose(scored) == draws[3].values) == (seconds_measuring > 1)


def test_the_pools_latencies_are_predicted_again_when_the_table_changes(tmp_path):
    """The screen predicts a pooled network's latency once per version of the table: as the
    table predicts it now, also for a network whose units it learned after it was pooled."""
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    scored = [{**record(s.complexity.totals()), "latency_ms": 1.0 + s.complexity.flops / 1e8,
               "latency_measured": 0, "propose_seconds": 1.0}
              for s in space.sample(STARTUP, 5, cx)]
    table = table_knowing(tmp_path / "t.csv", space.sample(8, 0, cx)[3].network, 5.0)
    lookup = Lookup(table, 224, 1000)
    screen = Screen(space.feasible(0, cx), 32, ["accuracy", "latency_ms"], lookup)
    screen.choose(scored)
    learned = next(p for p in screen.drawn if p.known is None)
    remeasured = next(p for p in screen.drawn if p.known is not None)
    before = remeasured.known
    table.add([*(Entry(k, 0.1, 0.1, 0.0, 20, 2.0, "2025-01-02T00:00:00+00:00")
                 for k in set(learned.keys) if table.get(k) is None),
               Entry(remeasured.keys[-1], 9.0, 9.0, 0.0, 20, 2.0, "2025-01-03T00:00:00+00:00")])
    screen.choose(scored)
    assert learned.known is not None and remeasured.known.ms > before.ms
    now = lookup.known()
    assert all(p.known == now(p.keys) for p in screen.drawn)


def test_expected_latency_weighs_the_tables_sum_and_the_fit_by_their_precisions():
    fit = LatencyFit(np.array([0.0, 1.0, 0.0, 0.0, 0.0]), residual_variance=0.02)  # flops
    counts = {"flops": 100, "params": 1, "acts": 1, "mac": 1}
    shrinkage = Shrinkage.of(fit, noises=[0.1, 0.1, 0.05, 0.05])
    prior = 0.02 - (0.01 + 0.0025) / 2  # what the sums' noise leaves of the residual variance
    assert shrinkage.weight(0.1) == pytest.approx(prior / (prior + 0.01))
    assert shrinkage.weight(0.05) == pytest.approx(prior / (prior + 0.0025))
    assert shrinkage(counts, 50.0, 0.1) == pytest.approx(100 * 0.5 ** (prior / (prior + 0.01)))
    assert Shrinkage.of(fit, [0.0])(counts, 50.0, 0.0) == pytest.approx(50.0)  # exact sums
    assert Shrinkage.of(fit, [0.2])(counts, 50.0, 0.2) == pytest.approx(100.0)  # all noise


def law(counts) -> float:
    """A latency that is a power law of the analytic counts."""
    return 2e-4 * counts["flops"] ** 0.4 * counts["acts"] ** 0.3 * counts["mac"] ** 0.1


def test_expected_latencies_are_nearer_the_truth_than_a_noisy_tables_sums():
    """Networks whose true latency strays from a law of their counts by 8% (log standard
    deviation), timed with 7% noise: the expected latencies, fitted and weighed from the
    noisy sums alone, are nearer the truth than the sums by the precision-weighted figure."""
    rng = np.random.default_rng(0)
    space = load_space("regnet")
    counts = [s.complexity.totals() for s in space.sample(300, 0, constraints_for(space, "400MF"))]
    true = np.log([law(c) for c in counts]) + rng.normal(0, 0.08, len(counts))
    timed = true + rng.normal(0, 0.07, len(counts))
    fit = latency_fit([{**c, "latency_ms": np.exp(ms)} for c, ms in zip(counts, timed)])
    expect = Shrinkage.of(fit, [0.07] * len(counts))
    expected = np.log([expect(c, np.exp(ms), 0.07) for c, ms in zip(counts, timed)])
    error = np.std(expected - true) / np.std(timed - true)
    best = (1 / (1 / 0.08 ** 2 + 1 / 0.07 ** 2)) ** 0.5 / 0.07  # of the true weights: 0.75
    assert error == pytest.approx(best, abs=0.05)


def flattering_table(path, network, total_ms: float, stray: float) -> Table:
    """A table that predicts ``network`` as ``total_ms``; with a ``stray``, its units were
    measured again in NOISE_SESSIONS sessions that strayed by that log factor either way, as
    the table states."""
    table = table_knowing(path, network, total_ms)
    if stray:
        units = [p.key(table.profile) for p in placed_units(network)]
        ms = total_ms / len(units)
        for s in range(NOISE_SESSIONS + 2):  # as many up as down: the pool is unchanged
            factor = np.exp(stray if s % 2 else -stray)
            table.add(Entry(k, ms * factor, ms * factor, 0.0, 20, 2.0, f"2025-01-02T00:{s:02d}")
                      for k in units)
        assert table.session_noise() > stray and predict(network, table).total_ms == \
            pytest.approx(total_ms, rel=1e-4)  # as the file rounds them
    return table


def test_the_screen_does_not_chase_a_network_its_noisy_table_flatters(tmp_path):
    """A pooled network the table predicts at 40% of what its counts say, against scored
    networks whose latencies follow their counts exactly: chosen while the table states no
    noise (its sum is taken as it is) or states a noise far smaller than that distance (2%
    a session: the sum is trusted), not once it states noise that explains the distance (20%:
    its expected latency is the fit's, which adds nothing to the front)."""
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    scored = [{**record(s.complexity.totals()), "latency_measured": 1, "propose_seconds": 1e6}
              for s in space.sample(40, 5, cx)]
    for r in scored:
        r["latency_ms"] = law(r)
    scored[0].update(latency_measured=0, propose_seconds=1.0)
    front = np.array([[-r["accuracy"], r["latency_ms"]] for r in scored])

    def gain(sample, ms: float) -> float:
        return improvements(front, np.array([[-record(sample.complexity.totals())["accuracy"],
                                              ms]]))[0]

    draws = space.sample(8, 0, cx)  # the pool's first draws, as the screen draws them
    flattered = next(d for d in draws if gain(d, law(d.complexity.totals())) < 1e-9
                     and gain(d, 0.4 * law(d.complexity.totals())) > 0)
    for stray, chosen in ((0.0, True), (0.02, True), (0.2, False)):
        table = flattering_table(tmp_path / f"{stray}.csv", flattered.network,
                                 0.4 * law(flattered.complexity.totals()), stray)
        screen = Screen(space.feasible(0, cx), 32, ["accuracy", "latency_ms"],
                        Lookup(table, 224, 1000))
        assert (screen.choose(scored) == flattered.values) == chosen, stray


def test_under_a_latency_budget_the_screens_random_start_takes_what_the_table_puts_within(
        tmp_path):
    """Before it predicts, the screen proposes its newest draw; under a latency budget, the
    newest its table puts within the budget, else the newest it cannot predict, never one it
    puts over it. While it puts all of them over it, it draws again, and gives up (proposes
    nothing) after START_POOLS whole pools."""
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    rounds = REDRAWN * START_POOLS  # pool 32: 8 draws a round
    draws = space.sample(8 * rounds, 0, cx)  # the pool's draws, as the screen draws them

    def first(table: Table, latency_budget: float = float("inf")):
        screen = Screen(space.feasible(0, cx), 32, ["accuracy", "latency_ms"],
                        Lookup(table, 224, 1000), latency_budget)
        return screen.choose([]), screen.drawn

    table_knowing(tmp_path / "fast.csv", draws[2].network, 1.0)
    fast = table_knowing(tmp_path / "fast.csv", draws[4].network, 1.0)
    assert first(fast)[0] == draws[7].values  # no budget: the newest draw
    assert first(fast, 10.0)[0] == draws[4].values
    slow = table_knowing(tmp_path / "slow.csv", draws[7].network, 100.0)
    chosen, pool = first(slow, 10.0)
    assert chosen == draws[6].values
    assert draws[7].values not in [p.sample.values for p in pool]
    for d in draws[:8]:
        slower = table_knowing(tmp_path / "slower.csv", d.network, 100.0)
    chosen, pool = first(slower, 10.0)
    assert chosen == draws[15].values  # the newest of the next round, which it cannot predict
    assert [p.sample.values for p in pool] == [d.values for d in draws[8:15]]
    slowest = Table(tmp_path / "slowest.csv", Profile())
    slowest.add(Entry(p.key(slowest.profile), 100.0, 100.0, 0.0, 20, 2.0,
                      "2025-01-01T00:00:00+00:00") for d in draws for p in placed_units(d.network))
    assert first(slowest, 10.0) == (None, [])


def test_without_a_screen_the_samplers_random_start_takes_what_the_table_puts_within(tmp_path):
    """``--screen 0`` starts TPE from random networks within the analytic limits; under a
    latency budget, as the screen's start, from one its table puts within the budget: here the
    only one it knows, which needs no measurement."""
    from nas.search.settings import SearchSettings
    from nas.search.study import STARTUP_POOL, Search

    table = tmp_path / "t.csv"
    settings = SearchSettings(screen=0, sampler="tpe", latency_budget="10ms", trials=40,
                              latency_table=str(table))
    search = Search(settings, tmp_path / "run")
    draws = search.space.sample(STARTUP_POOL // REDRAWN, settings.seed, search.constraints)
    table_knowing(table, draws[5].network, 1.0)
    search.table.refresh()
    search.open_study()
    trial = search.propose()
    assert trial.user_attrs["startup"] and trial.user_attrs["latency_measured"] == 0
    assert trial.user_attrs["config"] == draws[5].network.to_json()


def test_under_a_latency_budget_the_screen_drops_what_it_predicts_over_it(tmp_path):
    space = load_space("regnet")
    cx = constraints_for(space, "400MF")
    scored = [{**record(s.complexity.totals()), "latency_ms": 1.0 + s.complexity.flops / 1e8}
              for s in space.sample(STARTUP, 5, cx)]
    fit = latency_fit(scored)  # the screen's prediction: its table knows no unit
    lookup = Lookup(Table(tmp_path / "t.csv", Profile()), 224, 1000)
    budget = float(np.median([r["latency_ms"] for r in scored]))

    def screen(latency_budget=float("inf")):
        return Screen(space.feasible(0, cx), 32, ["accuracy", "flops"], lookup, latency_budget)

    bounded, unbounded = screen(budget), screen()
    values = bounded.choose(scored)
    unbounded.choose(scored)
    assert fit(complexity(space.network(values)).totals()) <= budget
    assert all(fit(p.sample.complexity.totals()) <= budget for p in bounded.drawn)
    assert len(bounded.drawn) < len(unbounded.drawn)
    assert screen(1e-3).choose(scored) is None  # nothing left: the sampler proposes


def test_an_analytic_search_is_screened_and_starts_no_ray(tmp_path, capsys):
    """The default signal needs no data and no Ray: candidates are scored in the search's own
    process, and the screen's choices reach the study as drawn (so none is infeasible)."""
    import ray

    run = tmp_path / "run"
    assert main(["search", "--objectives", "accuracy,flops", "--trials", "30", "--data",
                 str(tmp_path / "none"), "--out", str(run)]) == 0
    assert not ray.is_initialized()
    out = capsys.readouterr().out
    assert out.startswith(f"run folder: {run}\n")  # said before it starts
    assert (tmp_path / "latest").resolve() == run.resolve()  # the last run, by a fixed name
    trials = pd.read_csv(run / "trials.csv")
    screened = trials["screened"]  # how each trial was proposed, True or False in every row
    assert screened.dtype == bool and trials["startup"].dtype == bool
    assert not trials["startup"].any()  # the screen starts at random itself
    complete = trials[trials["status"] == "complete"]
    assert len(complete) == 30 and (complete["flops"] <= 400e6).all()
    assert screened[trials["status"] == "complete"].sum() >= 25  # a few improved nothing
    assert set(trials[screened]["status"]) == {"complete"}
    assert set(pd.read_csv(run / "pareto.csv")["trial_id"]) <= set(complete["trial_id"])
    # Each trial's values of the space (not Optuna's step counts), which make its network.
    space = load_space("regnet")
    for _, row in complete.iterrows():
        values = {k.removeprefix("param:"): v for k, v in row.items() if k.startswith("param:")}
        assert set(values) == {"d", "w0", "wa", "wm", "group_w"}
        assert space.network(values).to_json() == row["config"]
    # It ends by naming what it found: the front, each objective's best, the knee, what next.
    front = len(pd.read_csv(run / "pareto.csv"))
    assert f"Pareto front: {front} of 30 scored networks (accuracy, flops)" in out
    named = {m[1]: int(m[2]) for m in re.finditer(r"^  (\S.*?)\s+trial (\d+) ", out, re.M)}
    by_id = complete.set_index("trial_id")
    assert by_id.loc[named["best accuracy"], "accuracy"] == complete["accuracy"].max()
    assert by_id.loc[named["best flops"], "flops"] == complete["flops"].min()
    assert "knee" in named and f"nas export {run} --pick knee" in out


def test_a_candidate_whose_measurement_died_is_failed_and_the_search_goes_on(tmp_path,
                                                                              monkeypatch):
    import nas.latency
    from nas.latency.timing import MeasurementDied
    from nas.search.settings import SearchSettings
    from nas.search.study import Search

    fill, calls = nas.latency.fill, []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MeasurementDied("the process measuring latency ended abruptly")
        return fill(*args, **kwargs)

    monkeypatch.setattr(nas.latency, "fill", dies_once)
    settings = SearchSettings(trials=4, latency_table=str(tmp_path / "t.csv"))
    search = Search(settings, tmp_path / "run")
    search.open_study()
    trial = search.propose()
    first = search.study.trials[0]
    assert first.state.name == "FAIL" and first.user_attrs["status"] == "failed"
    assert "ended abruptly" in first.user_attrs["error"]
    assert trial.number == 1 and trial.user_attrs["status"] == "running"


def test_a_run_whose_candidates_were_all_over_a_limit_says_to_loosen_it(tmp_path, capsys):
    assert main(["search", "--latency-budget", "0.001ms", "--time-budget", "8s",
                 "--latency-table", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "infeasible); trials.csv says why" in out
    assert "every candidate was over a limit: loosen the limits" in out
    assert "give it more time" not in out
