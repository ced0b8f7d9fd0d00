"""Design spaces: the shipped files, budgets, distributions, Optuna, sampling and the CLI."""

from __future__ import annotations

import math
import random

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import yaml
from randomnets import FAMILY_PARAMS, random_network

from nas.budget import band, parse_count
from nas.cli import main
from nas.cost.measure import hook_counts
from nas.errors import ConfigError
from nas.network import build, complexity
from nas.spaces import (
    Choice,
    Constraints,
    Float,
    Infeasible,
    Int,
    Pow2,
    available,
    cached_complexity,
    constraints_for,
    load_space,
    parse_space,
)

SHIPPED = ("regnet", "regnety", "anynet", "mobilenetv2", "shufflenetv2", "igcv3", "densenet",
           "mixed", "resnet")
CIFAR_SCALE = {"resnet"}  # spaces made for 32x32 inputs and 10 classes, budgeted there


def _constraints(space):
    """A 400MF budget at 224x224 and 1000 classes, or 100MF at CIFAR scale."""
    if space.name in CIFAR_SCALE:
        return constraints_for(space, "100MF", resolution=32, num_classes=10)
    return constraints_for(space, "400MF")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("text, flops", [
    ("400MF", 400_000_000), ("1.6GF", 1_600_000_000), ("0.4G", 400_000_000),
    ("400M", 400_000_000), ("4e8", 400_000_000), ("400mf", 400_000_000), ("1.6gf", 1_600_000_000),
    ("600kF", 600_000), (" 2G ", 2_000_000_000), ("250", 250),
])
def test_budget_strings(text, flops):
    assert parse_count(text) == flops


@pytest.mark.parametrize("text", ["", "MF", "400XF", "-400MF", "4e", "400 MFLOPs", "0MF", "1..6G"])
def test_bad_budget_strings_are_refused(text):
    with pytest.raises(ConfigError, match="budget"):
        parse_count(text)


def test_band_of_a_budget():
    assert band(400_000_000, 0.9) == (360_000_000, 400_000_000)
    with pytest.raises(ConfigError, match="band"):
        band(400_000_000, 1.5)
    with pytest.raises(ConfigError, match=r"in \(0, 1\), got 1 \(a floor at the budget"):
        band(400_000_000, 1.0)


def test_every_shipped_space_is_listed():
    assert set(SHIPPED) <= set(available())


@pytest.mark.parametrize("name", SHIPPED)
def test_space_round_trips_through_yaml(name):
    space = load_space(name)
    assert parse_space(name, yaml.safe_load(space.to_yaml())) == space


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_yields_100_feasible_networks_at_its_budget(name):
    space = load_space(name)
    constraints = _constraints(space)
    samples = space.sample(100, seed=0, constraints=constraints)
    assert len(samples) == 100
    for s in samples:
        assert s.network == space.network(s.values)  # values alone give the network back
        full = complexity(s.network, constraints.resolution, constraints.num_classes)
        assert full == s.complexity and constraints.admits("flops", full.flops)
        assert constraints.admits("stages", len(s.network.stages))
    assert len({s.network for s in samples}) > 90


@pytest.mark.parametrize("name", SHIPPED)
def test_a_few_feasible_networks_run_forward_with_their_counted_costs(name):
    space = load_space(name)
    for s in space.sample(2, seed=1, constraints=_constraints(space)):
        model = build(s.network, num_classes=10)
        assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        cx = complexity(s.network, 32, 10)
        assert hook_counts(model, 32) == {"flops": cx.flops, "acts": cx.acts, "params": cx.params}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_100_feasible_networks_run_forward_at_32_and_some_at_224(name):
    space = load_space(name)
    samples = space.sample(100, seed=0, constraints=_constraints(space))
    for i, s in enumerate(samples):
        model = build(s.network)
        for resolution in (32, 224) if i < 3 else (32,):
            cx = complexity(s.network, resolution)
            assert hook_counts(model, resolution) == {"flops": cx.flops, "acts": cx.acts,
                                                  "params": cx.params}


@pytest.mark.parametrize("family", sorted(FAMILY_PARAMS))
def test_cached_complexity_equals_the_full_count(family):
    rng = random.Random(family)
    for _ in range(30):
        net = random_network(rng, family, [rng.randrange(1, 4) for _ in range(3)])
        for resolution, classes in ((224, 1000), (32, 10), (7, 10)):  # 7: stages end at 1x1
            assert cached_complexity(net, resolution, classes) == \
                complexity(net, resolution, classes)


