"""``nas export``: a trial of a run as one standalone PyTorch file (and its config YAML)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a run's chosen network as standalone PyTorch code"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="trial id")
    which.add_argument("--pick", default="knee", choices=("accuracy", "latency", "flops", "knee"),
                       help="the front's most accurate, fastest, smallest, or its knee "
                            "(default knee)")
    p.add_argument("-o", "--output", type=Path, default=Path("model.py"),
                   help="the Python file (default model.py); the YAML config goes beside it")
    p.add_argument("--force", action="store_true",
                   help="overwrite the Python file and the files beside it if they exist")
    p.add_argument("--weights", action="store_true",
                   help="export the network as proxy-trained (CIFAR stem, 10 classes) with its "
                        "trained weights, loaded by the file's build_model")


def run(args: argparse.Namespace) -> int:
    from nas.config import Network
    from nas.export import load_weights, write_export
    from nas.search.report import RunError, load_run, pick, summary

    run = load_run(args.run)
    row = pick(run, args.trial, args.pick)
    trial = int(row["trial_id"])
    config = Network.from_json(row["config"])
    title = f"Trial {trial} of {run.path.name} ({summary(row['config'])})"
    num_classes, state = run.settings.num_classes, None
    if args.weights:
        from nas.evaluate.proxy import NUM_CLASSES, proxy_network

        weights = run.path / "weights" / f"trial_{trial}.pt"
        if not weights.is_file():
            raise RunError(f"{weights}: no saved weights for trial {trial}")
        config = proxy_network(config, run.settings.proxy.width_mult)
        num_classes, state = NUM_CLASSES, load_weights(weights, config, NUM_CLASSES)
    for path in write_export(config, args.output, num_classes, state, title, args.force):
        print(f"wrote {path}")
    print(f"trial {trial}: accuracy {row['accuracy']:.2f}, flops {int(row['flops']):,}, "
          f"params {int(row['params']):,}")
    return 0
