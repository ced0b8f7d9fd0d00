"""Exported standalone files: built in a fresh process, they are the tool's network exactly."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from randomnets import random_network

from nas.blocks import FAMILIES, ConfigError
from nas.cli import main
from nas.config import Network
from nas.export import write_export
from nas.generators import load_network
from nas.network import build, complexity
from nas.search.settings import SearchSettings

RESOLUTION = 64
CHECK = """
import importlib.util, json, sys
import torch
torch.set_num_threads(1)  # as the outputs it is compared with were computed
from nas.cost.measure import hook_counts
out = {}
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(num_classes=7)
    model.load_state_dict(torch.load(path[:-3] + ".state.pt", weights_only=True))
    x = torch.load(path[:-3] + ".input.pt", weights_only=True)
    with torch.no_grad():
        torch.save(model.eval()(x), path[:-3] + ".output.pt")
    out[path] = {**hook_counts(model, RESOLUTION), "names": list(model.state_dict())}
print(json.dumps(out))
""".replace("RESOLUTION", str(RESOLUTION))


# every option of a family, set on all stages of a random network of it (SE on and off)
OPTIONS = [
    ("resnext", dict(preact=True, se_at="out", stride_at="first", shortcut="pad")),
    ("resnext", dict(se_at="out", stride_at="first", shortcut="avgpool")),
    ("basic", dict(preact=True, dropout=0.3, shortcut="proj")),
    ("basic", dict(shortcut="pad", se_at="mid")),
    ("basic", dict(preact=True, shortcut="avgpool", se_at="out")),
    ("densenet", dict(bottleneck=0, compression=1.0)),
    ("igcv3", dict(expansion=1.0)),
]


def _with_options(rng, family: str, options: dict) -> Network:
    """A random network of ``family`` whose stages all take ``options`` (drawn until valid)."""
    while True:
        net = random_network(rng, family, [2, 1, 2])
        try:
            return dataclasses.replace(net, stages=tuple(dataclasses.replace(s, **options)
                                                         for s in net.stages)).validate()
        except ConfigError:
            continue


def test_exported_networks_equal_the_tools_for_every_family(tmp_path):
    rng = random.Random(0)
    cases = {}
    draws = [(family, {}) for family in FAMILIES] + OPTIONS
    for i, (family, options) in enumerate(draws):
        for se in (0.0, 0.25):
            net = _with_options(rng, family, {**options, "se": se})
            if i == 0:
                net = dataclasses.replace(net, stem=dataclasses.replace(net.stem, norm=False))
            path = tmp_path / f"{i}_{family}_se{se}.py"
            write_export(net, path, num_classes=7, title=f"{family} case {i} se={se}")
            model = build(net, 7).eval()
            torch.manual_seed(1)
            for p in model.parameters():  # weights unlike a fresh init, BN stats included
                p.data.normal_(0, 0.1)
            x = torch.randn(2, 3, RESOLUTION, RESOLUTION)
            torch.save(model.state_dict(), path.with_suffix(".state.pt"))
            torch.save(x, path.with_suffix(".input.pt"))
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # kernels reduce in the same order in both processes
            with torch.no_grad():
                cases[str(path)] = (net, model(x), list(model.state_dict()))
            torch.set_num_threads(threads)
            text = path.read_text()
            assert "import nas" not in text and "from nas" not in text
            assert "def complexity" not in text and "class Net(nn.Module)" in text
            assert Network.from_yaml(path.with_suffix(".yaml").read_text()) == net
            lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                                   "--select", "E,F,W,I,B,UP", str(path)], capture_output=True,
                                  text=True)
            assert lint.returncode == 0, lint.stdout
    done = subprocess.run([sys.executable, "-c", CHECK, *cases], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout)
    for path, (net, output, names) in cases.items():
        cx = complexity(net, RESOLUTION, 7)
        assert measured[path]["params"] == cx.params
        assert measured[path]["flops"] == cx.flops
        assert measured[path]["names"] == names
        # the same code and weights: equal up to float rounding of kernels chosen per process
        expected = torch.load(path[:-3] + ".output.pt", weights_only=True)
        assert torch.allclose(expected, output, rtol=0, atol=1e-6), path


def fake_run(path, statuses):
    path.mkdir()
    settings = SearchSettings(objectives=("accuracy", "flops")).to_dict()
    settings["proxy"] = dict(settings["proxy"])
    (path / "run.yaml").write_text(yaml.safe_dump({"settings": settings}))
    net = load_network(Path(__file__).parent.parent / "spaces/zoo/regnetx_400mf.yaml")
    pd.DataFrame([{"trial_id": i, "status": s, "accuracy": 50.0 + i, "latency_ms": None,
                   "flops": 1e8 * (i + 1), "params": 1e6, "mac": 1e7, "config": net.to_json()}
                  for i, s in enumerate(statuses)]).to_csv(path / "trials.csv", index=False)


def test_an_export_through_the_latest_link_names_the_run_it_links_to(tmp_path):
    fake_run(tmp_path / "20261207-120000-regnet", ["complete"])
    (tmp_path / "latest").symlink_to("20261207-120000-regnet")
    assert main(["export", str(tmp_path / "latest"), "-o", str(tmp_path / "m.py")]) == 0
    assert (tmp_path / "m.py").read_text().startswith('"""Trial 0 of 20261207-120000-regnet (')


def test_export_of_a_run_picks_the_front(tmp_path, capsys):
    fake_run(tmp_path / "run", ["complete", "infeasible", "complete"])
    assert main(["export", str(tmp_path / "run"), "--pick", "accuracy",
                 "-o", str(tmp_path / "m.py")]) == 0
    assert "trial 2" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run"), "--pick", "flops",
                 "-o", str(tmp_path / "m.py")]) == 2
    assert "m.py: already exists; give --force" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--pick", "flops", "--force",
                 "-o", str(tmp_path / "m.py")]) == 0
    assert "trial 0" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py", "m.yaml", "run"]
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    trials["params"] = [3e6, 9e6, 2e6]  # any objective can be picked by, on the front
    trials.to_csv(tmp_path / "run" / "trials.csv", index=False)
    assert main(["export", str(tmp_path / "run"), "--pick", "params", "--force",
                 "-o", str(tmp_path / "m.py")]) == 0
    assert "trial 2" in capsys.readouterr().out
    # Another format writes the same config file beside it: one that holds another network is
    # refused before anything is written; one that holds this network is shared.
    config = (tmp_path / "m.yaml").read_text()
    (tmp_path / "m.yaml").write_text(config.replace("depth: 1", "depth: 2", 1))
    onnx = ["export", str(tmp_path / "run"), "--pick", "accuracy", "--format", "onnx",
            "-o", str(tmp_path / "m.onnx")]
    assert main(onnx) == 2
    assert "m.yaml: already exists; give --force" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists() and (tmp_path / "m.yaml").read_text() != config
    (tmp_path / "m.yaml").write_text(config)
    pytest.importorskip("onnxruntime")  # the onnx extra
    assert main(onnx) == 0
    assert (tmp_path / "m.onnx").exists() and (tmp_path / "m.yaml").read_text() == config