def test_same_seed_same_samples_other_seed_other_samples():
    space = load_space("regnet")
    first, again, other = (space.sample(50, seed) for seed in (3, 3, 4))
    assert [s.values for s in first] == [s.values for s in again]
    assert [s.values for s in first] != [s.values for s in other]


def test_band_and_resolution_set_the_flops_range():
    space = load_space("regnet")
    constraints = constraints_for(space, "400MF", 0.9, resolution=160, num_classes=100)
    for s in space.sample(50, seed=0, constraints=constraints):
        assert 360_000_000 <= complexity(s.network, 160, 100).flops <= 400_000_000
        assert s.complexity.flops == complexity(s.network, 160, 100).flops


def test_violations_name_each_broken_bound_with_the_value():
    constraints = constraints_for(load_space("regnet"), "400MF", 0.5)  # and exactly 4 stages
    assert constraints.violations({"flops": 412_345_678, "stages": 5, "params": 9e9}) == [
        "flops 412.3MF, not 200MF <= flops <= 400MF", "stages 5, not stages = 4"]
    assert constraints.violations({"flops": 199e6, "stages": 4}) == [
        "flops 199MF, not 200MF <= flops <= 400MF"]
    assert constraints.violations({"flops": 300e6, "stages": 4, "config": "{}"}) == []


def test_an_impossible_budget_is_reported_with_the_drawn_range():
    space = load_space("regnet")
    with pytest.raises(Infeasible, match=r"no feasible network in \d+ draws; the drawn "
                                         r"networks have flops \d+\.\d+MF to [\d.]+GF "):
        space.sample(10, constraints=constraints_for(space, "1MF"))


def test_infeasible_names_what_bound_rejected_the_draws():
    space, stages = load_space("regnet"), Constraints({"stages": (4, 4)})
    # a stage bound alone, with a few networks accepted: no drawn range, no stage complaint
    assert space._infeasible(10240, 1, 5, {}, None, stages) == (
        "space regnet: only 1 feasible networks in 10240 draws (constraints: stages = 4 at "
        "224x224, 1000 classes)")
    assert space._infeasible(10240, 0, 0, {}, None, stages).endswith(": none has 4 to 4 stages")


def test_draws_follow_their_distributions():
    rng = np.random.default_rng(0)
    n = 20_000
    w0 = np.array(Int(8, 256, 8, log=True).draw(rng, n))
    assert set(np.unique(w0)) == set(range(8, 257, 8))
    # multiples k of 8 log-uniform over [0.5, 32.5], rounded: P(k <= 5) = log 11 / log 65
    assert abs(np.mean(w0 <= 40) - math.log(11) / math.log(65)) < 0.01
    d = np.array(Int(12, 28).draw(rng, n))
    assert set(np.unique(d)) == set(range(12, 29)) and abs(d.mean() - 20) < 0.1
    wa = np.array(Float(8.0, 256.0, 0.1, log=True).draw(rng, n))
    assert wa.min() >= 8 and wa.max() <= 256 and np.allclose(wa * 10, np.round(wa * 10))
    assert abs(np.mean(wa <= math.sqrt(8 * 256)) - 0.5) < 0.01  # log-uniform: median at GM
    wm = np.array(Float(2.0, 3.0).draw(rng, n))
    assert wm.min() >= 2 and wm.max() <= 3 and abs(wm.mean() - 2.5) < 0.01
    assert set(Pow2(1, 32).draw(rng, 1000)) == {1, 2, 4, 8, 16, 32}
    assert set(Pow2(0.25, 1).draw(rng, 1000)) == {0.25, 0.5, 1}
    assert set(Choice(("a", "b")).draw(rng, 100)) == {"a", "b"}


