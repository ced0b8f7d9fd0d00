"""Hostile and careless input: one line on stderr, exit code 2, no traceback, no file changed;
and concurrent runs, signals and dead clusters that lose nothing and leave nothing behind."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import wait_for

from nas.cli import main
from nas.config import Network
from nas.generators import load_network
from nas.search.settings import SearchSettings

ROOT = Path(__file__).parent.parent
DATA = os.environ.get("NAS_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="NAS_DATA is not set (real CIFAR-10 needed)")
ZOO = ROOT / "spaces" / "zoo" / "regnetx_400mf.yaml"
BOMB = "".join(f"{x}: &{x} [{', '.join([f'*{p}' if p else '1'] * 9)}]\n"
               for p, x in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh"))
# A search whose trainings take seconds each, so that it is still running when a test acts on it.
TRAINING = ["--space", "regnet", "--budget", "400MF", "--objectives", "accuracy,flops",
            "--signal", "proxy", "--epochs", "2", "--train-images", "2048", "--val-images", "256",
            "--batch-size", "64", "--width-mult", "0.5"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def fake_run(path: Path, **changes) -> Path:
    """A run folder with run.yaml, one complete trial and an (empty) study journal."""
    path.mkdir()
    settings = {**SearchSettings(objectives=("accuracy", "flops")).to_dict(), **changes}
    write(path / "run.yaml", yaml.safe_dump({"settings": settings}))
    pd.DataFrame([{"trial_id": 0, "status": "complete", "accuracy": 50.0, "latency_ms": None,
                   "flops": 4e8, "params": 5e6, "mac": 1e7,
                   "config": load_network(ZOO).to_json()}]).to_csv(path / "trials.csv",
                                                                  index=False)
    (path / "study.journal").touch()
    return path


def weights(run: Path, edit=lambda state: state) -> Path:
    """Trial 0's proxy weights, as a search saves them, after ``edit``."""
    from nas.evaluate.proxy import NUM_CLASSES, ProxySettings, proxy_network
    from nas.network import build

    net = proxy_network(load_network(ZOO), ProxySettings().width_mult)
    (run / "weights").mkdir()
    path = run / "weights" / "trial_0.pt"
    torch.save(edit(build(net, NUM_CLASSES).state_dict()), path)
    return path


def truncated(run: Path) -> None:
    path = weights(run)
    path.write_bytes(path.read_bytes()[:1000])


def misshapen(run: Path) -> None:
    weights(run, lambda state: {**state, "head.fc.weight": torch.zeros(3, 3)})


def space(alias: bool) -> str:
    anchor = "&w " if alias else ""
    return ("generator: anynet\nstages: 4\nparams:\n"
            f"  depth: {anchor}{{int: [1, 4]}}\n  width: {'*w' if alias else '{int: [8, 64]}'}\n")


WIDE = "stages:\n  - {block: resnext, depth: 1, width: 10000000}\n"

# name: (files to create in tmp_path, command line with {tmp} for tmp_path, text in the error)
OTHER_DEVICE = ("# fingerprint: another machine\n"
                "key,batch,dtype,memory_format,mean_ms,median_ms,iqr_ms,repeats,probe_ms,"
                "measured_at\n")
