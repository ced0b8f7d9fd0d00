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
from nas.blocks.basic import BasicBlock
from nas.blocks.densenet import DenseLayer
from nas.blocks.igcv3 import IGCV3Block
from nas.blocks.layers import channel_shuffle
from nas.blocks.mobilenetv2 import InvertedResidual
from nas.blocks.residual import PadShortcut
from nas.blocks.resnext import ResNeXtBlock
from nas.blocks.shufflenetv2 import ShuffleUnit
from nas.cost.measure import hook_counts
from nas.network import build, complexity

CONFIGS_PER_FAMILY = 200  # the first QUICK of each family run by default, the rest marked slow
QUICK = 40
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


@pytest.mark.parametrize("seed", [s if s < QUICK else pytest.param(s, marks=pytest.mark.slow)
                                  for s in range(CONFIGS_PER_FAMILY)])
@pytest.mark.parametrize("family", FAMILIES)
def test_analytic_costs_equal_the_built_module(family, seed):
    net = _network(family, seed)
    model = build(net, NUM_CLASSES)
    for resolution in RESOLUTIONS:
        cx = complexity(net, resolution, NUM_CLASSES)
        analytic = {"flops": cx.flops, "acts": cx.acts, "params": cx.params}
        assert hook_counts(model, resolution) == analytic, (resolution, net.to_yaml())
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


@pytest.mark.parametrize("make", [
    lambda w_out, stride: InvertedResidual(8, w_out, stride, 6.0, 3, 0.25),
    lambda w_out, stride: IGCV3Block(8, w_out, stride, 6.0, 0.25, 2, 2)])
def test_inverted_residual_adds_its_input_only_at_stride_1_and_equal_widths(make):
    x = torch.randn(2, 8, 9, 9)
    block = make(8, 1)
    assert torch.equal(_silenced(block, block.project.bn)(x), x)
    for w_out, stride in ((8, 2), (16, 1)):
        block = make(w_out, stride)
        assert not _silenced(block, block.project.bn)(x).any()


def test_expansion_1_drops_mobilenetv2s_expansion_conv_and_keeps_igcv3s():
    assert InvertedResidual(32, 16, 1, 1.0).expand is None
    igcv3 = IGCV3Block(32, 16, 1, 1.0, groups1=2, groups2=2)
    assert igcv3.expand.conv.weight.shape == (32, 16, 1, 1)  # 2 groups: 512 weights


RESIDUAL_BLOCKS = {
    "resnext": lambda *args, **kw: ResNeXtBlock(*args, 0.5, 2, **kw),
    "preact-resnext": lambda *args, **kw: ResNeXtBlock(*args, 0.5, 2, preact=True, **kw),
    "basic": BasicBlock,
    "preact-basic": lambda *args, **kw: BasicBlock(*args, preact=True, **kw)}


@pytest.mark.parametrize("kind", RESIDUAL_BLOCKS)
def test_zero_init_last_makes_a_residual_block_its_shortcut(kind):
    x = torch.rand(2, 8, 9, 9)  # non-negative: the ReLU after a post-activation sum keeps it
    block = RESIDUAL_BLOCKS[kind](8, 8, 1, se=0.25)
    block.zero_init_last()
    assert torch.equal(block.eval()(x), x)
    block = RESIDUAL_BLOCKS[kind](8, 16, 2, shortcut="pad", se=0.25, se_at="out")
    block.zero_init_last()
    y = block.eval()(x)
    shortcut_input = block.preact(x) if kind.startswith("preact") else x
    assert torch.equal(y, PadShortcut(8, 16, 2)(shortcut_input))


def test_pad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.randn(2, 4, 9, 9)
    y = PadShortcut(4, 6, 2)(x)
    assert y.shape == (2, 6, 5, 5)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2]) and not y[:, 4:].any()


@pytest.mark.parametrize("kind", ["preact-resnext", "preact-basic"])
def test_preact_block_sums_without_relu_and_projects_the_preactivated_input(kind):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    block = RESIDUAL_BLOCKS[kind](8, 16, 2).eval()
    y = block(x)
    assert (y < 0).any()  # nothing rectifies the sum
    block.zero_init_last()
    assert torch.allclose(block(x), block.shortcut(block.preact(x)))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.shortcut.modules())


@pytest.mark.parametrize("se_at, channels", [("mid", 4), ("out", 8)])
def test_se_gates_the_bottleneck_or_the_branch_output(se_at, channels):
    block = ResNeXtBlock(16, 8, 1, 0.5, 2, se=0.25, se_at=se_at)
    squeeze = 4 if se_at == "mid" else 2  # of the input width 16, or of the output width 8
    assert block.se.reduce.weight.shape == (squeeze, channels, 1, 1)


def test_stride_at_first_moves_the_stride_to_the_first_1x1_conv():
    first = ResNeXtBlock(8, 16, 2, 0.25, 4, stride_at="first")
    middle = ResNeXtBlock(8, 16, 2, 0.25, 4)
    assert (first.a.conv.stride, first.b.conv.stride) == ((2, 2), (1, 1))
    assert (middle.a.conv.stride, middle.b.conv.stride) == ((1, 1), (2, 2))
    x = torch.randn(1, 8, 9, 9)
    assert first(x).shape == middle(x).shape == (1, 16, 5, 5)


def test_shuffle_unit_passes_half_its_input_interleaved_with_the_main_branch():
    x = torch.randn(2, 8, 9, 9)
    unit = ShuffleUnit(8, 8, 1, se=0.25)
    y = _silenced(unit, unit.main[2].bn)(x)
    assert torch.equal(y[:, 0::2], x[:, :4]) and not y[:, 1::2].any()


@pytest.mark.parametrize("bottleneck", [0, 2])
def test_dense_layer_keeps_its_input_and_adds_growth_channels(bottleneck):
    x = torch.randn(2, 8, 9, 9)
    layer = DenseLayer(8, growth=5, bottleneck=bottleneck, se=0.25)
    y = layer.eval()(x)
    assert y.shape == (2, 13, 9, 9) and torch.equal(y[:, :8], x)
    assert (layer.a is None) == (bottleneck == 0)


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
