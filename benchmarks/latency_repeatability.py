"""Latency tables built twice: how far apart two tables measured alike predict the same networks.

    nice -n 10 python benchmarks/latency_repeatability.py [-n 30] [--passes 3]

Each pass fills a new table with ``-n`` random networks of ``--space`` at ``--budget``, in the
same order, as ``nas latency build`` does (``fill``: each network in a fresh process, the units
the table lacks timed inside it). Between every two passes, for three ways of reading an
entry: ``unit_spread`` and ``network_spread``, the standard deviation of the log ratio of the
two tables' entries and of their predictions of each network (around its median, so that a
constant factor between two tables counts as no noise), the median ratio, and the share of
networks predicted alike within 5% and 10%. The ways: each entry's mean scaled by the time of
the probe network measured around it to the power 0 (``as_timed``), ``PROBE_ELASTICITY``
(``elastic``: what predictions do) or 1 (``probe``: what they did before). And
``fitted_elasticity``: the power that best fits the units' change between the tables to the
probe's (least squares on the logs of their ratios). A spread is about 1.4 times the noise of
one table (two tables' noise adds up), and it is what that noise is worth to a search comparing
networks by it. ``--against TABLE`` also compares each pass with a table built before (hours
before, say), over the units and networks it lists: a median ratio away from 1 is how far
entries measured now would sit from its entries in one table, as a search that adds to a
prebuilt table mixes them (``against`` in the JSON).

A network timed for the units a table lacks times the units it lists again, and the table
pools each unit's measurements (``Entry.pooled``); ``single`` compares the same passes read by
the first measurement of each unit only, as tables were read before December 2026, with
``sessions_per_unit`` the mean number of measurements pooled in an entry. ``--sessions N``
builds each pass as ``nas latency build --sessions N`` does: every unit measured at least N
times.

Writes ``benchmarks/results/latency_repeatability.json`` (``_sessionsN`` with ``--sessions
N``) with the load average before and after (a busy machine is noisier).
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

from nas.commands.options import positive
from nas.latency import Profile, Table, Timing, fill, placed_units
from nas.latency.table import COLUMNS, PROBE_ELASTICITY, parse_row
from nas.spaces import constraints_for, load_space

RESULTS = Path(__file__).parent / "results"
WAYS = {"as_timed": 0.0, "elastic": PROBE_ELASTICITY, "probe": 1.0}  # powers of the probe


def agreement(first: Table, second: Table, networks: list, power: float) -> dict:
    """How alike two tables, each entry scaled by its probe to ``power``, predict the units both
    list and the networks both list every unit of."""
    def read(entry) -> float:
        return entry.mean_ms / entry.probe_ms ** power

    def ms(table: Table, keys) -> float:
        return sum(read(table.get(k)) for k in keys)

    both = first.entries.keys() & second.entries.keys()
    keys = [ks for n in networks if both.issuperset(ks := [p.key(first.profile)
                                                           for p in placed_units(n)])]
    units = [math.log(read(second.get(k)) / read(first.get(k))) for k in both]
    nets = np.log([ms(second, k) / ms(first, k) for k in keys])
    centred = np.abs(np.expm1(nets - statistics.median(nets)))
    return {"units": len(units), "networks": len(keys),
            "unit_spread": round(float(np.std(units)), 4),
            "network_spread": round(float(np.std(nets)), 4),
            "network_median_ratio": round(math.exp(statistics.median(nets)), 4),
            "within_5": float(np.mean(centred <= 0.05)),
            "within_10": float(np.mean(centred <= 0.10))}


def fitted_elasticity(first: Table, second: Table) -> float:
    """The power of the probe's change that best fits the change of the units both tables list:
    the least-squares slope of the logs of their mean ratios on the logs of their probe
    ratios."""
    both = first.entries.keys() & second.entries.keys()
    probe = np.log([second.get(k).probe_ms / first.get(k).probe_ms for k in both])
    units = np.log([second.get(k).mean_ms / first.get(k).mean_ms for k in both])
    return round(float(np.polyfit(probe, units, 1)[0]), 3)


def compare(first: Table, second: Table, networks: list) -> dict:
    return {**{way: agreement(first, second, networks, power) for way, power in WAYS.items()},
            "fitted_elasticity": fitted_elasticity(first, second)}


def _medians(comparisons: dict) -> dict:
    """Each way's figures and the fitted elasticity, the median over the comparisons."""
    first = next(iter(comparisons.values()))
    return {**{way: {m: statistics.median(c[way][m] for c in comparisons.values())
                     for m in first[way]} for way in WAYS},
            "fitted_elasticity": statistics.median(c["fitted_elasticity"]
                                                   for c in comparisons.values())}


