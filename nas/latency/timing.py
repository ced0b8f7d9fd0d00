"""Timing units inside their network, in a fresh process per network, corrected by a speed
probe; and timing whole networks, the truth predictions are checked against."""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import platform
import signal
import statistics
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import torch
from torch import nn
from torch.utils.benchmark import Timer

from nas.config import Network
from nas.latency.profile import DTYPES, MEMORY_FORMATS, LatencyError, Profile, SpeedWarning
from nas.latency.table import Entry, Key, placed_units
from nas.network import build

NOISY_SPREAD = 0.15  # a probe spread beyond which the speed correction does not hold


@dataclass(frozen=True)
class Timing:
    """How long and how carefully to measure."""

    min_run_time: float = 0.5  # seconds of timed passes (or blocks) per attempt
    min_repeats: int = 20  # passes through a network at the least
    warmup: int = 3
    max_noise: float = 0.1  # measure again while IQR / median exceeds this
    retries: int = 3
    fresh_process: bool = True  # measure each network in a process of its own


@dataclass(frozen=True)
class Timed:
    mean_ms: float
    median_ms: float
    iqr_ms: float
    repeats: int

    @property
    def noise(self) -> float:
        return self.iqr_ms / self.median_ms


def measure_units(config: Network, profile: Profile, timing: Timing, resolution: int = 224,
                  num_classes: int = 1000, wanted: Iterable[Key] | None = None
                  ) -> dict[Key, Entry]:
    """An entry for every distinct unit of the network, each timed inside the running network;
    the samples of identical units are pooled. Passes are repeated while an entry of
    ``wanted`` (default: all) is noisy. The entries' speed is the probe's mean before and
    after: one probe alone varies as much as the units it corrects."""
    placed = placed_units(config, resolution, num_classes)
    net = prepare(build(config, num_classes), profile)
    modules = [net.get_submodule(p.name) for p in placed]
    x = example_input((3, resolution, resolution), profile)
    keys = [p.key(profile) for p in placed]
    wanted = set(keys if wanted is None else wanted)
    best: dict[Key, Timed] = {}
    before = probe(profile, timing)
    with measuring(profile):
        for _ in range(1 + timing.retries):
            if profile.backend == "onnxruntime":  # nodes timed by the runtime's profiler
                from nas.latency import ort

                samples = ort.unit_samples(net, [p.name for p in placed], x, profile.threads,
                                           profile.clock(), timing)
            else:
                samples = _time_passes(modules, x, profile.clock(), timing)
            pooled: dict[Key, list[float]] = {}
            for key, times in zip(keys, samples):
                pooled.setdefault(key, []).extend(times)
            for key, times in pooled.items():
                timed = summarize(times)
                if key not in best or timed.noise < best[key].noise:
                    best[key] = timed
            if all(best[k].noise <= timing.max_noise for k in wanted):
                break
    speed = (before + probe(profile, timing)) / 2  # as around a whole network's measurement
    now = datetime.now(UTC).isoformat()  # names the session: to the microsecond, so that
    # processes filling one table at once keep theirs apart (Table.session_noise)
    return {k: Entry(k, t.mean_ms, t.median_ms, t.iqr_ms, t.repeats, speed, now)
            for k, t in best.items()}


def runnable(net: nn.Module, x: torch.Tensor, profile: Profile) -> tuple[Callable, object]:
    """The network as the profile's backend runs it, and the input it takes: the module and
    ``x`` for torch; for onnxruntime a session of its export fed a numpy array."""
    if profile.backend == "onnxruntime":
        from nas.latency import ort

        return ort.network(net, x, profile.threads), x.numpy()
    return net, x


def _time_passes(modules: list[nn.Module], x: torch.Tensor, clock: Callable[[], float],
                 timing: Timing) -> list[list[float]]:
    """Per-unit times of forward passes after warm-up, for min_run_time and min_repeats."""
    for _ in range(timing.warmup):
        _forward(modules, x, clock, None)
    samples: list[list[float]] = [[] for _ in modules]
    start = clock()
    while len(samples[0]) < timing.min_repeats or clock() - start < timing.min_run_time:
        _forward(modules, x, clock, samples)
    return samples


def _forward(modules: list[nn.Module], x: torch.Tensor, clock: Callable[[], float],
             samples: list[list[float]] | None) -> None:
    for i, module in enumerate(modules):
        start = clock()
        x = module(x)
        if samples is not None:
            samples[i].append(clock() - start)


def summarize(seconds: list[float]) -> Timed:
    q1, median, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else seconds * 3
    return Timed(statistics.fmean(seconds) * 1e3, median * 1e3, (q3 - q1) * 1e3, len(seconds))


