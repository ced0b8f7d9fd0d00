"""Search quality: hypervolume of the front found by each sampler at an equal number of trained
candidates, over several seeds, on real CIFAR-10 proxy training.

Objectives are accuracy and FLOPs (both exact and noise-free to score); the reference point is
(0% accuracy, the FLOPs budget). The proxy is shrunk (``--epochs``, ``--train-images``) so the
study fits in minutes; every sampler gets the same proxy.

    NAS_DATA=... python benchmarks/search_quality.py [--trials 16] [--seeds 3]

Writes benchmarks/results/search_quality.{csv,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from nas.budget import parse_count
from nas.search.pareto import hypervolume_2d

ROOT = Path(__file__).resolve().parent.parent


def front_hypervolume(args, sampler: str, seed: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        run = Path(out) / "run"
        subprocess.run([sys.executable, "search.py", "--space", args.space, "--budget",
                        args.budget, "--sampler", sampler, "--seed", str(seed), "--trials",
                        str(args.trials), "--objectives", "accuracy,flops", "--epochs",
                        str(args.epochs), "--train-images", str(args.train_images),
                        "--width-mult", str(args.width_mult), "--out", str(run)],
                       cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        trials = pd.read_csv(run / "trials.csv")
    complete = trials[trials["status"] == "complete"].assign(
        flops=lambda t: t["flops"] / parse_count(args.budget))  # as a share of the budget
    return hypervolume_2d(complete, ["accuracy", "flops"], [0.0, 1.0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="regnet")
    p.add_argument("--budget", default="400MF")
    p.add_argument("--samplers", default="tpe,nsga2,random")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--width-mult", type=float, default=0.5)
    args = p.parse_args()
    rows = [{"sampler": sampler, "seed": seed,
             "hypervolume": front_hypervolume(args, sampler, seed)}
            for seed in range(args.seeds) for sampler in args.samplers.split(",")]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    medians = {s: statistics.median(g["hypervolume"]) for s, g in table.groupby("sampler")}
    summary = {"trials": args.trials, "seeds": args.seeds, "space": args.space,
               "budget": args.budget, "median_hypervolume": medians,
               "ratio_to_random": {s: v / medians["random"] for s, v in medians.items()}
               if medians.get("random") else None}
    print(json.dumps(summary, indent=2))
    results = ROOT / "benchmarks" / "results"
    table.to_csv(results / "search_quality.csv", index=False)
    (results / "search_quality.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
