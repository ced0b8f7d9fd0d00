"""``nas export``: a trial of a run as one standalone PyTorch file (and its config YAML)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.search.pareto import ALIASES

HELP = "write a run's chosen network as standalone PyTorch code or as ONNX"
FORMATS = {"py": "model.py", "onnx": "model.onnx"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="trial id")
    which.add_argument("--pick", default="knee", choices=(*ALIASES, "knee"),
                       help="the front's most accurate, fastest, fewest FLOPs, params or MAC, "
                            "or its knee (default knee)")
    p.add_argument("--format", choices=FORMATS, default="py",
                   help="py: standalone PyTorch code (default); onnx: an ONNX file with a "
                        "dynamic batch, checked in ONNX Runtime (needs the onnx extra)")
    p.add_argument("-o", "--output", type=Path,
                   help="the file to write (default model.py or model.onnx); the YAML config "
                        "goes beside it, and for a RegNet its pycls config (.pycls.yaml)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the Python file and the files beside it if they exist")
    p.add_argument("--weights", action="store_true",
                   help="export the network as proxy-trained (CIFAR stem, 10 classes) with its "
                        "trained weights, loaded by the file's build_model")


def run(args: argparse.Namespace) -> int:
    from nas.config import Network
    from nas.export import ExportError, load_weights, refuse_overwrite, write_export
    from nas.search.report import RunError, latency_text, load_run, pick, summary

    run = load_run(args.run)
    row = pick(run, args.trial, args.pick)
    trial = int(row["trial_id"])
    config = Network.from_json(row["config"])
    title = f"Trial {trial} of {run.name} ({summary(row['config'])})"
    num_classes, state = run.settings.num_classes, None
    if args.weights:
        from nas.evaluate.proxy import NUM_CLASSES, proxy_network

        weights = run.path / "weights" / f"trial_{trial}.pt"
        if not weights.is_file():
            raise RunError(f"{weights}: no saved weights for trial {trial}")
        width = run.settings.proxy.width_mult
        config = proxy_network(config, width)
        num_classes, state = NUM_CLASSES, load_weights(weights, config, NUM_CLASSES)
        title = (f"Trial {trial} of {run.name}, as proxy-trained ({summary(config.to_json())}: "
                 f"width x{width:g}, CIFAR stem, {NUM_CLASSES} classes)")
    output = args.output or Path(FORMATS[args.format])
    suffix = Path(FORMATS[args.format]).suffix
    if output.suffix != suffix:  # its config files go beside it, named by the suffix
        raise ExportError(f"{output}: the {args.format} export is written to a {suffix} file")
    pycls = None if args.weights else _pycls(run, row, config, num_classes)
    extras = [".pt"] * (state is not None and args.format != "onnx") + [".pycls.yaml"] * bool(pycls)
    same = {output.with_suffix(".yaml"): config.to_yaml()}  # what both formats write
    if pycls is not None:
        from nas.onnx_export import pycls_text

        same[output.with_suffix(".pycls.yaml")] = pycls_text(pycls)
    refuse_overwrite([output, *(output.with_suffix(s) for s in [".yaml", *extras])], args.force,
                     same)
    if args.format == "onnx":
        from nas.onnx_export import write_onnx

        resolution = 32 if args.weights else run.settings.resolution
        difference = write_onnx(config, output, num_classes, state, resolution, args.force)
        config.save(output.with_suffix(".yaml"))
        print(f"wrote {output} (ONNX Runtime matches PyTorch within {difference:.2g})")
        print(f"wrote {output.with_suffix('.yaml')}")
    else:
        for path in write_export(config, output, num_classes, state, title, args.force):
            print(f"wrote {path}")
    if pycls is not None:
        from nas.onnx_export import write_pycls

        write_pycls(output.with_suffix(".pycls.yaml"), pycls)
        print(f"wrote {output.with_suffix('.pycls.yaml')}")
    latency = latency_text(row, " ms")
    print(f"trial {trial}: accuracy {row['accuracy']:.2f}, "
          + (f"latency {latency}, " if latency != "-" else "")
          + f"flops {int(row['flops']):,}, params {int(row['params']):,}")
    if args.weights:
        from nas.evaluate.data import MEAN, STD
        from nas.network import complexity

        counts = complexity(config, 32, num_classes)
        print(f"exported as proxy-trained: width x{width:g}, CIFAR stem, {num_classes} classes, "
              f"flops {counts.flops:,} and params {counts.params:,} at 32x32; inputs in [0, 1], "
              f"normalized per channel by mean {MEAN} and std {STD}")
    return 0


def _pycls(run, row, config, num_classes: int):
    """The pycls config of a trial of a RegNet space, from its values (``param:`` columns)
    and the space's fixed settings; None where they do not make exactly its network."""
    import pandas as pd

    from nas.errors import NasError
    from nas.onnx_export import pycls_config
    from nas.spaces import load_space

    values = {k.removeprefix("param:"): v for k, v in row.items()
              if k.startswith("param:") and not pd.isna(v)}
    try:
        space = load_space(run.settings.space)
    except NasError:  # the space is gone or changed since the run
        return None
    if space.generator != "regnet":
        return None
    return pycls_config(config, {**space.fixed, **values}, num_classes)
