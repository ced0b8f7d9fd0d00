"""The RegNet and AnyNet generators against pycls's published models and the rule's properties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.blocks.resnext import compatible
from nas.cli import main
from nas.errors import ConfigError
from nas.generators import anynet, from_spec, regnet, regnet_stages
from nas.network import build, complexity

# pycls model zoo: RegNet parameters -> stage depths, widths, FLOPs and params at 224, 1000 classes
PUBLISHED = {
    "RegNetX-400MF": (dict(d=22, w0=24, wa=24.48, wm=2.54, group_w=16),
                      [1, 2, 7, 12], [32, 64, 160, 384], 397_678_568, 5_157_512),
    "RegNetY-400MF": (dict(d=16, w0=48, wa=27.89, wm=2.09, group_w=8, se=0.25),
                      [1, 3, 6, 6], [48, 104, 208, 440], 401_849_056, 4_344_144),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_regnets_exactly(name):
    params, depths, widths, flops, n_params = PUBLISHED[name]
    net = regnet(**params)
    assert [s.depth for s in net.stages] == depths
    assert [s.width for s in net.stages] == widths
    assert all(s.stride == 2 for s in net.stages)
    cx = complexity(net)
    assert (cx.flops, cx.params) == (flops, n_params)


def test_published_regnet_module_has_the_published_parameter_count():
    params, *_, n_params = PUBLISHED["RegNetY-400MF"]
    model = build(regnet(**params))
    assert sum(p.numel() for p in model.parameters()) == n_params


@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
@pytest.mark.parametrize("name", PUBLISHED)
def test_nas_info_accepts_a_generator_spec(name, inline, tmp_path, capsys):
    params, depths, widths, flops, n_params = PUBLISHED[name]
    spec = tmp_path / "spec.yaml"
    spec.write_text("generator: regnet\n" + "".join(f"{k}: {v}\n" for k, v in params.items()))
    text = "{generator: regnet, " + ", ".join(f"{k}: {v}" for k, v in params.items()) + "}"
    assert main(["info", text if inline else str(spec), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["flops"], info["params"]) == (flops, n_params)
    assert [s["width"] for s in info["stages"]] == widths
    assert [s["group_width"] for s in info["stages"]] == [params["group_w"]] * len(widths)


def random_rule_inputs(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield dict(d=int(rng.integers(1, 40)), w0=8 * int(rng.integers(1, 40)),
                   wa=float(rng.uniform(0, 200)), wm=float(rng.uniform(1.05, 4)),
                   group_w=8 * int(rng.integers(1, 17)), bot_mul=float(rng.choice([1, 0.5, 0.25])))


@pytest.mark.parametrize("seed", range(4))
def test_rule_properties_on_random_inputs(seed):
    for p in random_rule_inputs(seed, 250):
        stages = regnet_stages(p["d"], p["w0"], p["wa"], p["wm"])
        widths = [w for _, w in stages]
        assert sum(d for d, _ in stages) == p["d"]
        assert all(w % 8 == 0 and w > 0 for w in widths)
        assert widths == sorted(set(widths))  # strictly increasing runs, so stages are maximal
        net = regnet(**p)
        assert sum(s.depth for s in net.stages) == p["d"]
        final = [s.width for s in net.stages]
        assert final == sorted(final)  # the compatibility step keeps them non-decreasing
        for s in net.stages:
            w_b = round(s.width * s.bot_mul)
            assert w_b % s.group_w == 0 and s.group_w <= p["group_w"]
            if s.bot_mul == 1:
                assert s.width % 8 == 0


def test_rule_matches_a_direct_reading_of_the_formula():
    """u_j = w0 + wa j, s_j = round(log(u_j / w0) / log wm), w_j = 8 round(w0 wm^s_j / 8)."""
    for p in random_rule_inputs(7, 200):
        per_block = []
        for j in range(p["d"]):
            s = np.round(np.log((p["w0"] + p["wa"] * j) / p["w0"]) / np.log(p["wm"]))
            per_block.append(int(8 * np.round(p["w0"] * p["wm"] ** s / 8)))
        expected = [(per_block.count(w), w) for w in sorted(set(per_block))]
        assert regnet_stages(p["d"], p["w0"], p["wa"], p["wm"]) == expected


@pytest.mark.parametrize("width, bot_mul, group_w, expected", [
    (32, 1.0, 16, (32, 16)),  # already compatible
    (24, 1.0, 48, (24, 24)),  # group width capped at the bottleneck width
    (56, 1.0, 16, (64, 16)),  # 56 / 16 = 3.5 rounds half to even: 4 groups
    (40, 1.0, 16, (32, 16)),  # 2.5 rounds to 2
    (200, 0.25, 32, (256, 32)),  # bottleneck 50 -> 64, width 64 / 0.25
    (48, 2, 16, (48, 16)),  # bottleneck 96, a multiple of lcm(16, 2)
])
def test_compatibility_step(width, bot_mul, group_w, expected):
    assert compatible(width, bot_mul, group_w) == expected


@pytest.mark.parametrize("block, params, size_field", [
    ("mobilenetv2", dict(expansion=4.0, kernel=5), "width"),
    ("shufflenetv2", {}, "width"),
    ("igcv3", dict(groups1=2, groups2=4), "width"),
    ("densenet", dict(bottleneck=4), "growth"),
])
def test_rule_drives_every_family(block, params, size_field):
    net = regnet(16, 16, 12.0, 2.2, block=block, **params)
    stages = regnet_stages(16, 16, 12.0, 2.2)
    assert [(s.block, s.depth, getattr(s, size_field)) for s in net.stages] == \
        [(block, d, w) for d, w in stages]
    for name, value in params.items():
        assert all(getattr(s, name) == value for s in net.stages)


def test_anynet_takes_free_stages_with_stride_2_by_default():
    net = anynet([{"block": "resnext", "depth": 2, "width": 56, "bot_mul": 0.5, "group_w": 8},
                  {"block": "mobilenetv2", "depth": 3, "width": 40, "stride": 1},
                  {"block": "densenet", "depth": 4, "width": 16}])
    resnext, mbv2, dense = net.stages
    assert (resnext.width, resnext.group_w, resnext.stride) == (64, 8, 2)  # 28 / 8 -> 4 groups
    assert (mbv2.width, mbv2.stride) == (40, 1)
    assert (dense.growth, dense.stride) == (16, 2)


@pytest.mark.parametrize("spec, message", [
    (dict(d=0, w0=24, wa=24.0, wm=2.5, group_w=8), "d: must be a positive integer"),
    (dict(d=10, w0=20, wa=24.0, wm=2.5, group_w=8), "w0: must be a positive multiple of 8"),
    (dict(d=10, w0=24, wa=-1.0, wm=2.5, group_w=8), "wa: must be a finite number >= 0"),
    (dict(d=10, w0=24, wa=float("inf"), wm=2.5, group_w=8), "wa: must be a finite number >= 0"),
    (dict(d=10, w0=24, wa=24.0, wm=1.0, group_w=8), "wm: must be a finite number > 1"),
    (dict(d=10, w0=24, wa=24.0, wm=float("nan"), group_w=8), "wm: must be a finite number > 1"),
    (dict(d=10, w0=24, wa=24.0, wm=2.5), "group_w: missing"),
    (dict(d=10, w0=24, wa=24.0, group_w=8), "missing a required argument: 'wm'"),
    (dict(d=10, w0=24, wa=24.0, wm=2.5, group_w=8, se="x"), "regnet.se: expected float"),
    (dict(d=10, w0=24, wa=24.0, wm=2.5, group_w=8, depht=3), "unknown key 'depht'"),
    (dict(d=10, w0=24, wa=24.0, wm=2.5, block="vgg"), "unknown family 'vgg'"),
])
def test_bad_generator_specs_get_clear_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        from_spec({"generator": "regnet", **spec})


def test_nas_info_on_a_bad_spec_prints_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("generator: regnet\nd: 12\nw0: 12\nwa: 20.0\nwm: 2.5\ngroup_w: 8\n")
    assert main(["info", str(spec)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nas info: error: {spec}: w0: must be a positive multiple of 8, got 12"]
    assert main(["info", "{generator: regnet, d: 12, w0: 12, wa: 20.0, wm: 2.5, group_w: 8}"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "nas info: error: the inline spec: w0: must be a positive multiple of 8, got 12"]
