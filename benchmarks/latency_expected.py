"""Expected latencies against a second table: how near each way of reading one table's
prediction of a network comes to what another table, measured apart, says of it.

    python benchmarks/latency_expected.py TABLE_A TABLE_B [--space regnet] [--budget 400MF]

Draws ``-n`` feasible networks of the space (``--seed``) and keeps those both tables list every
unit of (at 224x224, 1,000 classes, as ``nas latency build`` times them). Each table is read in
turn as the search's, the other as the judge, and the judge's sums are compared with:
- ``table``: the search table's sum, what a trial records;
- ``fit``: the least-squares fit of log latency on the log analytic counts over the kept
  networks' sums (the screen fits it over the candidates it scored);
- ``expected``: the sum drawn toward the fit as far as its noise outweighs what the fit leaves
  unexplained (the screen's ``Shrinkage``), for each session correlation of
  ``--correlations`` (``Table.sum_noise``; the search uses ``SESSION_CORRELATION``), with the
  median weight it gives the sums.
A figure is the spread: the standard deviation of the log ratio around its median, so that a
constant factor between the tables counts as none. The judge's own noise adds alike to every
way, so the lowest spread is the nearest to the truth. Also each table's session noise and the
median number of independent sessions its sums are worth. Nothing is timed: it reads tables.

Writes ``benchmarks/results/latency_expected.json`` (``_NAME`` with ``--name NAME``).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from nas.commands.options import positive
from nas.latency import Profile, Table
from nas.latency.table import SESSION_CORRELATION
from nas.search.screen import Lookup, Shrinkage, latency_fit
from nas.spaces import constraints_for, load_space

RESULTS = Path(__file__).parent / "results"
CORRELATIONS = "0,0.1,0.2,0.3,0.5,1"


def spread(predicted: list[float], judged: np.ndarray) -> float:
    ratio = np.log(predicted) - judged
    return round(float(np.std(ratio - np.median(ratio))), 4)


def read(table: Table, samples: list) -> list[list[tuple] | None]:
    """Each network's entries, (key, ms) at the table's typical speed, as the search sums them;
    None where the table lacks a unit."""
    lookup = Lookup(table, 224, 1000)
    parts = lookup.parts()
    return [parts(lookup.keys(sample.network)) for sample in samples]


def judged_by(search: Table, judge: Table, samples: list, correlations: list[float]) -> dict:
    """The spreads of each way of reading ``search`` against ``judge``'s sums."""
    entries = read(search, samples)
    sums = [sum(ms for _, ms in parts) for parts in entries]
    judged = np.log([sum(ms for _, ms in parts) for parts in read(judge, samples)])
    counts = [s.complexity.totals() for s in samples]
    fit = latency_fit([{**c, "latency_ms": ms} for c, ms in zip(counts, sums)])
    result = {"table": spread(sums, judged), "fit": spread([fit(c) for c in counts], judged),
              "expected": {}, "weight": {}}
    for rho in correlations:
        noises = [search.sum_noise(parts, correlation=rho) for parts in entries]
        expect = Shrinkage.of(fit, noises)
        result["expected"][str(rho)] = spread(
            [expect(c, ms, noise) for c, ms, noise in zip(counts, sums, noises)], judged)
        result["weight"][str(rho)] = round(statistics.median(map(expect.weight, noises)), 3)
    return result


def describe(table: Table, samples: list) -> dict:
    worth = [table.independent_sessions(parts) for parts in read(table, samples)]
    return {"path": str(table.path), "units": len(table),
            "session_noise": round(table.session_noise(), 4),
            "median_sessions_per_sum": round(statistics.median(worth), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs=2, type=Path, metavar="TABLE")
    p.add_argument("--space", default="regnet")
    p.add_argument("--budget", default="400MF")
    p.add_argument("-n", type=positive, default=1500, help="networks drawn (default 1500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--correlations", default=CORRELATIONS,
                   help=f"session correlations to try (default {CORRELATIONS})")
    p.add_argument("--name", help="a suffix of the result file's name")
    args = p.parse_args()
    try:
        correlations = [float(c) for c in args.correlations.split(",")]
    except ValueError:
        correlations = []
    if not correlations or not all(0 <= c <= 1 for c in correlations):
        p.error(f"--correlations {args.correlations}: shares from 0 to 1, e.g. {CORRELATIONS}")
    a, b = (Table(path, Profile()) for path in args.tables)
    if a.session_noise() is None or b.session_noise() is None:
        p.error("both tables must state their noise (Table.session_noise): build them with "
                "nas latency build --sessions 2 or more")
    space = load_space(args.space)
    drawn = space.sample(args.n, args.seed, constraints_for(space, args.budget))
    known = [all(parts is not None for parts in both)
             for both in zip(read(a, drawn), read(b, drawn))]
    samples = [s for s, k in zip(drawn, known) if k]
    if len(samples) < 10:
        p.error(f"the tables both know every unit of {len(samples)} of the {args.n} networks "
                "drawn: too few to compare")
    result = {"space": args.space, "budget": args.budget, "drawn": args.n,
              "networks": len(samples), "search_correlation": SESSION_CORRELATION,
              "tables": {"a": describe(a, samples), "b": describe(b, samples)},
              "a_judged_by_b": judged_by(a, b, samples, correlations),
              "b_judged_by_a": judged_by(b, a, samples, correlations)}
    print(json.dumps(result, indent=2))
    output = RESULTS / f"latency_expected{'_' + args.name if args.name else ''}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