def _proxy_weights(run: Path) -> dict:
    """Proxy-network weights saved as trial 0's, the way a search saves them."""
    from nas.evaluate.proxy import NUM_CLASSES, ProxySettings, proxy_network

    config = Network.from_json(pd.read_csv(run / "trials.csv")["config"][0])
    state = build(proxy_network(config, ProxySettings().width_mult), NUM_CLASSES).state_dict()
    (run / "weights").mkdir()
    torch.save(state, run / "weights" / "trial_0.pt")
    return state


def test_export_with_weights_loads_them_safely_in_the_written_file(tmp_path, capsys):
    """The file builds the proxy-trained network, says so, and carries the normalization its
    weights were trained with; what export prints counts that network, not the candidate."""
    from nas.evaluate.data import MEAN, STD

    fake_run(tmp_path / "run ' \"quoted\"", ["complete"])
    run = next(tmp_path.iterdir())
    state = _proxy_weights(run)
    assert main(["export", str(run), "--weights", "-o", str(tmp_path / "m.py")]) == 0
    printed = capsys.readouterr().out
    source = (tmp_path / "m.py").read_text()
    assert 'weights_only=True' in source and "as proxy-trained" in source
    script = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('m', "
              "sys.argv[1]); m = importlib.util.module_from_spec(spec); "
              "spec.loader.exec_module(m); model = m.build_model(); "
              "print(len(model.state_dict()), sum(p.numel() for p in model.parameters()), "
              "m.MEAN, m.STD, sep=';')")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.py")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    tensors, params, mean, std = done.stdout.strip().split(";")
    assert int(tensors) == len(state)
    assert f"params {int(params):,} at 32x32" in printed
    assert (mean, std) == (str(MEAN), str(STD))


