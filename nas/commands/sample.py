"""``nas sample``: random feasible networks of a design space, as a table."""

from __future__ import annotations

import argparse
import sys
import time

from nas.commands.options import add_input_size, add_space, positive, seed

HELP = "draw random networks of a design space that meet a FLOPs budget and its constraints"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space(p, "400MF, 1.6GF, 4e8")
    p.add_argument("--band", type=float, help="also a FLOPs floor of band x budget, e.g. 0.9")
    p.add_argument("-n", type=positive, default=100, help="networks to draw (default 100)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", help="CSV file, or Parquet if it ends in .parquet "
                   "(default: CSV on standard output)")
    add_input_size(p)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from nas.spaces import constraints_for, load_space

    space = load_space(args.space)
    constraints = constraints_for(space, args.budget, args.band, args.resolution,
                                  args.num_classes)
    start = time.perf_counter()
    samples = space.sample(args.n, args.seed, constraints)
    seconds = time.perf_counter() - start
    names = [p.name for p in space.params]
    table = pd.DataFrame([{**{k: s.values.get(k) for k in names}, **s.complexity.totals(),
                           "config": s.network.to_json()} for s in samples])
    if args.output and args.output.endswith(".parquet"):
        table.to_parquet(args.output, index=False)
    else:
        table.to_csv(args.output or sys.stdout, index=False)
    print(f"nas sample: {len(samples)} networks of {space.name} ({constraints}) in "
          f"{seconds:.2f} s", file=sys.stderr)
    return 0

