"""Training throughput: the evaluator's loop against a minimal hand-written PyTorch loop.

Both train the same model (the default proxy of RegNetX-400MF) with the same threads, batch size
and channels-last tensors; the evaluator's loop adds what the proxy needs (shuffling,
augmentation on tensors, the schedule, clipping, label smoothing, the per-step loss check).
Repeats alternate between the two after one untimed warm-up each; the medians of images per
second and their ratio are printed (the target is a ratio of at least 0.95).

    nice -n 10 python benchmarks/throughput.py [--repeats 5] [--steps 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
from torch import nn

from nas.evaluate.proxy import ProxySettings, proxy_network, train
from nas.generators import load_network
from nas.network import build

CONFIG = "spaces/zoo/regnetx_400mf.yaml"


def evaluator_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   settings: ProxySettings) -> float:
    curve, seconds, _ = train(model, x, y, settings, torch.Generator().manual_seed(0))
    return len(curve) * settings.batch_size / seconds


def minimal_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    start = time.perf_counter()
    for i in range(0, len(x) - batch_size + 1, batch_size):
        loss = nn.functional.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(x) // batch_size * batch_size / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=15, help="training steps per repeat")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = dataclasses.replace(ProxySettings(), epochs=1, threads=args.threads)
    network = proxy_network(load_network(CONFIG), settings.width_mult)
    n = args.steps * settings.batch_size
    x = torch.randn(n, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (n,))

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return build(network, 10).to(memory_format=torch.channels_last)

    loops = {"evaluator": lambda: evaluator_loop(fresh(), x, y, settings),
             "minimal": lambda: minimal_loop(fresh(), x, y, settings.batch_size)}
    for loop in loops.values():
        loop()  # warm-up
    rates = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            rates[name].append(loop())
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(f"{CONFIG} proxy (width x{settings.width_mult}), batch {settings.batch_size}, "
          f"{args.threads} threads, {args.steps} steps x {args.repeats} repeats")
    for name, r in rates.items():
        print(f"  {name:9s} median {medians[name]:7.1f} images/s  "
              f"(runs: {', '.join(f'{v:.0f}' for v in r)})")
    print(f"  ratio evaluator / minimal: {medians['evaluator'] / medians['minimal']:.3f}")


if __name__ == "__main__":
    main()
