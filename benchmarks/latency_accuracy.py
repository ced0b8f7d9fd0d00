"""Latency tables against measured latency: random 400MF networks of three spaces.

One command, best on a quiet machine (it takes 15-30 minutes on 2 cores):

    nice -n 10 python benchmarks/latency_accuracy.py [--backend onnxruntime]

It builds a fresh table for 200 random ``regnet`` networks (timed), then predicts and measures
30 other random networks of each of ``regnet``, ``mobilenetv2`` and ``shufflenetv2`` (missing
entries measured on demand), and writes ``benchmarks/results/latency_accuracy.json``: per space
``n``, ``median_abs_error``, ``within_5``, ``within_10`` (each network predicted at the speed
the probe showed around its measurement), ``at_typical_speed`` (the same figures for
predictions at the table's typical speed), ``reused`` (the share of units whose entries came
from the table rather than from the network itself) and the predicted and measured
milliseconds of every network; the build's seconds and entries; the device, and the load
average before and after (measurements on a busy machine are noisier). ``--backend
onnxruntime`` does the same for ONNX Runtime sessions (``latency_accuracy_onnxruntime.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nas.latency import Profile, Table, Timing, check, fill
from nas.spaces import constraints_for, load_space

SPACES = ("regnet", "mobilenetv2", "shufflenetv2")
BUDGET = "400MF"
RESULTS = Path(__file__).parent / "results"
OUTPUTS = {"torch": RESULTS / "latency_accuracy.json",
           "onnxruntime": RESULTS / "latency_accuracy_onnxruntime.json"}


def networks(space: str, n: int, seed: int) -> list:
    loaded = load_space(space)
    return [s.network for s in loaded.sample(n, seed, constraints_for(loaded, BUDGET))]


def accuracy(rows: list[dict], predicted: str) -> dict:
    errors = [abs(r[predicted] / r["measured_ms"] - 1) for r in rows]
    return {"median_abs_error": round(statistics.median(errors), 4),
            "within_5": sum(e <= 0.05 for e in errors) / len(errors),
            "within_10": sum(e <= 0.10 for e in errors) / len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="networks checked per space")
    parser.add_argument("--build-n", type=int, default=200, help="regnet networks built")
    parser.add_argument("--backend", choices=OUTPUTS, default="torch")
    parser.add_argument("-o", "--output", type=Path, help="default: by backend, in results/")
    args = parser.parse_args()
    args.output = args.output or OUTPUTS[args.backend]
    profile, timing = Profile(backend=args.backend), Timing()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        table = Table(Path(tmp) / "latency.csv", profile)
        start = time.perf_counter()
        built = fill(table, networks("regnet", args.build_n, seed=0), timing)
        build = {"space": "regnet", "budget": BUDGET, "networks": args.build_n, "entries": built,
                 "seconds": round(time.perf_counter() - start, 1)}
        print(f"build: {built} entries for {args.build_n} regnet networks in "
              f"{build['seconds']:.0f} s")
        spaces = {}
        for space in SPACES:
            result = check(networks(space, args.n, seed=1), table, timing)
            result["rows"] = [{k: v for k, v in r.items() if k != "config"}
                              for r in result["rows"]]
            result["at_typical_speed"] = accuracy(result["rows"], "predicted_typical_ms")
            spaces[space] = result
            print(f"{space}: n {result['n']}, median |error| {result['median_abs_error']:.1%}, "
                  f"within 5% {result['within_5']:.0%}, within 10% {result['within_10']:.0%}, "
                  f"entries reused {result['reused']:.0%}; at the table's typical speed "
                  f"{result['at_typical_speed']}")
    report = {"device": profile.name(), "backend": args.backend,
              "fingerprint": profile.fingerprint(), "budget": BUDGET,
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "load_before": load_before, "load_after": os.getloadavg(), "build": build,
              "spaces": spaces}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
