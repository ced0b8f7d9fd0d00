"""``nas analyze``: compare design spaces by the error distributions of their runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.commands.options import plot_path, positive

HELP = ("compare runs' design spaces: error EDFs, bootstrap intervals of the best error and "
        "of the best model's values")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run folders, best made with --sampler random --screen 0")
    p.add_argument("--plot", type=plot_path,
                   help="write the error EDFs to this PNG (or .pdf, .svg)")
    p.add_argument("--bootstrap", type=positive, default=1000, help="resamples (default 1000)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from nas.commands.tables import table
    from nas.evaluate.ranking import SIGNALS
    from nas.search.report import (
        best_error_interval,
        best_value_interval,
        load_run,
        plot_edfs,
    )

    runs = [load_run(path) for path in args.runs]
    errors_of = [100 - run.complete()["accuracy"].to_numpy(float) for run in runs]
    pooled = float(np.median(np.concatenate(errors_of)))
    rows = []
    for run, errors in zip(runs, errors_of):
        low, high = best_error_interval(errors, args.bootstrap)
        rows.append((run.name, run.settings.space, run.settings.sampler, len(errors),
                     f"{errors.min():.2f}", f"[{low:.2f}, {high:.2f}]",
                     f"{np.median(errors):.2f}", f"{np.mean(errors < pooled):.2f}"))
    print(table(("run", "space", "sampler", "n", "best error", "best of a quarter, 95%",
                 "median error", f"share < {pooled:.2f}"), rows))
    print(f"share < {pooled:.2f}: each run's share of models below the median error of all the "
          "runs' models together")
    trends = []
    for run, errors in zip(runs, errors_of):
        done = run.complete()
        for column in (c for c in done if c.startswith("param:")):
            values = pd.to_numeric(done[column], errors="coerce").to_numpy(float)
            has = ~np.isnan(values)
            if has.any():
                low, high = best_value_interval(values[has], errors[has], args.bootstrap)
                best = values[has][errors[has].argmin()]
                trends.append((run.name, column.removeprefix("param:"), f"{best:.4g}",
                               f"[{low:.4g}, {high:.4g}]"))
    if trends:
        print("\nthe best model's values (95%: in the best of a quarter of the models)")
        print(table(("run", "parameter", "best model", "best of a quarter, 95%"), trends))
    if any(run.settings.sampler != "random" or run.settings.screen for run in runs):
        print("note: EDFs describe a design space only for runs sampled at random "
              "(--sampler random --screen 0)")
    analytic = [run.name for run in runs if not SIGNALS[run.settings.signal].needs_measurement]
    if analytic:
        print(f"note: the accuracy signal of {', '.join(analytic)} is a function of analytic "
              "counts (FLOPs, params, acts, MAC): its errors compare the spaces' counts, not "
              "trained networks")
    if args.plot:
        plot_edfs(runs, args.plot)
        print(f"plot: {args.plot}")
    return 0
