"""The published networks under spaces/zoo reproduce their published parameters and FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.cli import main
from nas.config import load_network
from nas.cost.measure import measure
from nas.network import build, complexity

ZOO = Path(__file__).resolve().parents[1] / "spaces" / "zoo"

# name -> (params, FLOPs as multiply-adds) at 224x224 and 1000 classes, as published
PUBLISHED = {
    "mobilenetv2_1.0": (3_504_872, 300.77e6),
    "shufflenetv2_1.0": (2_278_604, 144.91e6),
    "resnext50_32x4d": (25_028_904, 4230.48e6),
    "densenet121": (7_978_856, 2834.16e6),
    "regnetx_400mf": (5_157_512, 397.68e6),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_zoo_network_reproduces_published_numbers(name):
    params, flops = PUBLISHED[name]
    net = load_network(ZOO / f"{name}.yaml")
    cx = complexity(net)
    assert cx.params == params
    assert cx.flops == pytest.approx(flops, rel=0.005)
    measured = measure(build(net))
    assert measured == {"flops": cx.flops, "acts": cx.acts, "params": params}


def test_info_json_reports_densenet121_stages(capsys):
    assert main(["info", "--json", str(ZOO / "densenet121.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["params"], round(info["flops"] / 1e4)) == (7_978_856, 283_416)
    # torchvision's dense blocks end at these widths and sizes (transitions halve both)
    assert [(s["width"], s["resolution"]) for s in info["stages"]] == [
        (256, 56), (512, 28), (1024, 14), (1024, 7)]
    assert [s["block"] for s in info["stages"]] == ["densenet"] * 4
