"""``nas search`` (and ``python search.py``): the multi-objective search of a design space."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from nas.commands.options import add_input_size, seed
from nas.commands.train import SETTINGS, add_proxy_arguments, proxy_settings
from nas.errors import ConfigError

LATEST = "latest"  # the link to the last run, beside the run folders
HELP = "search a design space for accurate networks under FLOPs, MAC and latency limits"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options; each defaults to None, so that a resume can tell which were given."""
    from nas.search.settings import (
        LATENCY_BACKENDS,
        RESUMABLE,
        SAMPLERS,
        SIGNALS,
        SearchSettings,
    )

    d = SearchSettings()
    p.add_argument("--space", help="space name in spaces/ or a YAML file "
                   f"(default {d.space})")
    p.add_argument("--budget", help=f"FLOPs ceiling (default {d.budget})")
    p.add_argument("--band", type=float, help="also a FLOPs floor: band x budget")
    p.add_argument("--objectives", help="comma-separated: accuracy, latency, flops, params, mac "
                   f"(default {','.join(d.objectives)})")
    p.add_argument("--mac-budget", help="ceiling on memory access cost, e.g. 20M")
    p.add_argument("--params-budget", help="ceiling on parameters, e.g. 5M")
    p.add_argument("--latency-budget", help="ceiling on predicted latency, e.g. 15ms")
    p.add_argument("--signal", choices=SIGNALS, help=f"what the accuracy objective is (default "
                   f"{d.signal}; the README's 'Accuracy signal' says what each is worth)")
    p.add_argument("--sampler", choices=SAMPLERS, help=f"Optuna sampler (default {d.sampler})")
    p.add_argument("--screen", type=int, metavar="N",
                   help="propose each candidate as the best of a pool of N networks drawn from "
                        "the space, by predicted objectives; 0: the sampler alone (default "
                        f"{d.screen})")
    p.add_argument("--trials", type=int,
                   help="candidates to score (default: 500 with a signal that trains nothing, "
                        "about 7 minutes on 2 cores while they fill a new latency table, 4 "
                        "with a full one; 24 with one that proxy-trains, about 5 minutes)")
    p.add_argument("--time-budget", help="stop cleanly after this long, e.g. 30m, 1h30m, 90s "
                   "(a bare number is minutes)")
    p.add_argument("--seed", type=seed,
                   help=f"seed of the sampler and trainings (default {d.seed})")
    p.add_argument("--data", help="CIFAR-10 folder, for signals that use images (default: "
                   "$NAS_DATA, else a copy downloaded into the cache on first use)")
    p.add_argument("--latency-table", help="latency table CSV (default: results/latency/<device>"
                   ".csv)")
    p.add_argument("--latency-backend", choices=LATENCY_BACKENDS,
                   help="what the latency objective and budget are for: eager PyTorch or ONNX "
                        f"Runtime (the onnx extra) (default {d.latency_backend})")
    p.add_argument("--latency-on", metavar="RESOURCE",
                   help="latency of the Ray node that advertises this custom resource (a target "
                        "device in the cluster at --address): its table, its measurements")
    add_input_size(p, defaults=False)
    p.add_argument("--cpus-per-trial", type=int,
                   help=f"CPUs (and torch threads) of each training (default {d.cpus_per_trial})")
    p.add_argument("--address", help="connect to this Ray cluster (HOST:PORT) instead of "
                   "starting one")
    p.add_argument("--out", type=Path, help="run folder (default results/<space>-<budget>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a run folder with the settings of its run.yaml; only "
                        f"{_flags(RESUMABLE)} may be given")
    add_proxy_arguments(p.add_argument_group("proxy training"), leave_out=("threads",))


