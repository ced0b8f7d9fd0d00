"""Network configs: YAML and JSON round trips, and one clear error naming the field at fault."""

from __future__ import annotations

import random

import pytest
from randomnets import random_network

from nas.blocks import FAMILIES, ConfigError
from nas.cli import main
from nas.config import Network


@pytest.mark.parametrize("family", FAMILIES)
def test_random_configs_round_trip_through_yaml_and_json(family):
    rng = random.Random(family)
    for _ in range(50):
        net = random_network(rng, family, [rng.randint(1, 4) for _ in range(rng.randint(1, 4))])
        assert Network.from_yaml(net.to_yaml()) == net
        assert Network.from_json(net.to_json()) == net


def _config(*stages: dict, stem_width: int = 32, **parts) -> dict:
    return {"stem": {"width": stem_width}, "stages": list(stages), **parts}


# (config, the start of the error message: the field at fault)
INVALID = {
    "unknown family": (_config({"block": "vgg", "depth": 1, "width": 8}), "stages[0].block:"),
    "non-positive depth": (_config({"block": "resnext", "depth": 0, "width": 8}),
                           "stages[0].depth:"),
    "width not divisible by group width": (
        _config({"block": "resnext", "depth": 1, "width": 24, "group_w": 16}),
        "stages[0].width:"),
    "unknown key": (_config({"block": "resnext", "depth": 1, "width": 8, "colour": "red"}),
                    "stages[0]: unknown key 'colour'"),
    "wrong type": (_config({"block": "mobilenetv2", "depth": 1, "width": "wide"}),
                   "stages[0].width: expected int"),
    "missing width": (_config({"block": "shufflenetv2", "depth": 1}), "stages[0].width: missing"),
    "missing growth": (_config({"block": "densenet", "depth": 1}), "stages[0].growth: missing"),
    "width given to densenet": (_config({"block": "densenet", "depth": 1, "growth": 8,
                                         "width": 64}), "stages[0]: unknown key 'width'"),
    "stride 3": (_config({"block": "igcv3", "depth": 1, "width": 8, "stride": 3}),
                 "stages[0].stride:"),
    "se ratio 1": (_config({"block": "mobilenetv2", "depth": 1, "width": 8, "se": 1.0}),
                   "stages[0].se:"),
    "even kernel": (_config({"block": "mobilenetv2", "depth": 1, "width": 8, "kernel": 4}),
                    "stages[0].kernel:"),
    "zero expansion": (_config({"block": "mobilenetv2", "depth": 1, "width": 8,
                                "expansion": 0}), "stages[0].expansion:"),
    "odd shufflenet width": (_config({"block": "shufflenetv2", "depth": 1, "width": 30},
                                     {"block": "shufflenetv2", "depth": 1, "width": 15}),
                             "stages[1].width:"),
    "input width not divisible by groups1": (
        _config({"block": "igcv3", "depth": 1, "width": 8, "groups1": 4}, stem_width=30),
        "stages[0].groups1:"),
    "expanded width not divisible by groups2": (
        _config({"block": "igcv3", "depth": 1, "width": 8, "expansion": 1.5, "groups1": 1,
                 "groups2": 8}, stem_width=30),
        "stages[0].groups2:"),
    "width not divisible by groups2": (
        _config({"block": "igcv3", "depth": 1, "width": 6, "groups2": 4}), "stages[0].width:"),
    "compression above 1": (_config({"block": "densenet", "depth": 1, "growth": 8,
                                     "compression": 1.5}), "stages[0].compression:"),
    "zero growth": (_config({"block": "densenet", "depth": 1, "growth": 0}), "stages[0].growth:"),
    "unknown stem": (_config({"block": "resnext", "depth": 1, "width": 8},
                             stem={"kind": "huge"}), "stem.kind:"),
    "no stages": (_config(), "stages:"),
    "dropout 1": (_config({"block": "resnext", "depth": 1, "width": 8}, head={"dropout": 1}),
                  "head.dropout:"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_config_names_the_field(case):
    config, field = INVALID[case]
    with pytest.raises(ConfigError) as error:
        Network.from_dict(config)
    message = str(error.value)
    assert message.startswith(field) and "\n" not in message


def _nas_info(capsys, path) -> tuple[int, list[str]]:
    code = main(["info", str(path)])
    return code, capsys.readouterr().err.splitlines()


def test_info_on_missing_file_prints_one_line(capsys, tmp_path):
    code, err = _nas_info(capsys, tmp_path / "absent.yaml")
    assert code == 2 and len(err) == 1 and "absent.yaml: no such file" in err[0]


def test_info_on_malformed_yaml_prints_one_line(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("stages: [{block: resnext, depth: 1\n")
    code, err = _nas_info(capsys, path)
    assert code == 2 and len(err) == 1 and "broken.yaml: malformed YAML" in err[0]


def test_info_on_invalid_config_names_file_and_field(capsys, tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("stages:\n  - {block: shufflenetv2, depth: 2, width: 15}\n")
    code, err = _nas_info(capsys, path)
    assert code == 2 and len(err) == 1 and "odd.yaml: stages[0].width: must be even" in err[0]
