"""The proxy evaluator: network adaptation, reproducible training, failures, real accuracy."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import QUICK, TINY, write_batches

from nas.cli import main
from nas.config import Network
from nas.errors import ConfigError
from nas.evaluate import data
from nas.evaluate.proxy import ProxySettings, evaluate, proxy_network, zero_init_residual
from nas.generators import load_network
from nas.network import build


def test_proxy_network_is_the_body_on_a_cifar_stem():
    config = load_network("spaces/zoo/regnetx_400mf.yaml")
    proxy = proxy_network(config)
    assert (proxy.stem.kind, proxy.stem.width) == ("cifar", config.stem.width)
    assert proxy.stages == config.stages
    assert build(proxy, 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_width_multiplier_keeps_group_widths_valid():
    config = load_network("spaces/zoo/regnetx_400mf.yaml")  # widths 32 64 160 384, group 16
    half = proxy_network(config, 0.5)
    assert half.stem.width == 16
    assert [s.width for s in half.stages] == [16, 32, 80, 192]
    quarter = proxy_network(config, 0.25)  # 8 and 40 are no multiples of 16: nearest, ties up
    assert [s.width for s in quarter.stages] == [16, 16, 48, 96]
    assert build(quarter, 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("path", sorted(Path("spaces/zoo").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_family_scales_to_a_valid_proxy(path):
    config = load_network(path)
    for mult in (0.5, 0.3):
        proxy = proxy_network(config, mult)
        for scaled, stage in zip(proxy.stages, config.stages):
            size = getattr(stage, stage.size)
            assert abs(getattr(scaled, stage.size) - mult * size) <= max(8, 0.5 * mult * size)
    def one_group(stage) -> bool:
        return hasattr(stage, "group_w") and stage.group_w == round(stage.width * stage.bot_mul)

    assert all(one_group(p) for p, s in zip(proxy.stages, config.stages) if one_group(s))
    model = build(proxy_network(config, 0.5), 10)
    zero_init_residual(model)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("space", ["igcv3", "mixed", "regnet"])
def test_every_candidate_has_a_proxy_at_the_default_width(space):
    """An IGCV3 stage's groups must divide its input width, which the stage before it sets: a
    width is chosen only if every later stage can still be built (at width 0.25 the nearest
    widths alone left about one IGCV3 candidate in seven without a proxy)."""
    from nas.spaces import constraints_for, load_space

    s = load_space(space)
    for sample in s.sample(100, 0, constraints_for(s, "400MF", None, 224, 1000)):
        model = build(proxy_network(sample.network, ProxySettings().width_mult), 10)
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_same_seed_same_result(noise):
    first, second = (evaluate(TINY, noise, QUICK, seed=7) for _ in range(2))
    assert first.status == "ok", first.reason
    assert (first.top1, first.loss, first.train_loss) == \
        (second.top1, second.loss, second.train_loss)
    assert len(first.train_loss) == 4
    other = evaluate(TINY, noise, QUICK, seed=8)
    assert other.train_loss != first.train_loss


def test_result_serializes(noise):
    result = evaluate(TINY, noise, QUICK)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["status"] == "ok" and 0 <= record["top1"] <= 100
    assert record["seconds"] > 0 and record["images_per_second"] > 0
    assert record["flops"] > 0 and record["params"] == sum(
        p.numel() for p in build(proxy_network(TINY, QUICK.width_mult), 10).parameters())


def test_diverging_loss_fails_with_its_reason(noise):
    result = evaluate(TINY, noise, ProxySettings(**{**QUICK.to_dict(), "lr": 1e30, "clip": 0}))
    assert result.status == "failed"
    assert "training loss became" in result.reason
    assert not np.isfinite(result.train_loss[-1])
    assert len(result.train_loss) < 4


def test_exceptions_become_failed_results(noise):
    too_many = ProxySettings(**{**QUICK.to_dict(), "train_images": 290, "val_images": 50})
    result = evaluate(TINY, noise, too_many)
    assert result.status == "failed" and result.reason.startswith("DataError: cannot take")


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="epochs: must be positive"):
        ProxySettings(epochs=0)
    with pytest.raises(ConfigError, match="batch_size: must be at most train_images"):
        ProxySettings(train_images=10)


def test_cli_trains_and_prints_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    write_batches(tmp_path / "cifar", per_batch=40)
    TINY.save(tmp_path / "tiny.yaml")
    threads = torch.get_num_threads()
    try:
        code = main(["train", str(tmp_path / "tiny.yaml"), "--data", str(tmp_path / "cifar"),
                     "--epochs", "1", "--train-images", "100", "--val-images", "50",
                     "--batch-size", "25", "--threads", "1", "--json"])
    finally:  # training sets torch's threads process-wide
        torch.set_num_threads(threads)
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["status"] == "ok"
    assert record["settings"]["train_images"] == 100 and len(record["train_loss"]) == 4


def test_cli_without_data_or_network_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NAS_DATA", raising=False)
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAS_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # refused
    TINY.save(tmp_path / "tiny.yaml")
    assert main(["train", str(tmp_path / "tiny.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not download CIFAR-10" in err
    assert "--data DIR or the NAS_DATA" in err


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NAS_DATA"), reason="NAS_DATA (CIFAR-10) is not set")
def test_small_network_learns_real_cifar():
    config = Network.from_dict({"stem": {"kind": "simple", "width": 16}, "stages": [
        {"block": "resnext", "depth": 1, "width": 32, "group_w": 16},
        {"block": "resnext", "depth": 1, "width": 64, "group_w": 16},
        {"block": "resnext", "depth": 1, "width": 128, "group_w": 16}]})
    settings = ProxySettings(epochs=3, train_images=5000, val_images=2000, width_mult=1.0)
    result = evaluate(config, data.load(), settings)
    assert result.status == "ok", result.reason
    assert result.top1 >= 30  # chance is 10
    assert result.train_loss[-1] < result.train_loss[0]
