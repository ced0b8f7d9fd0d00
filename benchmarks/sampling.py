"""Feasible samples per second of rejection sampling (``Space.sample``) at a FLOPs budget, beside
a naive sampler that builds and fully counts every draw, on one thread. Times are CPU seconds
of this process (other load on the machine does not count); rates are medians of --repeats
runs with other seeds, "cold" with the cost caches emptied first, "warm" with them kept. Also
the time to report a budget that nothing in the space meets.

    python benchmarks/sampling.py [--n 2000] [--repeats 5] [--spaces regnet anynet ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nas.network import complexity
from nas.spaces import Infeasible, constraints_for, costs, load_space


def cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def naive(space, n: int, seed: int, constraints) -> None:
    """Draw one at a time, build the network, count it fully, keep it if it fits."""
    rng, found = np.random.default_rng(seed), 0
    while found < n:
        values = space.draw(rng)[0]
        net = space.network(values)
        stages_ok = constraints.admits("stages", len(net.stages))
        totals = complexity(net, constraints.resolution, constraints.num_classes).totals()
        found += stages_ok and constraints.admits_costs(totals)


def clear_caches() -> None:
    costs._PART_COSTS.clear()
    costs._unit_cost.cache_clear()


def rate(run, n: int, repeats: int, cold: bool) -> float:
    times = []
    for seed in range(repeats):
        if cold:
            clear_caches()
        times.append(cpu_seconds(lambda seed=seed: run(seed)))
    return n / statistics.median(times)


def rates(space, args) -> tuple[float, float, float]:
    """Cold, warm and naive feasible samples per CPU second of one space."""
    cx = constraints_for(space, args.budget)
    few = max(50, args.n // 20)  # the naive sampler is slow: fewer samples

    def sampled(seed):
        space.sample(args.n, seed, cx)

    return (rate(sampled, args.n, args.repeats, cold=True),
            rate(sampled, args.n, args.repeats, cold=False),
            rate(lambda seed: naive(space, few, seed, cx), few, args.repeats, cold=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="feasible samples per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", default="400MF")
    p.add_argument("--spaces", nargs="+", default=["regnet", "anynet", "mixed"])
    args = p.parse_args()
    print(f"feasible samples per CPU second at {args.budget} (median of {args.repeats} runs)")
    print(f"{'space':>12} {'cold':>8} {'warm':>8} {'naive':>8} {'cold/naive':>10}")
    for name in args.spaces:
        cold, warm, slow = rates(load_space(name), args)
        print(f"{name:>12} {cold:8.0f} {warm:8.0f} {slow:8.0f} {cold / slow:10.1f}")
    space = load_space("regnet")
    clear_caches()
    start = time.process_time()
    try:
        space.sample(10, 0, constraints_for(space, "1MF"))
    except Infeasible as e:
        print(f"regnet at 1MF: reported in {time.process_time() - start:.2f} CPU s: {e}")


if __name__ == "__main__":
    main()