def first_measurements(table: Table, path: Path) -> Table:
    """The table read by the first measurement of each unit: a copy of its file at ``path``
    without the later rows of a unit."""
    seen, kept = set(), []
    for line in table.path.read_text().splitlines(keepends=True):
        if not line.startswith("#") and not line.startswith(COLUMNS[0] + ","):
            key = parse_row(line).key
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    path.write_text("".join(kept))
    return Table(path, table.profile)


def comparisons(passes: list[Table], earlier: Table | None, networks: list) -> dict:
    """Every pair of passes compared, and each pass with ``earlier`` (None without it)."""
    pairs = {f"{i + 1}-{j + 1}": compare(passes[i], passes[j], networks)
             for i, j in itertools.combinations(range(len(passes)), 2)}
    against = {f"{i + 1}": compare(earlier, table, networks)
               for i, table in enumerate(passes)} if earlier else None
    return {"median_over_pairs": _medians(pairs), "pairs": pairs,
            "against": against and {"median_over_passes": _medians(against),
                                    "passes": against}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=positive, default=30, help="networks per pass (default 30)")
    parser.add_argument("--passes", type=positive, default=3)
    parser.add_argument("--space", default="regnet")
    parser.add_argument("--budget", default="400MF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sessions", type=positive, default=1,
                        help="measurements of each unit pooled in a pass's table (default 1)")
    parser.add_argument("--against", type=Path, metavar="TABLE",
                        help="also compare each pass with this table, built before")
    parser.add_argument("-o", "--output", type=Path,
                        help="default benchmarks/results/latency_repeatability[_sessionsN].json")
    args = parser.parse_args()
    sessions = f"_sessions{args.sessions}" if args.sessions > 1 else ""
    output = args.output or RESULTS / f"latency_repeatability{sessions}.json"
    space = load_space(args.space)
    networks = [s.network for s in
                space.sample(args.n, args.seed, constraints_for(space, args.budget))]
    profile, load_before, start = Profile(), os.getloadavg()[0], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        passes = []
        for i in range(args.passes):
            passes.append(Table(Path(tmp) / f"{i}.csv", profile))
            fill(passes[-1], networks, Timing(), sessions=args.sessions)
            print(f"pass {i + 1} of {args.passes}: {len(passes[-1])} units", flush=True)
        earlier = Table(args.against, profile) if args.against else None
        pooled = comparisons(passes, earlier, networks)
        single = comparisons([first_measurements(t, Path(tmp) / f"single{i}.csv")
                              for i, t in enumerate(passes)], earlier, networks)
        per_unit = statistics.fmean(e.sessions for t in passes for e in t.entries.values())
    result = {"space": args.space, "budget": args.budget, "networks": args.n,
              "units": len(passes[0]), "passes": args.passes,
              "sessions": args.sessions, "sessions_per_unit": round(per_unit, 3),
              "device": profile.name(),
              "seconds": round(time.time() - start),
              "load_average_before_after": [load_before, os.getloadavg()[0]],
              "against_table": args.against and str(args.against), **pooled, "single": single}
    print(json.dumps({name: {"pairs": c["median_over_pairs"],
                             "against": c["against"] and c["against"]["median_over_passes"]}
                      for name, c in (("pooled", pooled), ("single", single))}, indent=2))
    output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
