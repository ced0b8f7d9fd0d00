"""Every block family on random configs: the analytic costs equal the built module's, and the
module runs forward and backward with the shapes the analytic walk predicts. Then the wiring
each paper specifies: residuals, channel split and shuffle, dense concatenation."""

from __future__ import annotations

import random

import pytest
import torch
from randomnets import random_network
from torch import nn

from nas.blocks import FAMILIES
from nas.blocks.densenet import DenseLayer
from nas.blocks.layers import channel_shuffle
from nas.blocks.mobilenetv2 import InvertedResidual
from nas.blocks.shufflenetv2 import ShuffleUnit
from nas.cost.measure import measure
from nas.network import build, complexity

CONFIGS_PER_FAMILY = 200
RESOLUTIONS = (32, 224)
FORWARD_224_EVERY = 20  # forward and backward at 224 on every 20th config, at 32 on all
NUM_CLASSES = 10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: on busy cores, more threads only add waiting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _network(family: str, seed: int):
    rng = random.Random(f"{family}-{seed}")
    return random_network(rng, family, [rng.randint(1, 3) for _ in range(rng.randint(1, 3))])


@pytest.mark.parametrize("seed", range(CONFIGS_PER_FAMILY))
@pytest.mark.parametrize("family", FAMILIES)
def test_analytic_costs_equal_the_built_module(family, seed):
    net = _network(family, seed)
    model = build(net, NUM_CLASSES)
    for resolution in RESOLUTIONS:
        cx = complexity(net, resolution, NUM_CLASSES)
        analytic = {"flops": cx.flops, "acts": cx.acts, "params": cx.params}
        assert measure(model, resolution) == analytic, (resolution, net.to_yaml())
    for resolution in RESOLUTIONS[:1] if seed % FORWARD_224_EVERY else RESOLUTIONS:
        _check_forward_backward(net, model, resolution)


def _check_forward_backward(net, model, resolution: int) -> None:
    """Output and per-stage shapes for batches 1 and 3, and a gradient for every parameter."""
    cx = complexity(net, resolution, NUM_CLASSES)
    stages = [getattr(model, f"s{i}") for i in range(1, len(net.stages) + 1)]
    shapes = []
    hooks = [s.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape)))
             for s in stages]
    try:
        for batch in (1, 3):
            shapes.clear()
            model.train(batch > 1)  # batch norm cannot train on one value per channel
            model.zero_grad()
            out = model(torch.randn(batch, 3, resolution, resolution))
            assert out.shape == (batch, NUM_CLASSES)
            assert shapes == [(batch, width, s.resolution, s.resolution)
                              for width, s in zip(net.widths()[1:], cx.stages)]
            out.square().sum().backward()
            assert all(p.grad is not None and p.grad.isfinite().all()
                       for p in model.parameters())
    finally:
        for hook in hooks:
            hook.remove()


def _silenced(module: nn.Module, bn: nn.BatchNorm2d) -> nn.Module:
    """``module`` in eval mode with ``bn`` zeroed, so that its path adds nothing."""
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)
    return module.eval()


@pytest.mark.parametrize("groups", [1, 2])
def test_inverted_residual_adds_its_input_only_at_stride_1_and_equal_widths(groups):
    x = torch.randn(2, 8, 9, 9)
    block = InvertedResidual(8, 8, 1, 6.0, 3, 0.25, groups, groups)
    assert torch.equal(_silenced(block, block.project.bn)(x), x)
    for w_out, stride in ((8, 2), (16, 1)):
        block = InvertedResidual(8, w_out, stride, 6.0, 3, 0.25, groups, groups)
        assert not _silenced(block, block.project.bn)(x).any()


def test_shuffle_unit_passes_half_its_input_interleaved_with_the_main_branch():
    x = torch.randn(2, 8, 9, 9)
    unit = ShuffleUnit(8, 8, 1, se=0.25)
    y = _silenced(unit, unit.main[2].bn)(x)
    assert torch.equal(y[:, 0::2], x[:, :4]) and not y[:, 1::2].any()


def test_dense_layer_keeps_its_input_and_adds_growth_channels():
    x = torch.randn(2, 8, 9, 9)
    y = DenseLayer(8, growth=5, bottleneck=2, se=0.25).eval()(x)
    assert y.shape == (2, 13, 9, 9) and torch.equal(y[:, :8], x)


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