@pytest.mark.parametrize("statuses, args, message", [
    (["infeasible", "failed"], [], "no trial is complete (1 infeasible, 1 failed)"),
    (["complete"], ["--trial", "7"], "no trial 7"),
    (["complete", "failed"], ["--trial", "1"], "trial 1 is failed"),
    (["complete"], ["--weights"], "no saved weights"),
])
def test_export_errors_are_one_line(tmp_path, capsys, statuses, args, message):
    fake_run(tmp_path / "run", statuses)
    assert main(["export", str(tmp_path / "run"), *args, "-o", str(tmp_path / "m.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_pareto_and_export_state_the_latency_tables_noise(tmp_path, capsys):
    fake_run(tmp_path / "run", ["complete"] * 3)
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")  # 2 without noise: an older run's
    trials["latency_ms"], trials["latency_noise"] = [5.0, 4.0, 3.0], [0.062, None, None]
    trials.to_csv(tmp_path / "run" / "trials.csv", index=False)
    assert main(["pareto", str(tmp_path / "run"), "--plot", str(tmp_path / "front.png")]) == 0
    rows = capsys.readouterr().out.splitlines()[2:5]  # the most accurate first
    assert [r.split()[2:4] for r in rows] == [["3.00", "300M"], ["4.00", "200M"],
                                               ["5.00", "±6%"]]
    assert (tmp_path / "front.png").stat().st_size > 10_000
    for which, said in [(["--trial", "0"], "trial 0: accuracy 50.00, latency 5.00 ms ±6%, "),
                        (["--pick", "accuracy"], "trial 2: accuracy 52.00, latency 3.00 ms, ")]:
        assert main(["export", str(tmp_path / "run"), *which, "--force",
                     "-o", str(tmp_path / "m.py")]) == 0
        assert said + "flops" in capsys.readouterr().out


def test_pareto_and_analyze_read_runs_and_plot(tmp_path, capsys):
    fake_run(tmp_path / "a", ["complete", "complete", "complete"])
    fake_run(tmp_path / "b", ["complete", "infeasible"])
    assert main(["pareto", str(tmp_path / "a"), str(tmp_path / "b"), "--plot",
                 str(tmp_path / "front.png")]) == 0
    out = capsys.readouterr().out
    assert "3 on the front of 3" in out and "resnext d[1,2,7,12] w[32,64,160,384]" in out
    assert (tmp_path / "front.png").stat().st_size > 10_000
    assert main(["analyze", str(tmp_path / "a"), str(tmp_path / "b"), "--plot",
                 str(tmp_path / "edf.png")]) == 0
    out = capsys.readouterr().out
    assert "48.00" in out and (tmp_path / "edf.png").exists()  # best error of run a: 100 - 52
    # errors a: 50, 49, 48; b: 50. Below the median of all four, 49.5: two of a's, none of b's.
    # A quarter of a's three models is one: its best ranges over all three.
    rows = {f[0]: f for f in map(str.split, out.splitlines()) if f and f[0] in ("a", "b")}
    assert "share < 49.50" in out
    assert rows["a"][-1] == "0.67" and rows["b"][-1] == "0.00"
    assert " ".join(rows["a"][5:7]) == "[48.00, 50.00]"
    assert "of a, b is a function of analytic counts" in out
    assert main(["pareto", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
