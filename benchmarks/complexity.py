"""Configs per second: analytic counting (``nas.network.complexity``) against building the module
and measuring its forward pass (``nas.cost.measure.measure``), on the same random 20-block
networks of every family, on one thread. Times are CPU seconds of this process, so that other
load on the machine does not count; analytic times are medians of --repeats passes. By default
widths are 4x those of the test configs (stages of 16 to 256 channels), as in ImageNet networks.

    python benchmarks/complexity.py [--n 60] [--scale 4]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from randomnets import random_network  # noqa: E402

from nas.blocks import FAMILIES  # noqa: E402
from nas.cost.measure import hook_counts  # noqa: E402
from nas.network import build, complexity  # noqa: E402

DEPTHS = [4, 6, 6, 4]


def seconds(work, nets: list) -> float:
    """CPU seconds of ``work`` on each config."""
    start = time.process_time()
    for net in nets:
        work(net)
    return time.process_time() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=60, help="configs per family (default 60)")
    p.add_argument("--resolution", type=int, default=224, help="input size (default 224)")
    p.add_argument("--scale", type=int, default=4,
                   help="width multiplier of the random configs (default 4: ImageNet widths)")
    p.add_argument("--repeats", type=int, default=5, help="analytic passes (default 5)")
    args = p.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(0)
    rows = []
    for family in FAMILIES:
        nets = [random_network(rng, family, DEPTHS, args.scale) for _ in range(args.n)]
        analytic = statistics.median(seconds(lambda n: complexity(n, args.resolution), nets)
                                     for _ in range(args.repeats))
        built = seconds(lambda n: hook_counts(build(n), args.resolution), nets)
        rows.append((family, args.n, analytic, built))
    _, counts, analytic, built = zip(*rows)
    rows.append(("all", sum(counts), sum(analytic), sum(built)))
    print(f"{args.n} random {sum(DEPTHS)}-block configs per family (widths x{args.scale}) at "
          f"{args.resolution}x{args.resolution}; configs per CPU second on one thread")
    print(f"{'family':>14} {'analytic/s':>11} {'build+measure/s':>16} {'ratio':>8}")
    for family, n, analytic, built in rows:
        print(f"{family:>14} {n / analytic:11.0f} {n / built:16.2f} {built / analytic:8.0f}")


if __name__ == "__main__":
    main()