def test_near_values_stay_on_the_grid_and_close():
    rng = np.random.default_rng(0)
    dists = {"w0": (Int(8, 256, 8, log=True), 64), "d": (Int(12, 28), 20),
             "wa": (Float(8.0, 256.0, 0.1, log=True), 36.4), "wm": (Float(2.0, 3.0), 2.5),
             "b": (Pow2(0.25, 1), 0.5), "block": (Choice(("a", "b", "c")), "b")}
    grids = {"w0": set(range(8, 257, 8)), "d": set(range(12, 29)), "b": {0.25, 0.5, 1}}
    for name, (dist, value) in dists.items():
        assert dist.near(rng, value, 0.0) == value  # no step: the same value
        near = [dist.near(rng, value, 0.05) for _ in range(2000)]
        moved = sum(v != value for v in near) / len(near)
        assert moved > 0.02
        if name in grids:  # a coarse grid: on it, and often the same value
            assert set(near) <= grids[name] and moved < 0.95
    d = np.array([Int(12, 28).near(rng, 20, 0.05) for _ in range(5000)])
    assert abs(d.std() - 0.05 * 16) < 0.15 and abs(d.mean() - 20) < 0.05
    wa = np.array([Float(8.0, 256.0, 0.1, log=True).near(rng, 36.4, 0.05) for _ in range(5000)])
    assert np.allclose(wa * 10, np.round(wa * 10)) and wa.min() >= 8 and wa.max() <= 256
    assert abs(np.log(wa).std() - 0.05 * math.log(32)) < 0.01  # log scale: steps in log units
    assert Int(12, 28).near(rng, 28, 1.0) <= 28 and Int(12, 28).near(rng, 12, 1.0) >= 12


@pytest.mark.parametrize("name", ["regnet", "mixed", "anynet"])
def test_a_neighbour_is_a_feasible_sample_near_its_parent(name):
    space = load_space(name)
    constraints = constraints_for(space, "400MF")
    rng = np.random.default_rng(0)
    found = 0
    for parent in space.sample(50, seed=2, constraints=constraints):
        same = space.neighbour(rng, parent.values, constraints, scale=0.0)
        assert same == parent  # a step of nothing gives the parent back, network and counts
        child = space.neighbour(rng, parent.values, constraints)
        if child is None:
            continue
        found += 1
        assert child.network == space.network(child.values)
        assert child.complexity == complexity(child.network, constraints.resolution,
                                              constraints.num_classes)
        assert constraints.admits_costs(child.complexity.totals())
        assert constraints.admits("stages", len(child.network.stages))
        # a family's own settings exist exactly when that family is chosen
        assert {p.name for p in space.params if p.active(child.values)} == set(child.values)
    assert found > 20


def test_optuna_asks_family_parameters_only_for_the_chosen_family():
    space = load_space("mixed")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        for i in range(1, 5):
            block = values[f"s{i}.block"]
            families = {k.split(".")[1] for k in values if k.startswith(f"s{i}.") and
                        k.count(".") == 2}
            assert families <= {block}
        assert space.suggest(optuna.trial.FixedTrial(trial.params)) == values
        study.tell(trial, 0.0)


def test_optuna_sees_the_distributions_of_the_space():
    space = load_space("regnet")
    trial = optuna.create_study().ask()
    values = space.suggest(trial)
    dists = trial.distributions
    assert dists["d"] == optuna.distributions.IntDistribution(12, 28)
    assert dists["w0/8"] == optuna.distributions.IntDistribution(1, 32, log=True)
    assert dists["wm/0.001"] == optuna.distributions.IntDistribution(2000, 3000, log=True)
    assert values["w0"] == 8 * trial.params["w0/8"]
    anynet = load_space("anynet")
    trial = optuna.create_study().ask()
    anynet.suggest(trial)
    assert trial.distributions["log2(s3.group_w)"] == optuna.distributions.IntDistribution(0, 5)
    assert trial.distributions["s2.bot_mul"] == \
        optuna.distributions.CategoricalDistribution([1.0, 0.5, 0.25])


@pytest.mark.parametrize("name", available())
def test_drawn_values_asked_of_optuna_come_back_as_drawn(name):
    """A screened candidate reaches the study as the Optuna parameters of its values."""
    space = load_space(name)
    for sample in space.sample(20, seed=1, constraints=constraints_for(space, "400MF")):
        assert space.suggest(optuna.trial.FixedTrial(space.asked(sample.values))) == \
            sample.values


