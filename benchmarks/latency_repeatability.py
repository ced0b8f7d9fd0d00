"""Latency tables built twice: how far apart two tables measured alike predict the same networks.

    nice -n 10 python benchmarks/latency_repeatability.py [-n 30] [--passes 3]

Each pass fills a new table with ``-n`` random networks of ``--space`` at ``--budget``, in the
same order, as ``nas latency build`` does (``fill``: each network in a fresh process, the units
the table lacks timed inside it). Between every two passes, for two ways of reading an entry:
``unit_spread`` and ``network_spread``, the standard deviation of the log ratio of the two
tables' entries and of their predictions of each network (around its median, so that a
constant factor between two tables counts as no noise), the median ratio, and the share of
networks predicted alike within 5% and 10%. The ways: ``as_timed``, each entry's mean (what
predictions use), and ``probe``, each entry's mean over the time of the probe network measured
around it (a speed correction the tables used before: it is reported as what it would do). A
spread is about 1.4 times the noise of one table (two tables' noise adds up), and it is what
that noise is worth to a search comparing networks by it.

Writes ``benchmarks/results/latency_repeatability.json`` with the load average before and
after (a busy machine is noisier).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from nas.latency import Profile, Table, Timing, fill, placed_units
from nas.spaces import constraints_for, load_space

RESULTS = Path(__file__).parent / "results"
WAYS = {"as_timed": lambda e: e.mean_ms, "probe": lambda e: e.mean_ms / e.probe_ms}


def agreement(first: Table, second: Table, networks: list, read) -> dict:
    """How alike two tables read ``read(entry)`` predict units and networks."""
    def ms(table: Table, keys) -> float:
        return sum(read(table.get(k)) for k in keys)

    keys = [[p.key(first.profile) for p in placed_units(n)] for n in networks]
    units = [math.log(read(second.get(k)) / read(e)) for k, e in first.entries.items()]
    nets = np.log([ms(second, k) / ms(first, k) for k in keys])
    centred = np.abs(np.expm1(nets - statistics.median(nets)))
    return {"unit_spread": round(float(np.std(units)), 4),
            "network_spread": round(float(np.std(nets)), 4),
            "network_median_ratio": round(math.exp(statistics.median(nets)), 4),
            "within_5": float(np.mean(centred <= 0.05)),
            "within_10": float(np.mean(centred <= 0.10))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="networks per pass (default 30)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--space", default="regnet")
    parser.add_argument("--budget", default="400MF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path,
                        default=RESULTS / "latency_repeatability.json")
    args = parser.parse_args()
    space = load_space(args.space)
    networks = [s.network for s in
                space.sample(args.n, args.seed, constraints_for(space, args.budget))]
    profile, load_before, start = Profile(), os.getloadavg()[0], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        passes = []
        for i in range(args.passes):
            passes.append(Table(Path(tmp) / f"{i}.csv", profile))
            fill(passes[-1], networks, Timing())
            print(f"pass {i + 1} of {args.passes}: {len(passes[-1])} units", flush=True)
        pairs = {f"{i + 1}-{j + 1}": {way: agreement(passes[i], passes[j], networks, read)
                                      for way, read in WAYS.items()}
                 for i, j in itertools.combinations(range(args.passes), 2)}
    result = {"space": args.space, "budget": args.budget, "networks": args.n,
              "units": len(passes[0]), "passes": args.passes,
              "device": profile.name(), "seconds": round(time.time() - start),
              "load_average_before_after": [load_before, os.getloadavg()[0]],
              "median_over_pairs": {way: {m: statistics.median(p[way][m] for p in pairs.values())
                                          for m in pairs[next(iter(pairs))][way]}
                                    for way in WAYS},
              "pairs": pairs}
    print(json.dumps(result["median_over_pairs"], indent=2))
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
