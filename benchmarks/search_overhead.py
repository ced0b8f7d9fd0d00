"""Orchestration cost of the search, measured, not guessed.

1. Ray actors (what the search uses) against Ray Tune trials, side by side on one Ray
   instance: seconds of overhead per trivial trial.
2. A real search at the default settings: per-trial overhead (wall time from submission to
   result, minus the training's own time) as a share of the training time, the time spent
   proposing a candidate (analytic counts, latency prediction), the share of the slots' time
   spent training (utilization), and trials per hour.

    python benchmarks/search_overhead.py [--trials 8] [--tune-trials 8]

Writes benchmarks/results/search_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def ray_costs(n: int) -> dict[str, float]:
    import ray
    from ray import tune

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    startup = time.perf_counter() - start

    @ray.remote(num_cpus=1)
    class Echo:
        def call(self, x):
            return x

    actor = Echo.remote()
    ray.get(actor.call.remote(0))
    calls = []
    for i in range(max(n, 20)):
        t = time.perf_counter()
        ray.get(actor.call.remote(i))
        calls.append(time.perf_counter() - t)

    def trivial(config):
        return {"score": config["x"]}

    with tempfile.TemporaryDirectory() as storage:
        t = time.perf_counter()
        tune.Tuner(tune.with_resources(trivial, {"cpu": 1}),
                   param_space={"x": tune.grid_search(list(range(n)))},
                   run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
        tune_seconds = time.perf_counter() - t
    ray.shutdown()
    slots = os.cpu_count()
    return {"ray_start_seconds": startup, "actor_call_ms": 1e3 * statistics.median(calls),
            "tune_seconds_per_trial": tune_seconds / n * slots, "tune_trials": n}


def search_costs(trials: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        run = Path(out) / "run"
        t = time.perf_counter()
        subprocess.run([sys.executable, "search.py", "--trials", str(trials), "--out", str(run)],
                       cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        table = pd.read_csv(run / "trials.csv")
    done = table[table["status"].isin(["complete", "failed"])]
    warm = done.iloc[os.cpu_count():]  # after each actor's first trial (process start, data)
    busy = (done["submitted_at"] + done["wall_seconds"]).max() - done["submitted_at"].min()
    return {"search_trials": len(done), "search_wall_seconds": wall,
            "train_seconds_median": done["train_seconds"].median(),
            "overhead_seconds_median": done["overhead_seconds"].median(),
            "overhead_share_median": (done["overhead_seconds"] / done["train_seconds"]).median(),
            "overhead_share_warm_median": (warm["overhead_seconds"] / warm["train_seconds"]
                                           ).median() if len(warm) else None,
            "propose_seconds_median": done["propose_seconds"].median(),
            "propose_share_median": (done["propose_seconds"] / done["train_seconds"]).median(),
            "slot_utilization": done["train_seconds"].sum() / (os.cpu_count() * busy),
            "trials_per_hour": 3600 * len(done) / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8, help="trained candidates of the search")
    p.add_argument("--tune-trials", type=int, default=8)
    args = p.parse_args()
    figures = {**ray_costs(args.tune_trials), **search_costs(args.trials),
               "load_average": os.getloadavg()[0]}
    for key, value in figures.items():
        print(f"{key:28s} {value:.4g}" if isinstance(value, float) else f"{key:28s} {value}")
    out = ROOT / "benchmarks" / "results" / "search_overhead.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
