"""The accuracy signal: zero-cost scores against their definitions, the ranking model, and the
measurement a search makes of one candidate."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import QUICK, TINY
from scipy.stats import kendalltau
from torch import nn

from nas.blocks.layers import SE
from nas.config import Network
from nas.evaluate import data, zero_cost
from nas.evaluate.proxy import NUM_CLASSES, proxy_network
from nas.evaluate.ranking import (
    DEFAULT_SIGNAL,
    LOG_COUNTS,
    SIGNALS,
    TRAINED,
    Ranking,
    available,
    features,
)
from nas.evaluate.signal import (
    ZERO_COST_BATCH,
    ZERO_COST_WIDTH,
    measure,
    score_batch,
)
from nas.network import build


def positive_chain() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5, bias=False))


def test_synflow_is_depth_times_the_output_for_a_bias_free_relu_chain():
    """R = 1'|W2||W1|1 is homogeneous of degree one in each layer's weights, so each layer's
    sum of |w dR/dw| is R itself (Euler) and the score is log(2 R)."""
    net = positive_chain()
    with torch.no_grad():
        w1, w2 = net[0].weight.abs().double(), net[3].weight.abs().double()
        hidden = nn.functional.conv2d(torch.ones(1, 3, 8, 8, dtype=torch.float64), w1)
        r = (hidden.flatten(1) @ w2.T).sum().item()
    assert zero_cost.synflow(net, (3, 8, 8)) == pytest.approx(math.log(2 * r), rel=1e-9)


def test_synflow_stays_exact_where_float64_overflows():
    """1,200 linear layers of ones, 8 wide: R = 8^1201 (about 1e1084) and every layer's sum of
    w dR/dw is R, so the score is log(1200 R)."""
    layers = [nn.Linear(8, 8, bias=False) for _ in range(1200)]
    for layer in layers:
        nn.init.ones_(layer.weight)
    score = zero_cost.synflow(nn.Sequential(nn.Flatten(), *layers), (8,))
    assert score == pytest.approx(math.log(1200) + 1201 * math.log(8), rel=1e-12)


@pytest.mark.parametrize("stage", [
    {"block": "resnext", "depth": 3, "width": 32, "group_w": 8, "se": 0.25},
    {"block": "densenet", "depth": 4, "growth": 8},
    {"block": "mobilenetv2", "depth": 2, "width": 16},
])
def test_synflow_divides_its_scaling_out_exactly(stage):
    """The score with each block's output rescaled equals the plain float64 sum over the same
    linearised network (residual sums, concatenations, SE and ReLU6 included)."""
    torch.manual_seed(0)
    net = build(Network.from_dict({"stem": {"kind": "cifar", "width": 16}, "stages": [stage]}), 10)
    plain = zero_cost._linearised(net)
    plain(torch.ones(1, 3, 16, 16, dtype=torch.float64)).sum().backward()
    total = sum((m.weight * m.weight.grad).abs().sum().item() for m in plain.modules()
                if isinstance(m, zero_cost.WEIGHTED))
    assert zero_cost.synflow(net, (3, 16, 16)) == pytest.approx(math.log(total), rel=1e-12)


def test_synflow_is_the_score_of_the_linearised_network():
    """ReLU6 that would saturate, and an SE gate, count as the identity."""
    def chain(*middle):
        torch.manual_seed(0)
        first = nn.Linear(4, 16)
        nn.init.constant_(first.weight, 3.0)  # every unit at 12 on all-ones input: ReLU6 clips
        return nn.Sequential(nn.Flatten(), first, *middle, nn.Linear(16, 3))
    se = SE(16, 4)
    gated = nn.Sequential(nn.Unflatten(1, (16, 1, 1)), se, nn.Flatten())
    linear = zero_cost.synflow(chain(), (4,))
    assert zero_cost.synflow(chain(nn.ReLU6()), (4,)) == pytest.approx(linear, rel=1e-12)
    assert zero_cost.synflow(chain(gated), (4,)) == pytest.approx(linear, rel=1e-12)


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    net = positive_chain().train()
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        codes = (net[1](net[0](x)).flatten(1) > 0).double()
    hamming = codes.shape[1] - torch.cdist(codes, codes, p=1)  # agreeing units
    assert zero_cost.naswot(net, x) == pytest.approx(torch.linalg.slogdet(hamming)[1].item())


def test_scores_leave_the_model_unchanged_and_track_its_size():
    small, large = (build(Network.from_dict({"stem": {"kind": "cifar", "width": w}, "stages": [
        {"block": "resnext", "depth": 2, "width": 2 * w, "group_w": 8}]}), 10) for w in (8, 32))
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    before = {k: v.clone() for k, v in small.state_dict().items()}
    s_small, s_large = zero_cost.scores(small, x, y), zero_cost.scores(large, x, y)
    assert all(torch.equal(before[k], v) for k, v in small.state_dict().items())
    assert set(s_small) == set(zero_cost.SCORES)
    assert s_large["synflow"] > s_small["synflow"] and s_large["naswot"] > s_small["naswot"]
    with pytest.raises(ValueError, match="beauty"):
        zero_cost.scores(small, x, y, ("beauty",))


def test_a_fitted_ranking_orders_networks_by_the_error_it_was_fitted_on():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)) * [1.0, 50.0] + [20.0, 800.0]
    errors = np.exp(-(0.3 * x[:, 0] + 0.01 * x[:, 1])) * 1e4
    model = Ranking.fit(("log_flops", "naswot"), x, errors, ridge=1e-6)
    scores = [model.score(row) for row in x]
    assert kendalltau(scores, -errors).statistic == pytest.approx(1.0)
    assert model.score(x[0]) == pytest.approx(100 - errors[0], rel=1e-6)  # exact with no ridge
    assert model.weights[0] > 0 and model.weights[1] > 0


def test_features_are_read_from_raw_measurements():
    measured = {"flops": 4e8, "params": 5e6, "naswot": 700.0, "synflow": math.inf}
    assert features(measured, ("log_flops", "log_params", "naswot")) == \
        [math.log(4e8), math.log(5e6), 700.0]
    assert available(measured, ("log_flops", "naswot"))
    assert not available(measured, ("synflow",)) and not available(measured, ("proxy",))


def test_every_shipped_signal_is_measurable():
    assert DEFAULT_SIGNAL in SIGNALS
    for ranking in SIGNALS.values():
        assert len(ranking.features) == len(ranking.weights) == len(ranking.mean)
        assert all(f in (*LOG_COUNTS, *TRAINED, *zero_cost.SCORES) for f in ranking.features)


def test_score_batch_is_fixed_and_stratified_enough(noise):
    x, y = score_batch(noise)
    assert x.shape == (ZERO_COST_BATCH, 3, 32, 32) and len(set(y.tolist())) == 10
    assert torch.equal(x, score_batch(noise)[0])


def test_measure_trains_only_for_a_signal_that_needs_it(noise):
    zero, weights = measure(TINY, noise, Ranking(("log_params", "naswot"), (0, 0), (1, 1),
                                                 (1, 1), 0), QUICK, seed=0)
    assert zero["status"] == "ok" and "naswot" in zero and "top1" not in zero
    assert weights is None
    trained, weights = measure(TINY, noise, SIGNALS["proxy"], QUICK, seed=0)
    assert trained["status"] == "ok" and 0 <= trained["top1"] <= 100
    assert trained["sotl"] > 0 and weights
    assert measure(TINY, noise, SIGNALS["proxy"], QUICK, seed=0)[0]["top1"] == trained["top1"]


def test_zero_cost_scores_are_of_the_proxy_at_one_width(noise):
    """The zero-cost signal is fitted on proxies of width ZERO_COST_WIDTH: the proxy
    training's width multiplier leaves the scores unchanged."""
    ranking = Ranking(("naswot",), (0,), (1,), (1,), 0)
    scores = [measure(TINY, noise, ranking, dataclasses.replace(QUICK, width_mult=w), seed=0)[0]
              for w in (0.25, 1.0)]
    torch.manual_seed(0)
    model = build(proxy_network(TINY, ZERO_COST_WIDTH), NUM_CLASSES)
    expected = zero_cost.scores(model, *score_batch(noise), ("naswot",))["naswot"]
    assert scores[0]["naswot"] == scores[1]["naswot"] == expected


def test_measure_reports_a_failure_instead_of_raising(noise):
    broken = data.Cifar10(noise.train_images[:10], noise.train_labels[:10], noise.test_images,
                          noise.test_labels)  # too few images for the training split
    record, _ = measure(TINY, broken, SIGNALS["proxy"], QUICK, seed=0)
    assert record["status"] == "failed" and record["reason"]
