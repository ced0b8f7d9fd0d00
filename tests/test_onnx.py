"""ONNX export: every family's file runs in ONNX Runtime at any batch size with PyTorch's
outputs, the command writes it (and a RegNet's pycls config), and errors are one line."""

from __future__ import annotations

import dataclasses
import random
import sys

import pandas as pd
import pytest
import torch
import yaml
from randomnets import random_network

from nas.blocks import FAMILIES
from nas.cli import main
from nas.export import ExportError
from nas.generators import load_network, regnet
from nas.network import build, complexity
from nas.onnx_export import TOLERANCE, pycls_config, write_onnx
from nas.search.settings import SearchSettings

ort = pytest.importorskip("onnxruntime")  # the onnx extra, which CI installs with dev
RESOLUTION = 32
REGNETX_400MF = {"d": 22, "w0": 24, "wa": 24.48, "wm": 2.54, "group_w": 16}  # pycls's model zoo


def _outputs_match(path, model, batch: int) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, 3, RESOLUTION, RESOLUTION)
    with torch.no_grad():
        return float(abs(session.run(None, {"input": x.numpy()})[0] - model(x).numpy()).max())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_to_onnx_that_runtime_runs_as_pytorch_does(family, tmp_path):
    rng = random.Random(family)
    for se in (0.0, 0.25):
        net = random_network(rng, family, [2, 1, 2])
        net = dataclasses.replace(net, stages=tuple(dataclasses.replace(s, se=se)
                                                    for s in net.stages)).validate()
        model = build(net, 7).eval()
        torch.manual_seed(1)
        for p in model.parameters():  # trained-looking weights, passed as --weights passes them
            p.data.normal_(0, 0.1)
        path = tmp_path / f"{family}-{se}.onnx"
        assert write_onnx(net, path, 7, model.state_dict(), RESOLUTION) <= TOLERANCE
        for batch in (1, 5):  # the batch dimension is dynamic
            assert _outputs_match(path, model, batch) <= TOLERANCE


def _regnet_run(path, values: dict) -> None:
    """A run folder of the regnet space with one complete trial made of ``values``, recorded as
    a search records it (its values of the space as ``param:`` columns)."""
    path.mkdir()
    settings = SearchSettings(objectives=("accuracy", "flops")).to_dict()
    settings["proxy"] = dict(settings["proxy"])
    (path / "run.yaml").write_text(yaml.safe_dump({"settings": settings}))
    net = regnet(**values, bot_mul=1.0, se=0.0, stem={"kind": "simple", "width": 32})
    pd.DataFrame([{"trial_id": 0, "status": "complete", "accuracy": 70.0, "latency_ms": None,
                   "flops": complexity(net).flops, "params": 1e6, "mac": 1e7,
                   "config": net.to_json(),
                   **{f"param:{k}": v for k, v in values.items()}}]
                 ).to_csv(path / "trials.csv", index=False)


def test_nas_export_writes_onnx_and_the_pycls_config_of_a_regnet(tmp_path, capsys):
    values = {**REGNETX_400MF, "wa": 24.5}  # the regnet space's wa has a step of 0.1
    _regnet_run(tmp_path / "run", values)
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "-o", str(out)]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": torch.zeros(2, 3, 224, 224).numpy()})[0].shape == (2, 1000)
    pycls = yaml.safe_load(out.with_suffix(".pycls.yaml").read_text())["REGNET"]
    names = {"d": "DEPTH", "w0": "W0", "wa": "WA", "wm": "WM", "group_w": "GROUP_W"}
    assert {k: pycls[names[k]] for k in values} == values
    assert (pycls["BOT_MUL"], pycls["SE_ON"], pycls["STEM_W"]) == (1.0, False, 32)
    # and the network is pycls's RegNetX-400MF (wa 24.48 and 24.5 quantize to the same widths)
    zoo = load_network("spaces/zoo/regnetx_400mf.yaml")
    assert yaml.safe_load(out.with_suffix(".yaml").read_text()) == zoo.to_dict()
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "-o", str(out)]) == 2
    assert "already exists; give --force" in capsys.readouterr().err
    # the Python export of the same trial shares both config files with it
    configs = [out.with_suffix(s).read_text() for s in (".yaml", ".pycls.yaml")]
    assert main(["export", str(tmp_path / "run"), "-o", str(out.with_suffix(".py"))]) == 0
    assert [out.with_suffix(s).read_text() for s in (".yaml", ".pycls.yaml")] == configs


def test_pycls_config_only_for_what_pycls_builds():
    net = regnet(**REGNETX_400MF, bot_mul=1.0, se=0.25)
    assert pycls_config(net, {**REGNETX_400MF, "se": 0.25})["REGNET"]["SE_R"] == 0.25
    assert pycls_config(net, {**REGNETX_400MF, "se": 0.0}) is None  # not this network
    rule = {k: v for k, v in REGNETX_400MF.items() if k != "group_w"}
    mobile = regnet(**rule, block="mobilenetv2")
    assert pycls_config(mobile, {**REGNETX_400MF, "block": "mobilenetv2"}) is None


def test_without_onnxruntime_the_export_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"pip install -e '.\[onnx\]'"):
        write_onnx(regnet(**REGNETX_400MF), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
