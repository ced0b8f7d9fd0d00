"""The block-family protocol is all a family needs: a seventh family, defined here and only
registered, is read, generated, sampled, built, counted, timed, scaled and exported."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from nas.blocks import FAMILIES
from nas.blocks.base import Stage, Unit, option
from nas.blocks.layers import ConvBN
from nas.checks import require
from nas.config import Network
from nas.cost.complexity import Cx
from nas.cost.measure import hook_counts
from nas.evaluate.proxy import proxy_network
from nas.export import export_source
from nas.generators import regnet
from nas.latency import placed_units
from nas.network import build, complexity
from nas.spaces import constraints_for, parse_space


class PlainBlock(nn.Module):
    """VGG's block: one k x k conv + BN + ReLU."""

    def __init__(self, w_in: int, w_out: int, stride: int, kernel: int = 3, *,
                 doubled: bool = False):
        super().__init__()
        self.conv = ConvBN(w_in, w_out, kernel, stride)
        self.again = ConvBN(w_out, w_out, kernel) if doubled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.again is None else self.again(x)

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, kernel: int = 3, *,
                   doubled: bool = False) -> Cx:
        ConvBN.complexity(cx, w_in, w_out, kernel, stride)
        return ConvBN.complexity(cx, w_out, w_out, kernel) if doubled else cx


@dataclass(frozen=True)
class Plain(Stage):
    block = "plain"
    size = "filters"
    filters: int = 0
    kernel: int = 3
    doubled: bool = option(False)

    def check(self, w_in: int) -> None:
        super().check(w_in)
        require(self.kernel % 2 == 1, "kernel", f"must be odd, got {self.kernel}")

    def units(self, w_in: int) -> list[Unit]:
        return [Unit(PlainBlock, dict(w_in=w, w_out=self.filters, stride=stride,
                                      kernel=self.kernel, doubled=self.doubled))
                for w, stride in self.block_inputs(w_in)]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(FAMILIES, Plain.block, Plain)


CONFIG = {"stem": {"kind": "cifar", "width": 8},
          "stages": [{"block": "plain", "depth": 2, "filters": 16, "stride": 1},
                     {"block": "plain", "depth": 1, "filters": 24, "kernel": 5,
                      "doubled": True}]}


def test_a_registered_family_is_a_config_with_options_left_out_at_their_default():
    net = Network.from_dict(CONFIG)
    assert net.widths() == [8, 16, 24]
    assert Network.from_yaml(net.to_yaml()) == net
    assert "doubled" not in net.to_dict()["stages"][0]
    with pytest.raises(Exception, match=r"stages\[0\].filters: missing"):
        Network.from_dict({"stages": [{"block": "plain", "depth": 1}]})
    with pytest.raises(Exception, match=r"stages\[1\].kernel: must be odd"):
        Network.from_dict({**CONFIG, "stages": [CONFIG["stages"][0],
                                                {**CONFIG["stages"][1], "kernel": 4}]})


def test_a_registered_family_builds_counts_and_keys_latency_tables():
    net = Network.from_dict(CONFIG)
    model = build(net, 10)
    cx = complexity(net, 32, 10)
    assert hook_counts(model, 32) == {"flops": cx.flops, "acts": cx.acts, "params": cx.params}
    signatures = [p.signature() for p in placed_units(net, 32, 10)]
    assert signatures[1] == "PlainBlock(w_in=8,w_out=16,stride=1,kernel=3)@32x32"
    assert signatures[3] == "PlainBlock(w_in=16,w_out=24,stride=2,kernel=5,doubled=True)@32x32"


def test_generators_spaces_and_the_proxy_set_the_familys_size_field():
    net = regnet(6, 16, 8.0, 2.0, block="plain", kernel=3)
    assert [s.filters for s in net.stages] == [16, 32, 64]
    assert [s.filters for s in proxy_network(net, 0.5).stages] == [8, 16, 32]
    space = parse_space("plain", {"generator": "regnet",
                                  "params": {"d": {"int": [4, 8]}, "kernel": {"choice": [3, 5]}},
                                  "fixed": {"block": "plain", "w0": 16, "wa": 8.0, "wm": 2.0}})
    samples = space.sample(5, constraints=constraints_for(space, "1GF"))
    assert {s.network.stages[0].kernel for s in samples} <= {3, 5}


def test_a_registered_family_exports_to_standalone_code(tmp_path):
    net = Network.from_dict(CONFIG)
    path = tmp_path / "plain.py"
    path.write_text(export_source(net, 10))
    check = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('m', "
             "sys.argv[1]); m = importlib.util.module_from_spec(spec); "
             "spec.loader.exec_module(m); "
             "print(sum(p.numel() for p in m.build_model().parameters()))")
    done = subprocess.run([sys.executable, "-c", check, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == complexity(net, 32, 10).params