CASES = {
    "alias bomb in stages": ({"c.yaml": BOMB + "stages: *h\n"}, "info {tmp}/c.yaml", "aliases"),
    "alias in a space's parameter": ({"s.yaml": space(alias=True)},
                                     "sample --space {tmp}/s.yaml -n 1", "aliases"),
    "deep nesting": ({"c.yaml": "[" * 100_000 + "]" * 100_000}, "info {tmp}/c.yaml",
                     "nested too deeply"),
    "huge integer": ({"c.yaml": "stages: " + "9" * 10_000}, "info {tmp}/c.yaml",
                     "integer string conversion"),
    "oversized file": ({"c.yaml": "#" * (2 << 20)}, "info {tmp}/c.yaml", "larger than 1 MB"),
    "python object tag": ({"c.yaml": "stages: !!python/object/apply:os.system [touch x]\n"},
                          "info {tmp}/c.yaml", "malformed YAML"),
    "malformed YAML": ({"c.yaml": "stages: [{block: resnext\n"}, "info {tmp}/c.yaml",
                       "malformed YAML"),
    "binary YAML": ({"c.yaml": "stages: \x00\x01"}, "info {tmp}/c.yaml",
                    "c.yaml: malformed YAML: unacceptable character"),
    "missing file": ({}, "info {tmp}/none.yaml", "no such file"),
    "a directory as config": ({"d/x": ""}, "info {tmp}/d", "d: Is a directory"),
    "network too large for latency": ({"c.yaml": WIDE},
                                      "latency predict {tmp}/c.yaml --latency-table {tmp}/t.csv",
                                      "network too large: 1e+14 params"),
    "network too large to train": ({"c.yaml": WIDE}, "train {tmp}/c.yaml", "network too large"),
    "an infinite learning rate": ({"c.yaml": WIDE}, "train {tmp}/c.yaml --lr inf",
                                  "lr: must be positive and finite, got inf"),
    "fewer images than classes": ({"c.yaml": WIDE}, "train {tmp}/c.yaml --val-images 5",
                                  "val_images: must be at least 10, one per CIFAR-10 class"),
    "infinite budget, search": ({}, "search --budget 1e400 --out {tmp}/r", "finite"),
    "a screen beyond reason": ({}, "search --screen 1000000 --out {tmp}/r",
                               "screen: must be 0 (off) to 65,536 networks"),
    "a latency table that is not one": ({"t.csv": "hello"},
                                        "search --latency-table {tmp}/t.csv --out {tmp}/r",
                                        "t.csv: not a latency table"),
    "another device's latency table": ({"t.csv": OTHER_DEVICE},
                                       "search --latency-table {tmp}/t.csv --out {tmp}/r",
                                       "t.csv was measured on 'another machine', this search"),
    "infinite budget, sample": ({}, "sample --space regnet --budget 1e400", "finite"),
    "objective twice": ({}, "search --objectives accuracy,accuracy --out {tmp}/r",
                        "accuracy is given more than once"),
    "address not a host": ({}, "search --address not-a-host --out {tmp}/r", "HOST:PORT"),
    "resume with a study flag": ({"r/": {}}, "search --resume {tmp}/r --space anynet",
                                 "--space: a resumed run keeps the settings of its run.yaml"),
    "resume with a proxy flag": ({"r/": {}}, "search --resume {tmp}/r --epochs 9",
                                 "--epochs: a resumed run keeps"),
    "resume with --out": ({"r/": {}}, "search --resume {tmp}/r --out {tmp}/q", "--out:"),
    "resume, damaged run.yaml": ({"r/": {}, "r/run.yaml": "settings: {trials: many}\n"},
                                 "search --resume {tmp}/r",
                                 "run.yaml: damaged: settings.trials: expected int"),
    "resume, run.yaml without settings": ({"r/": {}, "r/run.yaml": "[1, 2]\n"},
                                          "search --resume {tmp}/r", "damaged"),
    "pareto, damaged run.yaml": ({"r/": {}, "r/run.yaml": "settings: {objectives: 3}\n"},
                                 "pareto {tmp}/r", "objectives: expected a list"),
    "export onto a directory": ({"r/": {}, "m.py/x": ""}, "export {tmp}/r -o {tmp}/m.py",
                                "m.py: is a directory"),
    "report onto a directory": ({"r/": {}, "h.html/x": ""}, "report {tmp}/r -o {tmp}/h.html",
                                "h.html: Is a directory"),
    "report into a missing folder": ({"r/": {}}, "report {tmp}/r -o {tmp}/no/h.html",
                                     "no/h.html: No such file or directory"),
    "export onto an existing file": ({"r/": {}, "m.yaml": "mine\n"},
                                     "export {tmp}/r -o {tmp}/m.py",
                                     "m.yaml: already exists; give --force"),
    "export onto its own config's name": ({"r/": {}}, "export {tmp}/r -o {tmp}/m.yaml",
                                          "m.yaml: the py export is written to a .py file"),
    "truncated weights": ({"r/": truncated}, "export {tmp}/r --weights -o {tmp}/m.py",
                          "trial_0.pt: not a readable weights file"),
    "misshapen weights": ({"r/": misshapen}, "export {tmp}/r --weights -o {tmp}/m.py",
                          "tensor head.fc.weight should have shape (10, 96), found (3, 3)"),
}
NEEDS_DATA = {  # cases that get past loading the data set
    "train on more images than the data set has": (
        {"c.yaml": "stages:\n  - {block: resnext, depth: 1, width: 16}\n"},
        "train {tmp}/c.yaml --train-images 999999", "cannot take 999999 + 5000 images"),
    "out on a file": ({"f": ""}, "search --out {tmp}/f", "f: File exists"),
    "out below a file": ({"f": ""}, "search --out {tmp}/f/r", "Not a directory"),
    "new search into a run": ({"r/": {}}, "search --out {tmp}/r", "holds a run already"),
    "resume without a journal": ({"r/": {}, "r/study.journal": None}, "search --resume {tmp}/r",
                                 "nothing to resume"),
    "search on more images than the data set has": (
        {}, "search --signal proxy --train-images 60000 --out {tmp}/r",
        "cannot take 60000 + 5000 images"),
    "out on a folder of other files": ({"o/mine.csv": "a\n"}, "search --out {tmp}/o",
                                       "o: holds mine.csv, not a run's"),
    "resume from a damaged journal": ({"r/": lambda r: write(r / "study.journal", '{"a": 1}\n{"o')},
                                      "search --resume {tmp}/r", "damaged at line 2"),
    "resume from an empty journal": ({"r/": {}}, "search --resume {tmp}/r",
                                     "study.journal: empty; the study cannot be resumed"),
    "nothing listens at --address": ({}, "search --address 127.0.0.1:1 --out {tmp}/r",
                                     "127.0.0.1:1: no Ray cluster answers there"),
    "more CPUs per trial than the machine has": ({}, "search --cpus-per-trial 512 --out {tmp}/r",
                                                 "--cpus-per-trial 512: this machine has"),
}


