"""Fidelity of the proxy: does its cheap ranking agree with a much longer training?

Samples regnet networks at 400MF (360-400MF at 224x224), trains each with the default proxy and
with a reference training of 26,000 images for 5 epochs at full width, validated on 10,000 images
(6.5 times the default proxy's image-steps at 4 times its width), and reports Kendall tau and
Spearman rho between the two rankings, beside those of FLOPs and params alone, with the wall
seconds each training takes (one torch thread each, ``--workers`` at a time). Every finished
training is appended to ``proxy_fidelity_runs.csv`` at once, so a cut run loses nothing and a
rerun resumes. ``--try NAME`` trains one of the alternative proxies of ``TRIED`` on the same
networks, ``--try proxy NAME --seed 1`` the proxy and an alternative again with another seed;
the summary lists the correlation and cost of each in ``tried``. The summary is
``proxy_fidelity.json``; ``proxy_fidelity.csv`` is the table of every network with both
accuracies and costs.

    NAS_DATA=... nice -n 5 python benchmarks/proxy_fidelity.py [--n 16] [--workers 2]
    NAS_DATA=... nice -n 5 python benchmarks/proxy_fidelity.py --try "width_mult=1.0, epochs=2"
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from scipy.stats import kendalltau, spearmanr

from nas.budget import parse_count
from nas.config import Network
from nas.evaluate import data, proxy
from nas.spaces import load_space

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "proxy_fidelity_runs.csv"
FIELDS = ("index", "training", "status", "reason", "top1", "loss", "seconds",
          "images_per_second")
PROXY = proxy.ProxySettings(threads=1)
REFERENCE = dataclasses.replace(PROXY, train_images=26000, epochs=5, width_mult=1.0,
                                val_images=10000)
BUDGET, BAND, SAMPLE_SEED = "400MF", 0.9, 0
TRIED = {  # alternative proxies measured against the same reference: name -> changed settings
    "width_mult=0.5, epochs=2": {"width_mult": 0.5, "epochs": 2},  # the default until 2026-12
    "width_mult=1.0, epochs=2": {"width_mult": 1.0, "epochs": 2},
    "width_mult=1.0, val_images=10000, epochs=2": {"width_mult": 1.0, "val_images": 10000,
                                                   "epochs": 2},
    "width_mult=1.0, train_images=4000, epochs=2": {"width_mult": 1.0, "train_images": 4000,
                                                    "epochs": 2},
    "width_mult=1.0, train_images=8000, epochs=1": {"width_mult": 1.0, "train_images": 8000,
                                                    "epochs": 1},
    "width_mult=1.0, batch_size=64, epochs=2": {"width_mult": 1.0, "batch_size": 64,
                                                "epochs": 2},
    "width_mult=1.0, batch_size=32, epochs=2": {"width_mult": 1.0, "batch_size": 32,
                                                "epochs": 2},
}


def networks(n: int) -> list:
    space = load_space("regnet")
    constraints = space.constraints.with_budget(parse_count(BUDGET), BAND)
    return space.sample(n, SAMPLE_SEED, constraints)


_data = None


def _train(config: dict, settings: dict, seed: int) -> dict:
    """One training in a worker process, which loads (memory-maps) the data once."""
    global _data
    _data = _data or data.load()
    result = proxy.evaluate(Network.from_dict(config), _data, proxy.ProxySettings(**settings),
                            seed)
    return {k: v for k, v in result.to_dict().items() if k in FIELDS}


def done() -> dict[tuple[int, str], dict]:
    if not RUNS.exists():
        return {}
    with open(RUNS) as f:
        return {(int(r["index"]), r["training"]): r for r in csv.DictReader(f)}


def run(samples: list, trainings: dict[str, proxy.ProxySettings], workers: int,
        seed: int = 0) -> None:
    """Train every sample under every training not yet in the runs file, appending each (a
    training with another seed than 0 is named ``NAME, seed N``)."""
    finished = done()
    trainings = {f"{name}, seed {seed}" if seed else name: settings
                 for name, settings in trainings.items()}
    jobs = [(i, name, settings) for name, settings in trainings.items()
            for i, _ in enumerate(samples) if (i, name) not in finished]
    RESULTS.mkdir(exist_ok=True)
    new = not RUNS.exists()
    with open(RUNS, "a", newline="") as f, ProcessPoolExecutor(
            workers, mp_context=get_context("spawn")) as pool:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        futures = {pool.submit(_train, samples[i].network.to_dict(), s.to_dict(), seed):
                   (i, name) for i, name, s in jobs}
        for future in as_completed(futures):
            i, name = futures[future]
            row = {"index": i, "training": name, **future.result()}
            writer.writerow(row)
            f.flush()
            print(f"{name} #{i}: {row['status']} top1 {row['top1']:.2f} "
                  f"in {row['seconds']:.1f}s {row['reason']}", flush=True)


def correlations(truth: list[float], guess: list[float]) -> dict[str, float]:
    return {"kendall_tau": round(float(kendalltau(truth, guess).statistic), 4),
            "spearman_rho": round(float(spearmanr(truth, guess).statistic), 4)}


def image_steps(settings: proxy.ProxySettings) -> int:
    return settings.epochs * settings.train_images


def summarize(samples: list, rows: dict[tuple[int, str], dict]) -> dict:
    """Correlations with the reference's ranking, and the table of every network."""
    indices = range(len(samples))

    def top1(training: str, which=indices) -> list[float]:
        return [float(rows[i, training]["top1"]) for i in which]

    def scored(training: str) -> dict:
        have = [i for i in indices if (i, training) in rows]
        seconds = statistics.mean(float(rows[i, training]["seconds"]) for i in have)
        return {"n": len(have), **correlations(top1("reference", have), top1(training, have)),
                "seconds_per_candidate": round(seconds, 1)}

    with open(RESULTS / "proxy_fidelity.csv", "w", newline="") as f:
        table = [{"index": i, **s.values, "flops": s.complexity.flops,
                  "params": s.complexity.params,
                  **{f"{t}_{k}": rows[i, t][k] for t in ("proxy", "reference")
                     for k in ("top1", "seconds")}} for i, s in enumerate(samples)]
        writer = csv.DictWriter(f, table[0])
        writer.writeheader()
        writer.writerows(table)
    reference = top1("reference")
    flops = correlations(reference, [s.complexity.flops for s in samples])
    params = correlations(reference, [s.complexity.params for s in samples])
    proxy = scored("proxy")
    return {"n": proxy["n"], "kendall_tau": proxy["kendall_tau"],
            "spearman_rho": proxy["spearman_rho"],
            "flops_kendall_tau": flops["kendall_tau"], "flops_spearman_rho": flops["spearman_rho"],
            "params_kendall_tau": params["kendall_tau"],
            "params_spearman_rho": params["spearman_rho"],
            "proxy_seconds_per_candidate": proxy["seconds_per_candidate"],
            "reference_seconds_per_candidate": scored("reference")["seconds_per_candidate"],
            "reference_image_steps_ratio": image_steps(REFERENCE) / image_steps(PROXY),
            "timing": "wall seconds per training with 1 torch thread, two trainings at a time "
                      "on a 2-core machine shared with other jobs",
            "space": "regnet", "budget": BUDGET, "band": BAND, "sample_seed": SAMPLE_SEED,
            "proxy": PROXY.to_dict(), "reference": REFERENCE.to_dict(),
            "tried": [{"name": name, **scored(name)}
                      for name in dict.fromkeys(n for _, n in rows)
                      if name not in ("proxy", "reference")
                      and any((i, name) in rows for i in indices)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16, help="networks (default 16)")
    p.add_argument("--workers", type=int, default=2, help="parallel trainings (default 2)")
    p.add_argument("--try", dest="alternatives", nargs="+", choices=["proxy", *TRIED],
                   default=[], help="train only these alternative proxies")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the --try trainings (default 0; others are named NAME, seed N)")
    args = p.parse_args()
    samples = networks(args.n)
    trainings = ({name: dataclasses.replace(PROXY, **TRIED.get(name, {}))
                  for name in args.alternatives} or {"reference": REFERENCE, "proxy": PROXY})
    run(samples, trainings, args.workers, args.seed if args.alternatives else 0)
    rows = done()
    if not all((i, t) in rows for i in range(args.n) for t in ("proxy", "reference")):
        print("the summary waits for every proxy and reference training")
        return
    summary = {**summarize(samples, rows), "workers": args.workers}
    (RESULTS / "proxy_fidelity.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("proxy", "reference")},
                     indent=2))


if __name__ == "__main__":
    main()
