"""``nas latency build|predict|check``: latency lookup tables of measured per-unit latencies."""

from __future__ import annotations

import argparse
import json
import sys
import time

from nas.commands.options import add_input_size, add_space, positive, seed
from nas.search.settings import LATENCY_BACKENDS

HELP = "measure, predict and check network latency from a table of per-unit latencies"


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="measure the entries of random networks of a space")
    _space_arguments(build, n=200)
    build.add_argument("--sessions", type=positive, default=1,
                       help="measurements pooled in each entry, each in a timing of its own "
                            "(default 1; n sessions cut a measurement's noise about sqrt(n)-fold)")
    predict = actions.add_parser("predict", help="predicted latency of a network, per stage")
    predict.add_argument("config", help="network config YAML")
    predict.add_argument("--no-measure", action="store_true",
                         help="fail on missing entries instead of measuring them")
    check = actions.add_parser("check", help="predicted vs measured latency of random networks")
    _space_arguments(check, n=30)
    for q in (build, predict, check):
        _profile_arguments(q)


def _space_arguments(p: argparse.ArgumentParser, n: int) -> None:
    add_space(p)
    p.add_argument("-n", type=positive, default=n, help=f"random networks (default {n})")
    p.add_argument("--seed", type=seed, default=0, help="sampling seed (default 0)")


def _profile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency-table", metavar="PATH",
                   help="table file (default results/latency/<device>.csv)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    p.add_argument("--backend", default="torch", choices=LATENCY_BACKENDS,
                   help="what runs the networks: eager PyTorch (default) or ONNX Runtime "
                        "sessions of their ONNX export (the onnx extra; cpu, float32)")
    p.add_argument("--on", metavar="RESOURCE",
                   help="measure on the Ray node that advertises this custom resource (a target "
                        "device joined to the cluster at --address), not on this machine")
    p.add_argument("--address", metavar="HOST:PORT", help="the Ray cluster of --on")
    p.add_argument("--threads", type=positive, default=1, help="CPU threads (default 1)")
    p.add_argument("--batch", type=positive, default=1, help="batch size (default 1)")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    p.add_argument("--memory-format", default="contiguous",
                   help="contiguous (default) or channels_last")
    add_input_size(p)
    p.add_argument("--min-run-time", type=float, default=0.5,
                   help="seconds of timed runs per measurement (default 0.5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from nas import latency

    if not args.min_run_time > 0:
        raise latency.LatencyError(f"--min-run-time: must be positive, got {args.min_run_time}")
    profile = latency.Profile(args.device, args.threads, args.batch, args.dtype,
                              args.memory_format, args.backend, args.on)
    timing = latency.Timing(min_run_time=args.min_run_time)
    with _measuring_on(args):
        table = latency.Table(args.latency_table or profile.default_path(), profile)
        return ACTIONS[args.action](args, table, timing)


def _measuring_on(args: argparse.Namespace):
    """Joined to the cluster of the target node (``--on``), or nothing to do."""
    from contextlib import nullcontext

    from nas.latency.remote import connected

    return nullcontext() if args.on is None else connected(args.address, args.on)


def _build(args: argparse.Namespace, table, timing) -> int:
    from nas.latency import fill, placed_keys, warn_if_noisy
    from nas.latency.remote import identify

    configs = _sample(args)
    needed = {k for c in configs
              for k in placed_keys(c, table.profile, args.resolution, args.num_classes)}
    before = set(table.entries)
    start = time.perf_counter()
    count = 0
    for i, config in enumerate(configs, 1):
        count += fill(table, [config], timing, args.resolution, args.num_classes, args.sessions)
        if i % 20 == 0 and not args.json:
            print(f"  {i} networks, {count} units measured "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    seconds = time.perf_counter() - start
    spread = warn_if_noisy([e.probe_ms for k, e in table.entries.items() if k not in before],
                           "build")
    noise = table.session_noise()
    if args.json:
        print(json.dumps({"table": str(table.path), "needed": len(needed), "measured": count,
                          "sessions": args.sessions, "seconds": seconds, "entries": len(table),
                          "probe_spread": spread, "session_noise": noise,
                          "fingerprint": table.profile.fingerprint(),
                          "node_id": identify(table.profile).node_id if args.on else None}))
    else:
        each = f" ({args.sessions} sessions of each)" if args.sessions > 1 else ""
        print(f"{table.path}: measured {count} units{each} for the {len(needed)} entries "
              f"{len(configs)} networks need in {seconds:.0f} s (probe spread {spread:.0%}); "
              f"the table has {len(table)}"
              + ("" if noise is None else f"; one timing session strays by {noise:.1%}"))
    return 0


def _predict(args: argparse.Namespace, table, timing) -> int:
    from nas.commands.tables import table as text_table
    from nas.generators import load_network
    from nas.latency import predict

    net = load_network(args.config)
    prediction = predict(net, table, args.resolution, args.num_classes,
                         None if args.no_measure else timing)
    total = prediction.total_ms
    stages = prediction.by_stage()
    if args.json:
        print(json.dumps({"config": args.config, "table": str(table.path),
                          "predicted_ms": total, "probe_ms": prediction.probe_ms,
                          "stages": stages,
                          "units": [{"name": p.name, "key": e.key.signature,
                                     "ms": prediction.unit_ms(e)} for p, e in prediction.units]}))
        return 0
    profile = table.profile
    print(f"{args.config}: {total:.3f} ms predicted at {args.resolution}x{args.resolution}, "
          f"batch {profile.batch}, {profile.dtype}, {profile.memory_format}, at the table's "
          f"typical speed (probe {prediction.probe_ms:.3f} ms; {table.path})")
    described = {"stem": ("stem", net.stem.kind, 1, net.stem.width), "head": ("head", "", 1, "")}
    described |= {f"s{i}": (f"s{i}", s.block, s.depth, w)
                  for i, (s, w) in enumerate(zip(net.stages, net.widths()[1:]), 1)}
    rows = [(*described[name], f"{ms:.3f}", f"{ms / total:.1%}") for name, ms in stages.items()]
    print(text_table(("stage", "block", "depth", "width", "ms", "share"), rows))
    return 0


def _check(args: argparse.Namespace, table, timing) -> int:
    from nas.commands.tables import table as text_table
    from nas.latency import check

    result = check(_sample(args), table, timing, args.resolution, args.num_classes)
    if args.json:
        print(json.dumps({**result, "table": str(table.path)}))
        return 0
    rows = result["rows"]
    print(text_table(("net", "predicted ms", "measured ms", "error"),
                     [(i, f"{r['predicted_ms']:.3f}", f"{r['measured_ms']:.3f}",
                       f"{r['predicted_ms'] / r['measured_ms'] - 1:+.1%}")
                      for i, r in enumerate(rows, 1)]))
    print(f"{result['n']} networks: median |error| {result['median_abs_error']:.1%}, "
          f"within 5%: {result['within_5']:.0%}, within 10%: {result['within_10']:.0%}; "
          f"probe spread {result['probe_spread']:.0%}")
    return 0


def _sample(args: argparse.Namespace) -> list:
    """The networks of the space's first n feasible samples under the budget."""
    from nas.spaces import constraints_for, load_space

    space = load_space(args.space)
    constraints = constraints_for(space, args.budget, None, args.resolution, args.num_classes)
    return [s.network for s in space.sample(args.n, args.seed, constraints)]


ACTIONS = {"build": _build, "predict": _predict, "check": _check}
