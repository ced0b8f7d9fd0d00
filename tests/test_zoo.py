"""The published networks under spaces/zoo reproduce their published parameters and FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.cli import main
from nas.cost.measure import hook_counts
from nas.generators import load_network
from nas.network import build, complexity

ZOO = Path(__file__).resolve().parents[1] / "spaces" / "zoo"

# name -> (params, FLOPs as multiply-adds) at 224x224 and 1000 classes, as published: the
# torchvision model tables, pycls's model zoo, and for SE-ResNet-50 Hu et al. (2018, table 2).
PUBLISHED = {
    "mobilenetv2_1.0": (3_504_872, 300.77e6),
    "shufflenetv2_1.0": (2_278_604, 144.91e6),
    "resnext50_32x4d": (25_028_904, 4230.48e6),
    "densenet121": (7_978_856, 2834.16e6),
    "regnetx_400mf": (5_157_512, 397.68e6),
    "resnet18": (11_689_512, 1814.07e6),
    "resnet34": (21_797_672, 3663.76e6),
    "resnet50": (25_557_032, 4089.18e6),
    "se_resnet50": (28_088_024, 3.87e9),
    # the released IGCV3-D (homles11/IGCV3's MXNet symbol) counted layer by layer; the paper's
    # "3.5M" rounds the params, and its 318M MAdds follow a convention it does not state
    "igcv3_d": (3_491_688, 312.97e6),
}

# the same at 32x32 and 10 classes. Params: the exact counts of the reference implementations,
# which the papers round (He et al. 2016: 0.27M, 0.85M, 1.7M, 1.7M; Zagoruyko and Komodakis
# 2016: 36.5M; Huang et al. 2017: 1.0M, 0.8M). FLOPs: Li et al. 2017 (1.25E8, 2.53E8 for
# ResNet-56, -110), D-X-Y's AutoDL baselines (WRN-28-10, DenseNet-BC-100), else counted from the
# reference code (akamaster's ResNet-20, He's Lua PreResNet with the stride on its first 1x1
# conv, the DenseNet Lua code of the paper's version: a 16-wide stem).
PUBLISHED_CIFAR = {
    "resnet20_cifar": (269_722, 40.55e6),
    "resnet56_cifar": (853_018, 1.25e8),
    "resnet110_cifar": (1_727_962, 2.53e8),
    "preresnet164_cifar": (1_703_258, 244.50e6),
    "wrn28_10_cifar": (36_479_194, 5243.33e6),
    "densenet40_k12_cifar": (1_019_722, 264.81e6),
    "densenet_bc100_k12_cifar": (769_162, 287.93e6),
}


@pytest.mark.parametrize("name", [*PUBLISHED, *PUBLISHED_CIFAR])
def test_zoo_network_reproduces_published_numbers(name):
    resolution, classes = (224, 1000) if name in PUBLISHED else (32, 10)
    params, flops = {**PUBLISHED, **PUBLISHED_CIFAR}[name]
    net = load_network(ZOO / f"{name}.yaml")
    cx = complexity(net, resolution, classes)
    assert cx.params == params
    assert cx.flops == pytest.approx(flops, rel=0.005)
    measured = hook_counts(build(net, classes), resolution)
    assert measured == {"flops": cx.flops, "acts": cx.acts, "params": params}


def test_every_zoo_file_is_checked():
    assert {p.stem for p in ZOO.glob("*.yaml")} == {*PUBLISHED, *PUBLISHED_CIFAR}


def test_info_json_reports_densenet121_stages(capsys):
    assert main(["info", "--json", str(ZOO / "densenet121.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["params"], round(info["flops"] / 1e4)) == (7_978_856, 283_416)
    # torchvision's dense blocks end at these widths and sizes (transitions halve both)
    assert [(s["width"], s["resolution"]) for s in info["stages"]] == [
        (256, 56), (512, 28), (1024, 14), (1024, 7)]
    assert [s["block"] for s in info["stages"]] == ["densenet"] * 4


def test_info_shows_the_options_of_the_classic_families(capsys):
    assert main(["info", str(ZOO / "preresnet164_cifar.yaml"), "--resolution", "32",
                 "--num-classes", "10"]) == 0
    text = capsys.readouterr().out
    assert "stem: cifar, width 16, no batch norm or activation" in text
    assert "preact=True" in text and "stride_at=first" in text and "head: BN-ReLU" in text
    assert main(["info", "--json", str(ZOO / "se_resnet50.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [s["group_width"] for s in info["stages"]] == [64, 128, 256, 512]  # one group each
    assert info["config"]["stages"][0]["se_at"] == "out"
    assert "preact" not in info["config"]["stages"][0]  # an option at its default is left out
    assert main(["info", str(ZOO / "resnet20_cifar.yaml")]) == 0
    assert "shortcut=pad" in capsys.readouterr().out
