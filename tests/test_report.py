"""``nas report``: one self-contained HTML file whose plots a browser draws, offline."""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from nas.cli import main
from nas.generators import regnet
from nas.search.settings import SearchSettings

pytest.importorskip("plotly")  # the report extra, which CI installs with dev
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)


def _run(path, trials: int, seed: int) -> None:
    """A run folder of ``trials`` complete trials of RegNets with made-up scores."""
    rng = random.Random(seed)
    path.mkdir()
    settings = SearchSettings(objectives=("accuracy", "latency")).to_dict()
    settings["proxy"] = dict(settings["proxy"])
    (path / "run.yaml").write_text(yaml.safe_dump({"settings": settings}))
    rows = []
    for i in range(trials):
        d, w0 = rng.randint(8, 20), 8 * rng.randint(2, 8)
        net = regnet(d, w0, rng.uniform(8, 40), rng.uniform(2, 3), group_w=8)
        flops = 1e8 * rng.uniform(1, 4)
        rows.append({"trial_id": i, "status": "complete" if i % 10 else "infeasible",
                     "accuracy": 80 + 10 * rng.random(), "latency_ms": flops / 1e8 * 3,
                     "latency_noise": 0.05,
                     "flops": flops, "params": 1e6 * rng.uniform(1, 6), "mac": 1e7,
                     "config": net.to_json()})
    pd.DataFrame(rows).to_csv(path / "trials.csv", index=False)


def test_report_is_one_offline_file_under_5mb_with_every_trial(tmp_path, capsys):
    _run(tmp_path / "a", 200, 0)
    _run(tmp_path / "b", 40, 1)
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    text = out.read_text()
    assert out.stat().st_size < 5 * 2**20
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js inline: no CDN, no network
    assert text.count("class=\"plotly-graph-div\"") == 3  # three figures
    assert re.search(r"trial 199(<|\\u003c)br", text)  # hover text, as plotly escapes it
    assert re.search(r"<td>\d+\.\d\d ±5%</td>", text)  # a latency with its table's noise
    assert "a: Pareto front" in text and "b: Pareto front" in text
    assert text.count("<tr>") == 1 + 200 + 1 + 40  # every trial of both runs, with headers


def test_a_bad_run_folder_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


DAMAGED = {"empty": "", "foreign": "name,age\nada,36\n",
           "garbled": "trial_id,status,accuracy,latency_ms,config\n0,complete,9O.1,3.2,{\n"}


@pytest.mark.parametrize("damage", DAMAGED)
@pytest.mark.parametrize("command", [["pareto"], ["analyze"], ["report", "-o", "r.html"],
                                     ["export", "-o", "m.py"]])
def test_a_damaged_trials_table_is_one_line(tmp_path, capsys, monkeypatch, command, damage):
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "a", 20, 0)
    (tmp_path / "a" / "trials.csv").write_text(DAMAGED[damage])
    assert main([command[0], "a", *command[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "trials.csv: damaged" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing written


def test_a_trial_whose_config_is_not_json_is_named(tmp_path, capsys):
    _run(tmp_path / "a", 20, 0)
    trials = pd.read_csv(tmp_path / "a" / "trials.csv")
    trials.loc[3, "config"] = '{"stem": 16, "stages": ['
    trials.to_csv(tmp_path / "a" / "trials.csv", index=False)
    assert main(["pareto", str(tmp_path / "a")]) == 2
    assert "line 5: the config is not JSON" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt install chromium)")
def test_chromium_draws_the_reports_plots(tmp_path):
    _run(tmp_path / "a", 60, 0)
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "a"), "-o", str(out)]) == 0
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=10000", "--dump-dom", out.as_uri()],
                          capture_output=True, text=True, timeout=180)
    dom = done.stdout
    assert dom.count('class="main-svg"') >= 6, done.stderr[-2000:]  # plotly drew 3 figures
    assert dom.count('class="point"') >= 54  # a marker per complete trial, in the SVG


def test_a_runs_study_journal_opens_in_optuna_as_optuna_dashboard_opens_it(tmp_path):
    """``optuna-dashboard RUN/study.journal --storage-class JournalFileStorage`` reads the
    journal with Optuna's own journal storage, as here."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    run = tmp_path / "run"
    assert main(["search", "--objectives", "accuracy,flops", "--trials", "5", "--data",
                 str(tmp_path / "none"), "--out", str(run)]) == 0
    storage = JournalStorage(JournalFileBackend(str(run / "study.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 5 and all(t.user_attrs.get("config") for t in complete)


def test_hypervolume_so_far_is_each_prefix_front_volume():
    from nas.search.html_report import volumes_so_far
    from nas.search.pareto import hypervolume

    rng = np.random.default_rng(0)
    done = pd.DataFrame({"accuracy": rng.uniform(80, 95, 120),
                         "latency_ms": rng.uniform(1, 20, 120)})
    done.loc[7] = done.loc[3]  # a repeated network
    objectives = ["accuracy", "latency_ms"]
    reference = [done["accuracy"].min(), done["latency_ms"].max()]
    assert volumes_so_far(done, objectives, reference) == pytest.approx(
        [hypervolume(done.iloc[:k], objectives, reference) for k in range(1, len(done) + 1)])


def test_overlaid_runs_hypervolumes_share_one_reference_point(tmp_path):
    """Run b's trials are a's worst ones: by a reference of its own, b's front would cover as
    much as a's; from the one reference of both, it covers less."""
    import plotly.graph_objects as go

    from nas.search.html_report import _progress
    from nas.search.pareto import hypervolume
    from nas.search.report import load_run

    _run(tmp_path / "a", 60, 2)
    trials = pd.read_csv(tmp_path / "a" / "trials.csv")
    worst = trials[trials["accuracy"] < trials["accuracy"].median()]
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "run.yaml", tmp_path / "b")
    worst.to_csv(tmp_path / "b" / "trials.csv", index=False)
    runs = [load_run(tmp_path / "a"), load_run(tmp_path / "b")]
    fig = _progress(go, runs)
    final = {t.name.split(":")[0]: t.y[-1] for t in fig.data if t.name.endswith("hypervolume")}
    done = pd.concat([r.complete() for r in runs])
    objectives = ["accuracy", "latency_ms"]
    reference = [done["accuracy"].min(), done["latency_ms"].max()]
    for run in runs:
        assert final[run.name] == pytest.approx(hypervolume(run.complete(), objectives,
                                                            reference))
    assert final["b"] < final["a"]
    assert fig.layout.yaxis2.title.text == "hypervolume of accuracy signal (%) x predicted " \
                                           "latency (ms)"


def test_the_empirical_bootstrap_finds_where_the_best_models_lie():
    """Errors lowest at x = 3: the best of a quarter of 400 models lies near 3, and its error
    above the best of all in most resamples (resamples of all would be pinned at it)."""
    from nas.search.report import best_error_interval, best_value_interval

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 400)
    errors = (x - 3) ** 2 + rng.normal(0, 0.5, 400)
    low, high = best_value_interval(x, errors)
    assert low < 3 < high and high - low < 2.5
    assert set(np.round([low, high], 12)) <= set(np.round(x, 12))  # values the sample holds
    low, high = best_error_interval(errors)
    assert low == errors.min() < high
