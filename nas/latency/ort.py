"""The ``onnxruntime`` latency backend: units and networks run as ONNX Runtime sessions.

A network runs as one session of its ONNX export (``nas.onnx_export``'s exporter and opset), fed
numpy arrays as a user's code feeds it. Its units are timed inside that session: ONNX Runtime's
profiler times every node of a run, the export names each node under its module's path, and a
unit's time in a run is the sum of its nodes', scaled so that the units add up to the same
session's time without the profiler. Units timed as sessions of their own instead (chained, even
with their buffers bound in ONNX Runtime's memory) summed to 2-26% more than the whole network
here: each session run carries costs that one run of the whole graph pays once. Needs the
``onnx`` extra.
"""

from __future__ import annotations

import functools
import io
import json
import statistics
import tempfile
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from nas.latency.profile import LatencyError
from nas.onnx_export import to_onnx

# A small network runs thousands of times in a timed half second; the profiler's trace of all
# of them is hundreds of MB to write and parse, and a thousand give each unit's median as well.
PROFILED_RUNS = 1000

if TYPE_CHECKING:
    from nas.latency.timing import Timing

Runner = Callable[[np.ndarray], np.ndarray]


def onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise LatencyError("the onnxruntime backend needs the onnx extra: "
                           "pip install -e '.[onnx]'") from None
    return onnxruntime


def session(model: bytes, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime session of the ONNX ``model`` on ``threads`` threads (one: the calling
    thread), profiling every node into files named ``profile_prefix...`` if given."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def export(module: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    to_onnx(module, example, buffer)
    return buffer.getvalue()


def network(module: nn.Module, x: torch.Tensor, threads: int) -> Runner:
    """The whole network as one session, run as a user runs it: numpy in, numpy out."""
    run = session(export(module, x), threads)
    return lambda a: run.run(None, {"input": a})[0]


def unit_samples(module: nn.Module, names: Sequence[str], x: torch.Tensor, threads: int,
                 clock: Callable[[], float], timing: Timing) -> list[list[float]]:
    """Seconds of each unit (named as in the module) in every profiled run of the network's
    session: each run's node times summed by unit (``attribute``), scaled so that the units'
    sum is the median time of the same session run without profiling. As many runs are
    profiled as were timed, up to ``PROFILED_RUNS``."""
    model, a = export(module, x), x.numpy()
    plain = session(model, threads)
    walls = []
    for _ in range(timing.warmup):
        plain.run(None, {"input": a})
    start = clock()
    while len(walls) < timing.min_repeats or clock() - start < timing.min_run_time:
        began = clock()
        plain.run(None, {"input": a})
        walls.append(clock() - began)
    with tempfile.TemporaryDirectory() as folder:
        profiled = session(model, threads, str(Path(folder) / "run"))
        for _ in range(timing.warmup + min(len(walls), PROFILED_RUNS)):
            profiled.run(None, {"input": a})
        events = json.loads(Path(profiled.end_profiling()).read_text())
    runs = attribute(events, names)[timing.warmup:]
    scale = statistics.median(walls) / statistics.median(sum(run) for run in runs)
    return [[run[i] * scale for run in runs] for i in range(len(names))]


def attribute(events: list[dict], names: Sequence[str]) -> list[list[float]]:
    """Per run of a session profile (``events``, ONNX Runtime's trace), the seconds of each
    unit: its nodes are named under its module path (``s1.b2`` -> ``/s1/b2/...``). The layout
    reorders ONNX Runtime inserts belong to the unit they feed (``ReorderInput``) or the one
    whose output they convert (``ReorderOutput`` and anything else unnamed)."""
    prefixes = ["/" + name.replace(".", "/") + "/" for name in names]

    @functools.cache
    def unit_of(node: str) -> int | None:
        return next((i for i, p in enumerate(prefixes) if node.startswith(p)), None)

    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e["name"] == "model_run")
    nodes = sorted((e["ts"], e["name"].removesuffix("_kernel_time"), e["dur"]) for e in events
                   if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"))
    starts = [n[0] for n in nodes]
    runs = []
    for begin, end in windows:  # a run's nodes: those starting within it, found by bisection
        times, last, waiting = [0.0] * len(names), 0, 0.0
        for _, name, micros in nodes[bisect_left(starts, begin):bisect_right(starts, end)]:
            unit = unit_of(name)
            if unit is None and name.startswith("ReorderInput"):
                waiting += micros  # for the next named node's unit
                continue
            last = last if unit is None else unit
            times[last] += (micros + waiting) / 1e6
            waiting = 0.0
        times[last] += waiting / 1e6
        runs.append(times)
    return runs


def version() -> str:
    return onnxruntime().__version__
