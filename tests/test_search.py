"""The search command end to end: real CIFAR images, real Ray (local and a started cluster)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import wait_for

from nas.cli import main
from nas.config import Network

DATA = os.environ.get("NAS_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="NAS_DATA is not set (real CIFAR-10 needed)")
TINY = ["--space", "regnet", "--budget", "400MF", "--objectives", "accuracy,flops",
        "--signal", "proxy", "--epochs", "1", "--train-images", "256", "--val-images", "256",
        "--batch-size", "64", "--width-mult", "0.5"]


def search(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "search.py", *args], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=600, env=env)


def check_run_folder(run: Path, trained: int) -> pd.DataFrame:
    trials = pd.read_csv(run / "trials.csv")
    for column in ("trial_id", "status", "accuracy", "latency_ms", "flops", "params", "acts",
                   "mac", "config", "error", "train_seconds", "wall_seconds"):
        assert column in trials
    assert set(trials["status"]) <= {"complete", "failed", "infeasible", "interrupted"}
    complete = trials[trials["status"] == "complete"]
    assert len(complete) + (trials["status"] == "failed").sum() == trained
    assert complete["accuracy"].between(0, 100).all()
    for row in trials[trials["status"] == "infeasible"].itertuples():  # regnet wants 4 stages
        stages = len(json.loads(row.config)["stages"])
        assert row.flops > 400e6 or stages != 4
        assert (f"stages {stages}, not stages = 4" in row.error) == (stages != 4)
        assert ("MF, not flops <= 400MF" in row.error) == (row.flops > 400e6)
    assert (complete["flops"] <= 400e6).all()
    for config in complete["config"]:
        Network.from_json(config)
    pareto = pd.read_csv(run / "pareto.csv")
    assert 1 <= len(pareto) and set(pareto["trial_id"]) <= set(complete["trial_id"])
    run_yaml = yaml.safe_load((run / "run.yaml").read_text())
    assert run_yaml["settings"]["space"] == "regnet" and run_yaml["settings"]["seed"] == 0
    assert {"nas", "torch", "ray", "optuna"} <= set(run_yaml["versions"])
    assert run_yaml["latency_table"] is None  # these runs' objectives have no latency
    assert (run / "trials.parquet").exists()
    return trials


@needs_data
@pytest.mark.slow
def test_search_on_local_ray(tmp_path):
    done = search(*TINY, "--trials", "3", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    trials = check_run_folder(tmp_path / "run", trained=3)
    complete = trials[trials["status"] == "complete"]
    for trial in complete["trial_id"]:
        assert (tmp_path / "run" / "weights" / f"trial_{trial}.pt").is_file()

    # The proxy-trained network exported with its weights reproduces its validation accuracy.
    trial = int(complete["trial_id"].iloc[0])
    assert main(["export", str(tmp_path / "run"), "--trial", str(trial), "--weights",
                 "-o", str(tmp_path / "model.py")]) == 0
    script = f"""