def run(args: argparse.Namespace) -> int:
    from nas.search.runner import run as search
    from nas.search.settings import RESUMABLE, SearchSettings, default_trials

    names = [f.name for f in dataclasses.fields(SearchSettings) if f.name != "proxy"]
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if "objectives" in given:
        given["objectives"] = tuple(o.strip() for o in given["objectives"].split(",") if o.strip())
    if args.resume:
        proxy = [flag for flag, _, _ in SETTINGS
                 if getattr(args, flag.replace("-", "_"), None) is not None]
        refused = [n for n in given if n not in RESUMABLE] + proxy + ["out"] * bool(args.out)
        if refused:
            raise ConfigError(f"--{refused[0].replace('_', '-')}: a resumed run keeps the "
                              f"settings of its run.yaml; only {_flags(RESUMABLE)} may be given")
        settings = dataclasses.replace(SearchSettings.load(args.resume), **given)
        run_dir = args.resume
    else:
        given.setdefault("trials", default_trials(given.get("signal", SearchSettings.signal)))
        settings = SearchSettings(**given, proxy=proxy_settings(args))
        name = f"{Path(settings.space).stem}-{settings.budget}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = args.out or Path("results") / name
    settings = dataclasses.replace(settings, data=_data_folder(settings.data)).check()
    try:
        search(settings, run_dir, resume=bool(args.resume),
               started=lambda folder: print(f"run folder: {folder}", flush=True))
    except KeyboardInterrupt:  # a stopped run is still the last run; a refused one is not
        _link_latest(Path(run_dir))
        if (Path(run_dir) / "study.journal").exists():
            print(f"continue it with: python search.py --resume {run_dir}", file=sys.stderr)
        raise
    _link_latest(Path(run_dir))
    print(f"run folder: {run_dir}  (trials.csv, pareto.csv, run.yaml)")
    print("\n".join(_closing(Path(run_dir))))
    return 0


def _closing(run_dir: Path) -> list[str]:
    """What the run found: the front's size, its best network in each objective and its knee,
    and the commands that show and export them."""
    from nas.search.report import RunError, load_run, objective_text, pick, summary

    run = load_run(run_dir)
    try:
        front = run.front()
    except RunError:
        statuses = run.trials["status"].value_counts()
        if run.trials.empty:
            line = "no candidate was proposed: setting up the search took the whole time budget"
        else:
            line = (f"no candidate was scored ({len(run.trials)} proposed: "
                    + ", ".join(f"{n} {s}" for s, n in statuses.items())
                    + "); trials.csv says why (status, error)")
        if set(statuses.index) == {"infeasible"}:
            line += "; every candidate was over a limit: loosen the limits"
        elif run.settings.time_budget and (run.trials.empty or "stopped" in statuses):
            line += (f"; give it more time: python search.py --resume {run_dir} "
                     "--time-budget DURATION")
        return [line]
    lines = [f"Pareto front: {len(front)} of {len(run.complete())} scored networks "
             f"({', '.join(run.objectives)})"]
    if "accuracy" in run.objectives:
        lines[0] += f"; accuracy is the {run.settings.signal} signal, read it as a rank"
    picks = [(f"best {o}", o) for o in run.settings.objectives]
    for label, by in picks + [("knee", "knee")] * (len(picks) > 1):
        try:
            row = pick(run, by=by)
        except RunError:  # an objective no scored trial has a value of
            continue
        values = ", ".join(f"{o} {objective_text(o, row[o])}" for o in run.objectives)
        lines.append(f"  {label:<14} trial {int(row['trial_id']):<5} {values}  "
                     f"{summary(row['config'])}")
    lines.append(f"next: nas pareto {run_dir} --plot front.png; "
                 f"nas export {run_dir} --pick knee -o model.py")
    return lines


def _link_latest(run_dir: Path) -> None:
    """Point ``latest`` beside the run folder at it (results/latest for the default folders),
    so that commands can name the last run however many there are."""
    if not run_dir.is_dir():
        return
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        if link.exists() and not link.is_symlink():
            return  # a folder the user named "latest": not ours to replace
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # a file system without symlinks: the printed folder name has to do
        tmp.unlink(missing_ok=True)


def _flags(names: tuple[str, ...]) -> str:
    return ", ".join("--" + name.replace("_", "-") for name in names)


def _data_folder(data: str | None) -> str | None:
    """The data folder the run uses, as an absolute path (so run.yaml records it even when it
    came from NAS_DATA), or None when neither names one."""
    data = data or os.environ.get("NAS_DATA")
    return str(Path(data).expanduser().resolve()) if data else None
