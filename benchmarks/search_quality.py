"""Search quality at equal wall-clock: the front each method finds in the same seconds.

Methods, each given ``--seconds`` of wall-clock on this machine, for ``--seeds`` seeds:
- ``default``: ``search.py`` as a user runs it (TPE, the default accuracy signal), with
  ``--time-budget``;
- ``random``: the same with ``--sampler random``;
- ``params_topk``: no search: draw 2,000 feasible networks from the space, sort them by params
  (most first) and score them in that order with the same signal, two at a time, until the
  seconds run out.
Objectives are the default's, (accuracy signal, predicted latency), from one latency table
filled beforehand for the space (``--table-networks``), so that no method measures latency
while it runs. Hypervolumes use one reference point for all runs: the lowest signal and the
highest latency any run found.

    NAS_DATA=... python benchmarks/search_quality.py [--seconds 150] [--seeds 5]

Writes benchmarks/results/search_quality.{csv,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from nas.cost.latency import Profile, Table, Timing, predict
from nas.evaluate import data
from nas.evaluate.proxy import ProxySettings
from nas.evaluate.signal import DEFAULT_SIGNAL, SIGNALS, features, measure
from nas.search.pareto import hypervolume_2d
from nas.spaces import constraints_for, load_space

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OBJECTIVES = ["accuracy", "latency_ms"]
POOL = 2000


def searched(args, table: Path, sampler: str, seed: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as out:
        run = Path(out) / "run"
        subprocess.run([sys.executable, "search.py", "--space", args.space, "--budget",
                        args.budget, "--sampler", sampler, "--seed", str(seed),
                        "--trials", "100000", "--time-budget", f"{args.seconds}s",
                        "--latency-table", str(table), "--out", str(run)],
                       cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        trials = pd.read_csv(run / "trials.csv")
    return trials[trials["status"] == "complete"][OBJECTIVES + ["params"]]


_data = None


def _score(config, seed: int) -> tuple[dict, float]:
    global _data
    _data = _data or data.load()
    start = time.perf_counter()
    record, _ = measure(config, _data, SIGNALS[DEFAULT_SIGNAL], ProxySettings(threads=1), seed)
    return record, time.perf_counter() - start


def params_topk(args, table: Table, seed: int) -> pd.DataFrame:
    start = time.time()
    space = load_space(args.space)
    samples = space.sample(POOL, seed, constraints_for(space, args.budget))
    samples.sort(key=lambda s: -s.complexity.params)
    ranking, rows = SIGNALS[DEFAULT_SIGNAL], []
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        pending = []
        for i, sample in enumerate(samples):
            pending.append((sample, pool.submit(_score, sample.network, seed * 100_003 + i)))
            if len(pending) < 2:
                continue
            sample, future = pending.pop(0)
            record, _ = future.result()
            if time.time() - start > args.seconds:
                break
            if record["status"] == "ok":
                measured = {**record, **sample.complexity.totals()}
                rows.append({"accuracy": ranking.score(features(measured, ranking.features)),
                             "latency_ms": predict(sample.network, table, 224, 1000,
                                                   Timing()).total_ms,
                             "params": sample.complexity.params})
        for _, future in pending:
            future.cancel()
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="regnet")
    p.add_argument("--budget", default="400MF")
    p.add_argument("--seconds", type=int, default=150, help="wall-clock per run (default 150)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--table-networks", type=int, default=200,
                   help="networks whose blocks fill the latency table first (default 200)")
    p.add_argument("--methods", default="default,random,params_topk")
    args = p.parse_args()
    profile = Profile()
    table_path = ROOT / "results" / "latency" / f"search-quality-{profile.name}.csv"
    subprocess.run([sys.executable, "-m", "nas.cli", "latency", "build", "--space", args.space,
                    "--budget", args.budget, "-n", str(args.table_networks),
                    "--latency-table", str(table_path)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    table = Table(table_path, profile)
    runs = []
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            found = (params_topk(args, table, seed) if method == "params_topk" else
                     searched(args, table_path, "tpe" if method == "default" else method, seed))
            runs.append((method, seed, found))
            print(f"{method} seed {seed}: {len(found)} candidates scored", flush=True)
    everything = pd.concat([f for _, _, f in runs])
    reference = [float(everything["accuracy"].min()), float(everything["latency_ms"].max())]
    rows = [{"method": m, "seed": s, "scored": len(f),
             "hypervolume": hypervolume_2d(f, OBJECTIVES, reference) if len(f) else 0.0,
             "best_accuracy": float(f["accuracy"].max()) if len(f) else None}
            for m, s, f in runs]
    table_out = pd.DataFrame(rows)
    print(table_out.to_string(index=False))
    medians = {m: statistics.median(g["hypervolume"]) for m, g in table_out.groupby("method")}
    summary = {"seeds": args.seeds, "wall_clock_seconds": args.seconds, "space": args.space,
               "budget": args.budget, "signal": DEFAULT_SIGNAL, "objectives": OBJECTIVES,
               "reference_point": reference, "median_hypervolume": medians,
               "median_scored": {m: statistics.median(g["scored"])
                                 for m, g in table_out.groupby("method")},
               "ratio_to_random": {m: v / medians["random"] for m, v in medians.items()}
               if medians.get("random") else None}
    print(json.dumps(summary, indent=2))
    table_out.to_csv(RESULTS / "search_quality.csv", index=False)
    (RESULTS / "search_quality.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
