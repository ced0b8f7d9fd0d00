"""``nas info``: complexity, receptive fields and architecture of one network."""

from __future__ import annotations

import argparse
import json

from nas.commands.options import add_input_size

HELP = "print FLOPs, params, activations, MAC, receptive fields and stages of a network"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="network config YAML (or a generator spec)")
    add_input_size(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from nas.budget import count_text
    from nas.commands.tables import table
    from nas.generators import load_network
    from nas.network import complexity

    net = load_network(args.config)
    counts = complexity(net, args.resolution, args.num_classes)
    stages = [{"block": s.block, "depth": s.depth, "width": s.width, "stride": s.stride,
               "resolution": s.resolution, "receptive_field": s.receptive_field,
               "flops": s.flops, "params": s.params, "acts": s.acts, "mac": s.mac,
               **stage.info()} for s, stage in zip(counts.stages, net.stages)]
    if args.json:
        print(json.dumps({**counts.totals(), "receptive_field": counts.receptive_field,
                          "resolution": args.resolution, "num_classes": args.num_classes,
                          "stages": stages, "config": net.to_dict()}))
        return 0
    print(f"{args.config} at {args.resolution}x{args.resolution}, {args.num_classes} classes")
    print("  " + "  ".join(f"{k} {count_text(v)}" for k, v in counts.totals().items())
          + f"  receptive field {counts.receptive_field}")
    print(f"  stem: {net.stem.kind}, width {net.stem.width}"
          + ("" if net.stem.norm else ", no batch norm or activation"))
    header = ("stage", "block", "depth", "width", "stride", "out", "rf", "flops", "params",
              "acts", "mac", "settings")
    rows = [(f"s{i}", s["block"], s["depth"], s["width"], s["stride"],
             f"{s['resolution']}x{s['resolution']}", s["receptive_field"], count_text(s["flops"]),
             count_text(s["params"]), count_text(s["acts"]), count_text(s["mac"]), _settings(stage))
            for i, (s, stage) in enumerate(zip(stages, net.stages), 1)]
    print(table(header, rows))
    head = net.head
    print(f"  head: {'BN-ReLU, ' if head.preact else ''}"
          f"{f'1x1 conv to {head.width}, ' if head.width else ''}pool, linear")
    return 0


def _settings(stage) -> str:
    common = {"block", "depth", "width", "stride"}
    return " ".join(f"{k}={v}" for k, v in stage.to_dict().items()
                    if k not in common and v not in (0, 0.0, None))