def test_nas_sample_writes_the_table(tmp_path, capsys):
    out = tmp_path / "samples.csv"
    assert main(["sample", "--space", "regnet", "--budget", "400MF", "-n", "20", "-o",
                 str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["d", "w0", "wa", "wm", "group_w", "flops", "params", "acts",
                                   "mac", "config"]
    assert len(table) == 20 and (table["flops"] <= 400_000_000).all()
    space = load_space("regnet")
    first = table.iloc[0]
    net = space.network({k: first[k].item() for k in ("d", "w0", "wa", "wm", "group_w")})
    assert net.to_json() == first["config"]
    parquet = tmp_path / "samples.parquet"
    assert main(["sample", "--space", "mixed", "--budget", "400MF", "-n", "5", "-o",
                 str(parquet)]) == 0
    assert len(pd.read_parquet(parquet)) == 5


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    return err[0]


@pytest.mark.parametrize("argv, message", [
    (["--space", "regnet", "--budget", "400XF"], "budget: expected a count like 400MF"),
    (["--space", "regnet", "--budget", "1MF"], "no feasible network in"),
    (["--space", "regnet", "--band", "0.9"], "--band needs --budget"),
    (["--space", "regnet", "--budget", "400MF", "--band", "2"], "band: must be a ratio"),
    (["--space", "regnet", "--budget", "400MF", "--band", "1"], "a floor at the budget admits"),
    (["--space", "nope"], "unknown space 'nope'; choose from anynet"),
    (["--space", "missing.yaml"], "missing.yaml: no such file"),
])
def test_bad_sample_arguments_print_one_line(argv, message, capsys):
    assert message in _one_line_error(capsys, ["sample", *argv])


GOOD = """\
generator: regnet
params:
  d: {int: [12, 28]}
  w0: {int: [8, 256], step: 8, log: true}
  wa: {float: [8.0, 256.0], log: true}
  wm: {float: [2.0, 3.0]}
fixed: {group_w: 8}
"""


@pytest.mark.parametrize("old, new, message", [
    ("generator: regnet", "generator: vgg", "generator: expected one of regnet, anynet"),
    ("generator: regnet", "generator: regnet\nstage: 4", "space: unknown key 'stage'"),
    ("{int: [12, 28]}", "{int: [28, 12]}", "params.d.int: expected [low, high]"),
    ("{int: [12, 28]}", "[12, 28]", "params.d: expected a distribution"),
    ("{int: [12, 28]}", "{int: [12, 28], spep: 2}", "params.d: unknown key 'spep'"),
    ("step: 8, log", "step: 7, log", "params.w0.step: expected a positive int"),
    ("{float: [2.0, 3.0]}", "{float: [0.0, 3.0], log: true}", "params.wm.log: a log scale"),
    ("{float: [2.0, 3.0]}", "{pow2: [2, 3]}", "params.wm.pow2: expected powers of two"),
    ("  wm: {float: [2.0, 3.0]}\n", "  wn: {float: [2.0, 3.0]}\n", "params.wn: not a setting"),
    ("  wm: {float: [2.0, 3.0]}\n", "", "regnet needs d, w0, wa and wm"),
    ("{group_w: 8}", "{group_w: eight}", "fixed.group_w: expected int"),
    ("{group_w: 8}", "{group_w: 8, bot_mul: half}", "fixed.bot_mul: expected float"),
    ("{group_w: 8}", "{}", "group_w: missing"),
    ("fixed:", "constraints: {flops: {max: lots}}\nfixed:", "constraints.flops.max: expected"),
    ("fixed:", "constraints: {flops: 400MF}\nfixed:", "constraints.flops: expected {min"),
    ("fixed:", "constraints: {latency: {max: 3}}\nfixed:", "constraints: unknown key 'latency'"),
    ("generator: regnet", "generator: anynet", "stages: anynet needs the number of stages"),
    ("d: {int", "d: {int: [1, 2]\n  x: {int", "malformed YAML"),
])
def test_malformed_space_files_name_file_and_key(old, new, message, tmp_path, capsys):
    assert old in GOOD
    path = tmp_path / "space.yaml"
    path.write_text(GOOD.replace(old, new))
    error = _one_line_error(capsys, ["sample", "--space", str(path), "-n", "1"])
    assert error.startswith(f"nas sample: error: {path}") and message in error


def test_a_user_space_file_samples(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD)
    space = load_space(str(path))
    assert [s.values["d"] for s in space.sample(3, seed=2)] == \
        [s.values["d"] for s in space.sample(3, seed=2)]


def test_resnet_space_mixes_basic_and_bottleneck_pre_and_post_activation_and_se():
    space = load_space("resnet")
    samples = space.sample(100, seed=0, constraints=_constraints(space))
    kinds = {(s.block, s.preact, s.se > 0) for x in samples for s in x.network.stages}
    assert kinds == {(block, preact, se) for block in ("basic", "resnext")
                     for preact in (False, True) for se in (False, True)}
    assert all(s.se_at == "out" for x in samples for s in x.network.stages)