def make(tmp: Path, files: dict) -> None:
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            fake_run(path)
            if callable(content):
                content(path)
        elif content is None:
            path.unlink()
        else:
            path.write_text(content)


def snapshot(tmp: Path) -> dict[str, str]:
    return {str(p.relative_to(tmp)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in tmp.rglob("*")}


def check_one_line_error(case: tuple, tmp: Path, capsys) -> None:
    files, command, message = case
    make(tmp, files)
    before = snapshot(tmp)
    argv = [arg.replace("{tmp}", str(tmp)) for arg in command.split()]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert out == ""  # not even the run folder a refused search would have had
    assert message in err and err.startswith(f"nas {argv[0]}: error: "), err
    assert snapshot(tmp) == before
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


@pytest.mark.parametrize("name", CASES)
def test_hostile_input_is_one_line_and_changes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_one_line_error(CASES[name], tmp_path, capsys)


@needs_data
@pytest.mark.parametrize("name", NEEDS_DATA)
def test_hostile_search_is_one_line_and_changes_nothing(name, tmp_path, capsys):
    check_one_line_error(NEEDS_DATA[name], tmp_path, capsys)


USAGE = {  # command line: text in the error, which names the (sub)command
    "search --frobnicate": "nas search: error: unrecognized arguments: --frobnicate",
    "latency build --space regnet --foo": "nas latency: error: unrecognized arguments: --foo",
    "info --resolution 0 c.yaml": "nas info: error: argument --resolution: must be a positive",
    "info --num-classes -5 c.yaml": "nas info: error: argument --num-classes: must be a posit",
    "sample --space regnet -n x": "nas sample: error: argument -n: must be a positive integer",
    "analyze --bootstrap 0 r": "nas analyze: error: argument --bootstrap: must be a positive",
    "pareto r --plot front.txt": "nas pareto: error: argument --plot: a plot is written as",
    "search --seed -1": "nas search: error: argument --seed: must be an integer from 0 to",
    "sample --space regnet --seed 4294967296": "nas sample: error: argument --seed: must be an",
    "frob": "nas: error: argument COMMAND: invalid choice: 'frob'",
}


@pytest.mark.parametrize("command", USAGE)
def test_a_usage_error_is_one_line_naming_the_command(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main(command.split())
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(USAGE[command]), err


def test_a_folder_a_search_left_as_it_started_is_taken_by_the_next(tmp_path, capsys):
    """A search killed as it started leaves its lock and an empty journal: neither a run to
    resume nor one a new search may not reuse."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "lock").touch()
    (tmp_path / "r" / "study.journal").touch()
    assert main(["search", "--resume", str(tmp_path / "r")]) == 2
    assert "not a run folder (no run.yaml)" in capsys.readouterr().err
    assert main(["search", "--objectives", "accuracy,flops", "--trials", "2",
                 "--out", str(tmp_path / "r")]) == 0
    assert len(pd.read_csv(tmp_path / "r" / "trials.csv")) >= 2


def test_an_alias_bomb_is_refused_before_it_grows(tmp_path):
    path = write(tmp_path / "c.yaml", BOMB + "stages: [*h, *h]\n")
    # The address space the tool takes to start (about 0.6 GiB with torch's CPU build, 4 GiB
    # with a CUDA build), and half a GiB more for reading the file: far less than the bomb's.
    started = subprocess.run([sys.executable, "-c", "import nas.cli, nas.config; print(open("
                              "'/proc/self/status').read().split('VmPeak:')[1].split()[0])"],
                             text=True, capture_output=True, check=True).stdout
    limit = int(started) * 1024 + (1 << 29)

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "nas.cli", "info", str(path)], text=True,
                          capture_output=True, timeout=120, preexec_fn=limited)
    assert done.returncode == 2 and "aliases (*name) are not allowed" in done.stderr


def test_a_network_that_fits_is_built():
    from nas.network import build, check_fits

    check_fits(load_network(ZOO), batch=128)
    assert build(Network.from_dict(yaml.safe_load(WIDE.replace("10000000", "64"))))


@needs_data
def test_a_stale_lock_is_taken_over_and_a_held_one_names_its_owner(tmp_path):
    from nas.search.runner import own_run_folder
    from nas.search.study import SearchError

    run = fake_run(tmp_path / "r")
    write(run / "study.journal", '{"op_code": 0}\n')  # a study to resume
    write(run / "lock", "999999\n")  # a killed owner's pid: the kernel dropped its lock
    lock = own_run_folder(run, resume=True)
    assert (run / "lock").read_text() == f"{os.getpid()}\n"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, time
f = open({str(run / 'lock')!r}, "a+")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    lock.close()
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(SearchError, match=rf"in use by another search \(pid {os.getpid()}\)"):
            own_run_folder(run, resume=True)
    finally:
        holder.kill()
        holder.wait()


@needs_data
def test_a_run_yaml_edited_to_another_study_is_refused(tmp_path):
    from nas.search.study import Search, SearchError

    settings = SearchSettings(objectives=("accuracy", "flops"))
    Search(settings, tmp_path).open_study()
    edited = SearchSettings(space="anynet", budget="400MF", objectives=("accuracy", "flops"))
    with pytest.raises(SearchError, match="space is 'anynet', but the study in study.journal "
                                          "was made with 'regnet'"):
        Search(edited, tmp_path).open_study()
    Search(settings, tmp_path).open_study()  # the matching one goes on


def search(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "search.py", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True, **popen)


def session_processes(sid: int) -> list[int]:
    """The processes left in a session (a search and everything it started)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getsid(int(proc.name)) == sid:
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


@needs_data
@pytest.mark.slow
def test_a_second_search_on_a_run_folder_is_refused_and_the_first_loses_nothing(tmp_path):
    run = tmp_path / "r"
    first = search(*TRAINING, "--trials", "6", "--out", str(run))
    wait_for(lambda: (run / "run.yaml").exists())
    second = search(*TRAINING, "--trials", "2", "--seed", "1", "--out", str(run))
    resumed = search("--resume", str(run))
    (_, err), (_, resume_err) = second.communicate(timeout=300), resumed.communicate(timeout=300)
    assert first.poll() is None, "the first search ended before the others were refused"
    assert second.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(
        f"holds a run already; continue it with --resume {run}, or give another --out")
    assert resumed.returncode == 2 and "Traceback" not in resume_err
    assert f"in use by another search (pid {first.pid})" in resume_err
    _, err = first.communicate(timeout=900)
    assert first.returncode == 0, err[-2000:]
    trials = pd.read_csv(run / "trials.csv")
    assert (trials["status"] == "complete").sum() == 6
    assert set(trials["status"]) <= {"complete", "infeasible"}
    assert yaml.safe_load((run / "run.yaml").read_text())["settings"]["seed"] == 0


def trials_running(run: Path) -> bool:
    """Whether the study in ``run`` has a candidate handed to a worker and not yet told."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(run / "study.journal")))
    try:
        trials = optuna.load_study(study_name="search", storage=storage).trials
    except KeyError:  # the study is not created yet
        return False
    return any(t.user_attrs.get("status") == "running" and t.state.name == "RUNNING"
               for t in trials)


@needs_data
@pytest.mark.slow
def test_sigterm_stops_cleanly_and_resume_keeps_every_setting(tmp_path):
    run = tmp_path / "r"
    process = search(*TRAINING, "--trials", "3", "--time-budget", "1h", "--out", str(run))

    wait_for(lambda: run.joinpath("study.journal").exists() and trials_running(run))
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-2:] == [
        f"continue it with: python search.py --resume {run}", "nas search: interrupted"]
    wait_for(lambda: not session_processes(process.pid), timeout=30)  # no child is left
    trials = pd.read_csv(run / "trials.csv")
    assert "interrupted" in set(trials["status"]) and "running" not in set(trials["status"])

    env = {k: v for k, v in os.environ.items() if k != "NAS_DATA"}  # run.yaml has the data
    resumed = search("--resume", str(run), env=env)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    settings = yaml.safe_load((run / "run.yaml").read_text())["settings"]
    assert settings["trials"] == 3 and settings["time_budget"] == "1h"
    assert settings["data"] == str(Path(DATA).resolve())
    after = pd.read_csv(run / "trials.csv")
    assert (after["status"] == "complete").sum() == 3
