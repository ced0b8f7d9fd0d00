"""``nas search`` (and ``python search.py``): the multi-objective search of a design space."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from nas.commands.train import add_proxy_arguments, proxy_settings

HELP = "search a design space for accurate networks under FLOPs, MAC and latency limits"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nas.search.settings import SAMPLERS, SIGNALS, SearchSettings

    d = SearchSettings()
    p.add_argument("--space", default=d.space, help="space name in spaces/ or a YAML file "
                   f"(default {d.space})")
    p.add_argument("--budget", default=d.budget, help=f"FLOPs ceiling (default {d.budget})")
    p.add_argument("--band", type=float, help="also a FLOPs floor: band x budget")
    p.add_argument("--objectives", default=",".join(d.objectives),
                   help="comma-separated: accuracy, latency, flops, params, mac "
                        f"(default {','.join(d.objectives)})")
    p.add_argument("--mac-budget", help="ceiling on memory access cost, e.g. 20M")
    p.add_argument("--params-budget", help="ceiling on parameters, e.g. 5M")
    p.add_argument("--latency-budget", help="ceiling on predicted latency, e.g. 15ms")
    p.add_argument("--signal", choices=SIGNALS, default=d.signal,
                   help="what the accuracy objective is (default %(default)s: see the README's "
                        "'Accuracy signal')")
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help=f"Optuna sampler (default {d.sampler})")
    p.add_argument("--trials", type=int,
                   help="candidates to score (default: 500 with a signal that trains nothing, a "
                        "few minutes on 2 cores; 24 with one that proxy-trains, about 15 minutes)")
    p.add_argument("--time-budget", help="stop cleanly after this long, e.g. 30m, 1h30m")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--data", help="CIFAR-10 folder (default: $NAS_DATA)")
    p.add_argument("--latency-table", help="latency table CSV (default: results/latency/<device>"
                   ".csv)")
    p.add_argument("--resolution", type=int, default=d.resolution,
                   help="input size of the deployment network (default 224)")
    p.add_argument("--num-classes", type=int, default=d.num_classes,
                   help="classes of the deployment network (default 1000)")
    p.add_argument("--cpus-per-trial", type=int, default=d.cpus_per_trial,
                   help="CPUs (and torch threads) of each training (default 1)")
    p.add_argument("--address", help="connect to this Ray cluster instead of starting one")
    p.add_argument("--out", type=Path, help="run folder (default results/<space>-<budget>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a run folder; its settings are kept, --trials and "
                        "--time-budget may be changed")
    add_proxy_arguments(p.add_argument_group("proxy training"), leave_out=("threads",))


def run(args: argparse.Namespace) -> int:
    from nas.search.runner import run as search
    from nas.search.settings import SearchSettings, default_trials

    if args.resume:
        kept = SearchSettings.load(args.resume)
        settings = dataclasses.replace(kept, trials=args.trials or kept.trials,
                                       time_budget=args.time_budget)
        run_dir = args.resume
    else:
        settings = SearchSettings(
            space=args.space, budget=args.budget, band=args.band,
            objectives=tuple(o.strip() for o in args.objectives.split(",") if o.strip()),
            mac_budget=args.mac_budget, params_budget=args.params_budget,
            latency_budget=args.latency_budget, signal=args.signal, sampler=args.sampler,
            trials=args.trials or default_trials(args.signal),
            time_budget=args.time_budget, seed=args.seed, data=args.data,
            proxy=proxy_settings(args),
            latency_table=args.latency_table, resolution=args.resolution,
            num_classes=args.num_classes, cpus_per_trial=args.cpus_per_trial,
            address=args.address)
        name = f"{Path(args.space).stem}-{args.budget}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = args.out or Path("results") / name
    run_dir = search(settings, run_dir, resume=bool(args.resume))
    print(f"run folder: {run_dir}  (trials.csv, pareto.csv, run.yaml)")
    return 0
