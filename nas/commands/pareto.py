"""``nas pareto``: the Pareto front of one or more runs, as a table and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.commands.options import plot_path

HELP = "print the Pareto front of search runs and plot it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--sort", default="accuracy",
                   choices=("accuracy", "latency", "flops", "params", "mac"),
                   help="objective to sort the front by (default accuracy)")
    p.add_argument("--plot", type=plot_path, help="write a PNG: accuracy vs latency and vs FLOPs, "
                   "every trial in grey, the fronts connected and labelled, latencies with "
                   "their table's noise")


def run(args: argparse.Namespace) -> int:
    from nas.budget import count_text
    from nas.commands.tables import table
    from nas.search.pareto import ALIASES, OBJECTIVES
    from nas.search.report import latency_text, load_run, plot_fronts, summary

    runs = [load_run(path) for path in args.runs]
    column = ALIASES[args.sort]
    for run in runs:
        front = run.front().sort_values(column, ascending=not OBJECTIVES[column])
        print(f"{run.path}: {len(front)} on the front of {len(run.complete())} complete trials "
              f"({', '.join(run.settings.objectives)})")
        rows = [(int(r.trial_id), f"{r.accuracy:.2f}", latency_text(r), count_text(r.flops),
                 count_text(r.params), count_text(r.mac), summary(r.config))
                for _, r in front.iterrows()]
        print(table(("trial", "accuracy", "latency_ms", "flops", "params", "mac",
                     "architecture"), rows))
    if args.plot:
        plot_fronts(runs, args.plot)
        print(f"plot: {args.plot}")
    return 0