import importlib.util, sys, torch
from nas.evaluate.data import load, stratified_split
from nas.evaluate.proxy import ProxySettings, score
spec = importlib.util.spec_from_file_location("model", {str(tmp_path / "model.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = module.build_model()
s, data = ProxySettings(train_images=256, val_images=256), load()
_, val = stratified_split(data.train_labels, s.train_images, s.val_images, s.split_seed)
x = torch.from_numpy(data.train_images[val]).permute(0, 3, 1, 2).float() / 255  # as the file says
x = (x - torch.tensor(module.MEAN).view(1, 3, 1, 1)) / torch.tensor(module.STD).view(1, 3, 1, 1)
print(score(model, x, torch.from_numpy(data.train_labels[val]))[0])
"""
    scored = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert float(scored.stdout) == pytest.approx(complete["proxy_accuracy"].iloc[0])


@needs_data
@pytest.mark.slow
def test_the_default_signal_scores_candidates_without_training_them(tmp_path):
    from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features

    (tmp_path / "run").mkdir()  # a run.yaml with no study beside it does not make a resume
    (tmp_path / "run" / "run.yaml").write_text("latency_table: {path: /elsewhere.csv}\n")
    done = search("--space", "regnet", "--budget", "400MF", "--objectives", "accuracy,flops",
                  "--trials", "3", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    trials = check_run_folder(tmp_path / "run", trained=3)
    complete = trials[trials["status"] == "complete"]
    ranking = SIGNALS[DEFAULT_SIGNAL]
    for row in complete.to_dict("records"):
        assert row["accuracy"] == pytest.approx(ranking.score(features(row, ranking.features)))
    assert complete["proxy_accuracy"].isna().all() and not (tmp_path / "run" / "weights").exists()
    assert complete[list(ranking.zero_cost)].notna().all().all()


@needs_data
@pytest.mark.slow
def test_search_on_a_started_ray_cluster(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    # Keep the cluster on loopback (Ray otherwise swaps 127.0.0.1 for the host's address), and
    # let the driver present the token that `ray start` sets up.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    subprocess.run([*ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, env=env, timeout=120)
    try:
        done = search(*TINY, "--cpus-per-trial", "3", "--address", f"127.0.0.1:{port}",
                      "--out", str(tmp_path / "wide"), env=env)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "no node of the cluster has more than 2 CPUs" in done.stderr
        done = search(*TINY, "--trials", "2", "--address", f"127.0.0.1:{port}",
                      "--out", str(tmp_path / "run"), env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        check_run_folder(tmp_path / "run", trained=2)
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, env=env, timeout=120)


@needs_data
@pytest.mark.slow
def test_killed_run_resumes_without_losing_or_repeating_trials(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "search.py", *TINY, "--trials", "5",
                                "--out", str(run)], cwd=Path(__file__).parent.parent,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)

    def two_complete() -> bool:
        try:
            return (pd.read_csv(run / "trials.csv")["status"] == "complete").sum() >= 2
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return False

    wait_for(two_complete)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = pd.read_csv(run / "trials.csv")
    before = before[before["status"] == "complete"].set_index("trial_id")
    assert len(before) >= 2

    done = search("--resume", str(run), "--trials", "5")
    assert done.returncode == 0, done.stderr[-2000:]
    after = pd.read_csv(run / "trials.csv").set_index("trial_id")
    assert (after["status"] == "complete").sum() == 5
    kept = after.loc[before.index]
    assert (kept["status"] == "complete").all()
    assert kept["accuracy"].tolist() == before["accuracy"].tolist()
    trained = after[after["status"] == "complete"]["config"]
    assert not trained.duplicated().any()  # nothing trained twice


@needs_data
@pytest.mark.slow
def test_a_run_whose_every_training_fails_stops_with_one_line(tmp_path):
    done = search(*TINY, "--trials", "6", "--lr", "1e12", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "trainings all failed" in last and "Traceback" not in done.stderr
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    failed = trials[trials["status"] == "failed"]
    assert len(failed) >= 3 and failed["error"].str.contains("loss").all()


@pytest.mark.parametrize("args, message", [
    (["--space", "nope"], "nope"),
    (["--budget", "lots"], "budget"),
    (["--budget", "1MF"], "no feasible network"),
    (["--objectives", "accuracy,beauty"], "beauty"),
    (["--time-budget", "soon"], "time budget"),
    (["--latency-budget", "fast"], "latency budget"),
])
def test_bad_input_is_one_line_before_ray_starts(args, message, capsys, tmp_path):
    assert main(["search", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert not (tmp_path / "run").exists()


def test_missing_data_is_one_line(capsys, tmp_path):
    assert main(["search", "--signal", "proxy", "--data", str(tmp_path / "none"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "CIFAR-10" in capsys.readouterr().err


def test_failed_and_complete_trials_are_told_and_tabled(tmp_path):
    """A failed training is recorded with its reason and the study goes on (no Ray)."""
    from nas.search.settings import SearchSettings
    from nas.search.study import Running, Search

    if not DATA:
        pytest.skip("NAS_DATA is not set")
    from nas.evaluate.ranking import SIGNALS

    s = Search(SearchSettings(objectives=("accuracy", "flops"), signal="proxy"), tmp_path)
    s.open_study()
    results = [{"top1": float("nan"), "loss": float("nan"), "sotl": float("nan"), "seconds": 1.0,
                "images_per_second": 0.0, "flops": 1, "reason": "loss became nan at step 3"},
               {"top1": 42.0, "loss": 1.5, "sotl": 60.0, "seconds": 2.0,
                "images_per_second": 100.0, "flops": 1, "reason": ""}]
    for result in results:
        s.finish(Running(s.propose(), None, time.time()), result)
    s.write_tables()  # finish rewrites them at most every TABLES_EVERY seconds
    trials = pd.read_csv(tmp_path / "trials.csv")
    trained = trials[trials["status"] != "infeasible"]
    assert trained["status"].tolist() == ["failed", "complete"]
    assert trained["error"].iloc[0] == "loss became nan at step 3"
    assert trained["proxy_accuracy"].iloc[1] == 42.0
    assert trained["accuracy"].iloc[1] == pytest.approx(SIGNALS["proxy"].score([42.0]))
    assert json.loads(trained["config"].iloc[1])["stages"]
    assert pd.read_csv(tmp_path / "pareto.csv")["trial_id"].tolist() == \
        [trained["trial_id"].iloc[1]]


def test_a_proposal_past_the_deadline_asks_for_nothing(tmp_path):
    """Rejections cannot hold a run past its time budget."""
    from nas.search.settings import SearchSettings
    from nas.search.study import Search

    search = Search(SearchSettings(objectives=("accuracy", "flops")), tmp_path)
    search.open_study()
    assert search.propose(deadline=time.time()) is None and not search.study.trials
    assert search.propose().user_attrs["status"] == "running"


def test_the_time_budget_counts_the_setup(tmp_path, monkeypatch):
    """Loading the space, data and latency table (a first decode of CIFAR-10 takes about 20 s)
    is part of the budget: a run whose setup used it all up proposes nothing."""
    from nas.search import study
    from nas.search.runner import run
    from nas.search.settings import SearchSettings

    slow = study.load_space
    monkeypatch.setattr(study, "load_space", lambda name: time.sleep(1.5) or slow(name))
    run(SearchSettings(objectives=("accuracy", "flops"), time_budget="1s"), tmp_path / "r")
    assert pd.read_csv(tmp_path / "r" / "trials.csv").empty
    run(SearchSettings(objectives=("accuracy", "flops"), time_budget="5s"), tmp_path / "s")
    assert (pd.read_csv(tmp_path / "s" / "trials.csv")["status"] == "complete").any()


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_without_a_screen_a_model_based_sampler_starts_from_feasible_networks(tmp_path, sampler):
    """Its first candidates are random networks within every limit (a sampler's own random
    start draws most of regnet's over 400MF or with another stage count); then it proposes."""
    from nas.search.settings import SearchSettings
    from nas.search.study import NOTHING_MEASURED, Running, Search, startup_trials

    settings = SearchSettings(objectives=("accuracy", "flops"), screen=0, sampler=sampler,
                              trials=40)
    search = Search(settings, tmp_path)
    search.open_study()
    for _ in range(startup_trials(settings.trials) + 1):
        search.finish(Running(search.propose(), None, time.time()), NOTHING_MEASURED)
    n = startup_trials(settings.trials)
    startup, rest = search.study.trials[:n], search.study.trials[n:]
    assert n == 10 and rest
    assert all(t.user_attrs["startup"] and t.user_attrs["status"] == "complete"
               and t.user_attrs["flops"] <= 400e6 for t in startup)
    assert len({t.user_attrs["config"] for t in startup}) == n
    assert not any("startup" in t.user_attrs for t in rest)  # the sampler proposes from now on


@needs_data
@pytest.mark.slow
def test_time_budget_stops_the_run_cleanly_and_resume_trains_what_it_cut_off(tmp_path):
    run = tmp_path / "r"
    done = search(*TINY, "--trials", "100", "--time-budget", "20s", "--out", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "of the time budget left" in done.stderr  # on the progress line
    trials = pd.read_csv(run / "trials.csv")
    trained = trials["status"].isin(["complete", "failed"]).sum()
    assert trained < 100
    assert set(trials["status"]) <= {"complete", "failed", "infeasible", "stopped"}
    stopped = trials[trials["status"] == "stopped"]
    assert len(stopped) >= 1 and (stopped["error"] == "time budget reached").all()

    more = trained + len(stopped)
    done = search("--resume", str(run), "--trials", str(more), "--time-budget", "10m")
    assert done.returncode == 0, done.stderr[-2000:]
    after = pd.read_csv(run / "trials.csv")
    now_trained = after[after["status"].isin(["complete", "failed"])]
    assert len(now_trained) == more
    assert set(stopped["config"]) <= set(now_trained["config"])


@needs_data
@pytest.mark.slow
def test_sigterm_after_a_search_on_ray_still_reaches_the_callers_handler(tmp_path):
    """ray.shutdown() resets SIGTERM's action to the default (death) behind Python's back; the
    search sets the caller's handler again, so a SIGTERM just after a run is still handled."""
    script = f"""
import os, signal, time
from pathlib import Path
from nas.search.runner import run
from nas.search.settings import SearchSettings
from nas.evaluate.proxy import ProxySettings
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append(1))
run(SearchSettings(objectives=("accuracy", "flops"), signal="proxy", trials=1, proxy=
    ProxySettings(epochs=1, train_images=256, val_images=256, batch_size=64)),
    Path({str(tmp_path / "run")!r}))
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.5)
print("handled" if got else "lost")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "handled", done.stderr[-2000:]


def test_sigterm_while_ray_starts_interrupts_the_run_as_ctrl_c_does():
    """ray.init() sets a SIGTERM handler of its own that exits silently with code 15; a SIGTERM
    that arrives while it is set interrupts the run, Ray is shut down, and the caller's handler
    is set again."""
    script = """
import os, signal, time
import ray
from nas.search.runner import start_ray
from nas.search.settings import SearchSettings
real = ray.init
def init(**kwargs):
    real(**kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # while ray.init's handler is set
    time.sleep(2)
ray.init = init
def mine(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, mine)
try:
    start_ray(SearchSettings())
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted", signal.getsignal(signal.SIGTERM) is mine, ray.is_initialized())
finally:
    ray.shutdown()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "interrupted True False"), \
        done.stderr[-2000:]


def test_a_budget_spent_in_setup_ends_with_how_to_go_on_not_a_damaged_table(tmp_path):
    run = tmp_path / "run"
    done = search("--objectives", "accuracy,flops", "--time-budget", "0.001s", "--out", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no candidate was proposed: setting up the search took the whole time budget" \
        in done.stdout
    assert f"--resume {run} --time-budget DURATION" in done.stdout
    assert pd.read_csv(run / "trials.csv").empty


def test_a_run_that_scored_nothing_says_what_happened_and_how_to_go_on(tmp_path):
    from nas.commands.search import _closing
    from nas.search.settings import SearchSettings

    run = tmp_path / "run"
    run.mkdir()
    settings = SearchSettings(time_budget="40s").to_dict()
    (run / "run.yaml").write_text(yaml.safe_dump({"settings": settings}))
    pd.DataFrame({"trial_id": range(4), "status": ["infeasible"] * 3 + ["stopped"],
                  "accuracy": None, "latency_ms": 7.5, "config": "{}"}).to_csv(
        run / "trials.csv", index=False)
    (line,) = _closing(run)
    assert line.startswith("no candidate was scored (4 proposed: 3 infeasible, 1 stopped)")
    assert line.endswith(f"python search.py --resume {run} --time-budget DURATION")
