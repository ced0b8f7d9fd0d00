"""The ground truth of benchmarks/ground_truth writes the published networks: each CIFAR-10
config has the published parameter count and its built module the analytic counts, and each
ImageNet config pycls's own FLOPs and params."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nas.cost.measure import hook_counts
from nas.generators import load_network
from nas.network import build, complexity

TRUTH = Path(__file__).resolve().parents[1] / "benchmarks" / "ground_truth"
ROWS = list(csv.DictReader(open(TRUTH / "cifar10_extra.csv")))
IMAGENET = list(csv.DictReader(open(TRUTH / "imagenet_pycls.csv")))


@pytest.mark.parametrize("name, rows, n", [("cifar10_extra", ROWS, 33),
                                            ("imagenet_pycls", IMAGENET, 20)])
def test_every_config_is_listed_once(name, rows, n):
    assert sorted(r["config"] for r in rows) == sorted(
        f"{name}/{p.name}" for p in (TRUTH / name).glob("*.yaml"))
    assert len({r["model"] for r in rows}) == len(rows) == n


@pytest.mark.parametrize("row", ROWS, ids=[r["model"] for r in ROWS])
def test_config_has_the_published_params_and_builds_its_counts(row):
    net = load_network(TRUTH / row["config"])
    cx = complexity(net, 32, 10)
    assert (cx.params, cx.flops) == (int(row["params"]), int(row["flops"]))
    assert hook_counts(build(net, 10), 32) == {"flops": cx.flops, "acts": cx.acts,
                                               "params": cx.params}


@pytest.mark.parametrize("row", IMAGENET, ids=[r["model"] for r in IMAGENET])
def test_imagenet_config_has_pycls_counts(row):
    cx = complexity(load_network(TRUTH / row["config"]), 224, 1000)
    assert (cx.flops, cx.params) == (int(row["flops"]), int(row["params"]))