def measure_network(config: Network, profile: Profile, timing: Timing, resolution: int = 224,
                    num_classes: int = 1000) -> Timed:
    """End-to-end latency of the built network run repeatedly on one input, as a user would
    time it: Timer blocks, measured again while noisy."""
    net, x = runnable(prepare(build(config, num_classes), profile),
                      example_input((3, resolution, resolution), profile), profile)
    timer = Timer("net(x)", globals={"net": net, "x": x}, timer=profile.clock(),
                  num_threads=profile.threads)
    best = None
    with measuring(profile):
        for _ in range(1 + timing.retries):
            timer.timeit(timing.warmup)
            timed = summarize(timer.blocked_autorange(min_run_time=timing.min_run_time).times)
            best = timed if best is None or timed.noise < best.noise else best
            if best.noise <= timing.max_noise:
                break
    return best


SPEED_PROBE = Network.from_dict({  # a little of every kind of op the families run
    "stem": {"kind": "simple", "width": 16},
    "stages": [{"block": "resnext", "depth": 2, "width": 32, "group_w": 8},
               {"block": "mobilenetv2", "depth": 2, "width": 48},
               {"block": "shufflenetv2", "depth": 2, "width": 96}]})
PROBE_RESOLUTION = 112


def probe(profile: Profile, timing: Timing) -> float:
    """Median milliseconds of the probe network run now in this process: the machine's speed."""
    quick = replace(timing, min_run_time=min(timing.min_run_time, 0.2))
    return measure_network(SPEED_PROBE, profile, quick, PROBE_RESOLUTION, 10).median_ms


def probe_spread(probes: list[float]) -> float:
    """How much the machine's speed varied across probe times: their 10th-to-90th percentile
    range over their median (0 for fewer than two)."""
    if len(probes) < 2:
        return 0.0
    deciles = statistics.quantiles(probes, n=10, method="inclusive")
    return (deciles[-1] - deciles[0]) / statistics.median(probes)


def warn_if_noisy(probes: list[float], what: str) -> float:
    """The probes' spread, with a SpeedWarning when it is beyond NOISY_SPREAD."""
    spread = probe_spread(probes)
    if spread > NOISY_SPREAD:
        warnings.warn(f"the machine's speed varied by {spread:.0%} during this {what} (probe "
                      f"{min(probes):.3g}-{max(probes):.3g} ms), more than the "
                      f"{NOISY_SPREAD:.0%} the probe correction handles: its latencies may be "
                      "off by as much; measure again on a quieter machine", SpeedWarning,
                      stacklevel=2)
    return spread


def network_at_speed(config: Network, profile: Profile, timing: Timing, resolution: int = 224,
                     num_classes: int = 1000) -> tuple[Timed, float]:
    """End-to-end latency of the network and the probe's time around it (mean of before and
    after)."""
    before = probe(profile, timing)
    timed = measure_network(config, profile, timing, resolution, num_classes)
    return timed, (before + probe(profile, timing)) / 2


class MeasurementDied(LatencyError):
    """The process measuring a network ended before it answered (killed, or out of memory)."""


def in_own_process(timing: Timing, function: Callable, *args):
    """``function(*args)``, in a process forked for it alone when ``timing.fresh_process``;
    MeasurementDied if that process dies (the next call forks from a new server)."""
    if not timing.fresh_process:
        return function(*args)
    try:
        return _fresh_processes().submit(function, *args).result()
    except BrokenProcessPool:
        _fresh_processes().shutdown(wait=False)
        _fresh_processes.cache_clear()
        raise MeasurementDied("the process measuring latency ended abruptly (killed, or out "
                              "of memory)") from None


@functools.cache
def _fresh_processes() -> ProcessPoolExecutor:
    """A new process per task, forked from a server that imported torch and nothing else ran.
    The server and its processes die with their parents: after a ``kill -9`` the idle process
    the pool keeps ready would otherwise wait forever, and keep the server alive."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nas.latency.forkserver"])
    return ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1,
                               initializer=die_with_parent)


def die_with_parent() -> None:
    """Have Linux kill this process when its parent process ends; elsewhere a no-op."""
    if platform.system() == "Linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def prepare(module: nn.Module, profile: Profile) -> nn.Module:
    return module.eval().to(profile.device, DTYPES[profile.dtype],
                            memory_format=MEMORY_FORMATS[profile.memory_format])


def example_input(shape: tuple[int, int, int], profile: Profile) -> torch.Tensor:
    x = torch.randn(profile.batch, *shape, device=profile.device, dtype=DTYPES[profile.dtype])
    return x.contiguous(memory_format=MEMORY_FORMATS[profile.memory_format])


@contextmanager
def measuring(profile: Profile):
    """Inference mode with the profile's threads and a kept heap."""
    keep_heap()
    threads = torch.get_num_threads()
    torch.set_num_threads(profile.threads)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def keep_heap() -> None:
    """Keep freed memory in glibc's heap (see the module docstring); elsewhere a no-op."""
    if platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
