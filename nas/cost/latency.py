"""Latency lookup tables: a network's latency predicted as the sum of its units' measured latencies.

Units
    A unit is one block of :func:`nas.network.layout` (the stem, every block, the head), keyed
    by a readable signature of its constructor arguments and input size, e.g.
    ``ResNeXtBlock(w_in=32,w_out=64,stride=2,bot_mul=1.0,group_w=16,se=0.0,shortcut=proj)@56x56``,
    plus the batch, dtype and memory format it ran with. Whole blocks, not single ops, because
    the framework runs a block as one call: its Python overhead and the fusion of its ops are in
    the entry.
Measurement
    A unit is timed where it really runs: inside its network, which runs forward pass after pass
    (``eval()``, ``torch.inference_mode()``, the profile's thread count) after warm-up passes, with
    a clock read around every unit. So each entry carries the cache state a network leaves it
    (weights last read one pass ago, the input just written by the unit before, buffers the
    allocator recycled), which timing a unit alone in a loop misses: blocks timed alone ran 5-20%
    faster than inside networks here, most of all those with large activations. Missing entries are
    measured in the network that needs them; entries are shared by every network with the same unit.
    Each network is measured in a process of its own, forked from a server that has imported torch
    and run nothing, as a deployed network runs in a process that serves only it: a process that has
    built and timed 20 networks ran later ones 5-20% slower here, and neither ``gc.collect()`` nor
    ``malloc_trim`` undid it. Each entry keeps the mean, median and interquartile range of its
    calls; a measurement whose IQR exceeds ``max_noise`` of the median is repeated (up to
    ``retries`` times) and the quietest is kept, its IQR recorded as the entry's noise. With one CPU
    thread the clock is the thread's CPU time, which equals wall time on an idle core but leaves out
    the time other processes hold it (their cache and memory traffic still counts); with more
    threads, or on CUDA, it is wall time (synchronized on CUDA).
Speed
    A shared machine's speed drifts by 5-10% within minutes (other tenants' load on its caches
    and memory), so an entry measured a while ago is off by that much today. Each entry keeps
    the time of a small fixed probe network measured just before it in the same process; a
    prediction scales every entry by ``probe_ms / entry.probe_ms``, to the table's typical
    speed (the median probe of its entries) by default, or to the speed a probe shows now.
    The correction assumes every unit slows down as the probe does, which held for the drift
    of a quiet shared machine; under heavy load units slow down unevenly (the memory-bound
    ones more), so ``probe_spread`` is reported by every build and check, and a spread above
    ``NOISY_SPREAD`` (15%, 1.5 times that drift) is warned about as more than it corrects.
Prediction
    The sum of the entries' means: the mean of a network's latency is the sum of its units'
    means, while per-call times are skewed to the right, so medians add up to less than the
    network's median (up to 6% less here). ``measure_network`` times the whole network the way a
    user would (``torch.utils.benchmark.Timer`` on ``net(x)``), the truth ``nas latency check``
    compares against.
Allocator
    glibc returns freed heap memory to the system and maps large blocks afresh, so a forward
    pass can page-fault its activations in again on every call, at a cost that depends on the
    whole network's memory peak rather than on its units. Measuring processes keep the heap
    instead (``mallopt``: no trimming, mapping only above 32 MiB), as a long-running server's
    allocator does after warm-up, and so do tcmalloc and jemalloc.
Table file
    One CSV file per device profile (default ``results/latency/<device>.csv``): ``#`` lines
    naming the device and its fingerprint, the column line, then one row per entry. Processes
    append whole rows under an exclusive ``flock`` and never rewrite the file, so concurrent
    writers lose nothing; when a key appears twice the later row wins. Malformed rows are
    skipped with a warning naming their lines; the valid rows are kept.
"""

from __future__ import annotations

import csv
import ctypes
import fcntl
import functools
import inspect
import io
import math
import multiprocessing
import os
import platform
import re
import signal
import statistics
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.timer import timer as default_timer

from nas.blocks.base import Unit
from nas.config import Network
from nas.cost.complexity import Cx
from nas.errors import NasError
from nas.network import build, check_fits, layout

COLUMNS = ("key", "batch", "dtype", "memory_format", "mean_ms", "median_ms", "iqr_ms", "repeats",
           "probe_ms", "measured_at")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
SIGNATURE = re.compile(r"^\w+\(.*\)@\d+x\d+$")
NOISY_SPREAD = 0.15  # a probe spread beyond which the speed correction does not hold


class LatencyError(NasError):
    """A latency table that cannot be read or used, or a missing entry that may not be measured."""


class TableWarning(UserWarning):
    """A table measured on another device, or with rows that had to be skipped."""


class SpeedWarning(UserWarning):
    """The machine's speed varied more than the probe correction handles."""


@dataclass(frozen=True)
class Profile:
    """Where and how networks run: the device, its thread count, and the run's batch, dtype and
    memory format. The device part names the table; the run part is in every key."""

    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    dtype: str = "float32"
    memory_format: str = "contiguous"

    def __post_init__(self):
        checks = (
            (self.device in ("cpu", "cuda"), f"device must be cpu or cuda, not {self.device}"),
            (self.threads >= 1, f"threads must be positive, not {self.threads}"),
            (self.batch >= 1, f"batch must be positive, not {self.batch}"),
            (self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}"),
            (self.memory_format in MEMORY_FORMATS,
             f"memory format must be one of {', '.join(MEMORY_FORMATS)}"))
        for ok, message in checks:
            if not ok:
                raise LatencyError(message)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise LatencyError("device cuda: torch sees no GPU on this machine")

    def hardware(self) -> str:
        return torch.cuda.get_device_name() if self.device == "cuda" else cpu_model()

    def fingerprint(self) -> str:
        """What must match for a table's entries to hold: hardware, torch version, threads."""
        return f"{self.device}={self.hardware()}; torch={torch.__version__}; threads={self.threads}"

    def name(self) -> str:
        """Default table name, e.g. ``cpu-amd-epyc-t1``."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.hardware().lower()).strip("-")
        return f"{self.device}-{slug}-t{self.threads}"

    def clock(self) -> Callable[[], float]:
        """The thread's CPU time for one CPU thread, wall time for more, and on CUDA wall time
        once the GPU has finished the work queued so far."""
        if self.device == "cuda":
            return synchronized_clock
        return time.thread_time if self.threads == 1 else default_timer

    def default_path(self) -> Path:
        return Path("results") / "latency" / f"{self.name()}.csv"


def synchronized_clock() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Key:
    signature: str
    batch: int
    dtype: str
    memory_format: str


@dataclass(frozen=True)
class Entry:
    key: Key
    mean_ms: float
    median_ms: float
    iqr_ms: float
    repeats: int
    probe_ms: float  # the probe network's time when and where the entry was measured
    measured_at: str

    def row(self) -> tuple:
        k = self.key
        return (k.signature, k.batch, k.dtype, k.memory_format, f"{self.mean_ms:.6g}",
                f"{self.median_ms:.6g}", f"{self.iqr_ms:.3g}", self.repeats,
                f"{self.probe_ms:.6g}", self.measured_at)


@dataclass(frozen=True)
class Placed:
    """A unit of a network with the input it gets there (channels, height, width)."""

    name: str
    unit: Unit
    shape: tuple[int, int, int]

    def signature(self) -> str:
        """Every argument of the unit's constructor, defaults applied, but keyword-only options
        at their default (so tables stay valid as families gain options)."""
        parameters = inspect.signature(self.unit.cls).parameters
        bound = inspect.signature(self.unit.cls).bind(**self.unit.kwargs)
        bound.apply_defaults()
        args = ",".join(f"{k}={v}" for k, v in bound.arguments.items()
                        if not (parameters[k].kind is inspect.Parameter.KEYWORD_ONLY
                                and v == parameters[k].default))
        return f"{self.unit.cls.__name__}({args})@{self.shape[1]}x{self.shape[2]}"

    def key(self, profile: Profile) -> Key:
        return Key(self.signature(), profile.batch, profile.dtype, profile.memory_format)


def placed_units(config: Network, resolution: int = 224, num_classes: int = 1000) -> list[Placed]:
    """The units of a network in order, each with its input size."""
    cx = Cx(resolution, resolution)
    placed = []
    for name, unit in layout(config, num_classes):
        placed.append(Placed(name, unit, (unit.kwargs.get("w_in", 3), cx.h, cx.w)))
        unit.complexity(cx)
    return placed


class Table:
    """The entries of one device profile, read from and appended to its CSV file."""

    def __init__(self, path: str | Path, profile: Profile):
        self.path = Path(path)
        self.profile = profile
        self.entries: dict[Key, Entry] = {}
        self._offset = 0  # bytes of the file read so far
        self._lines = 0
        self.measured_on: str | None = None  # the file's fingerprint, once read
        self.refresh()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: Key) -> Entry | None:
        return self.entries.get(key)

    def typical_probe_ms(self) -> float:
        """The median probe time of the entries measured with this table's profile: the speed
        predictions are given at unless told otherwise."""
        p = self.profile
        probes = [e.probe_ms for k, e in self.entries.items()
                  if (k.batch, k.dtype, k.memory_format) == (p.batch, p.dtype, p.memory_format)]
        if not probes:
            raise LatencyError(f"{self.path}: no entries for batch {p.batch}, {p.dtype}, "
                               f"{p.memory_format}")
        return statistics.median(probes)

    def refresh(self) -> None:
        """Read the rows other processes appended since the last read."""
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]  # a torn last line waits for its end
        lines = complete.decode("utf-8", errors="replace").splitlines()
        if self._offset == 0 and lines:
            lines = self._read_header(lines)
        self._offset += len(complete)
        self._read_rows(lines)
        self._lines += len(lines)

    def _read_header(self, lines: list[str]) -> list[str]:
        meta = {}
        while lines and lines[0].startswith("#"):
            name, _, value = lines.pop(0)[1:].partition(":")
            meta[name.strip()] = value.strip()
            self._lines += 1
        if not lines or lines[0] != ",".join(COLUMNS):
            raise LatencyError(f"{self.path}: not a latency table: expected the column line "
                               f"'{','.join(COLUMNS)}' after its '#' lines")
        self._lines += 1
        fingerprint = self.measured_on = meta.get("fingerprint", "an unknown device")
        if fingerprint != self.profile.fingerprint():
            warnings.warn(f"{self.path} was measured on '{fingerprint}', this is "
                          f"'{self.profile.fingerprint()}': its entries may not hold here",
                          TableWarning, stacklevel=3)
        return lines[1:]

    def _read_rows(self, lines: list[str]) -> None:
        bad = []
        for i, line in enumerate(lines, self._lines + 1):
            try:
                entry = parse_row(line)
            except ValueError:
                bad.append(i)
                continue
            self.entries[entry.key] = entry
        if bad:
            shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            warnings.warn(f"{self.path}: skipped {len(bad)} malformed row(s) at line(s) {shown}; "
                          f"the {len(self.entries)} valid entries are used", TableWarning,
                          stacklevel=3)

    def add(self, entries: Iterable[Entry]) -> None:
        """Append entries to the file (creating it with its header) and to this table; never
        to a table measured on another device, whose entries they would mix with."""
        entries = list(entries)
        if self.measured_on not in (None, self.profile.fingerprint()):
            raise LatencyError(f"{self.path} was measured on '{self.measured_on}': entries "
                               f"measured on '{self.profile.fingerprint()}' do not belong in it; "
                               f"use a table of this device (--latency-table)")
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(e.row() for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                f.write(self._header().encode())
            else:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # end a row torn by a crashed writer: it reads as malformed
            f.write(out.getvalue().encode())
        self.refresh()

    def _header(self) -> str:
        return (f"# nas latency table: per-unit latency in milliseconds (nas/cost/latency.py)\n"
                f"# device: {self.profile.name()}\n"
                f"# fingerprint: {self.profile.fingerprint()}\n" + ",".join(COLUMNS) + "\n")


def parse_row(line: str) -> Entry:
    """An entry from one CSV line; ValueError if it is not a well-formed row."""
    fields_ = next(csv.reader([line]), [])
    if len(fields_) != len(COLUMNS):
        raise ValueError(line)
    signature, batch, dtype, memory_format, mean, median, iqr, repeats, probe, at = fields_
    entry = Entry(Key(signature, int(batch), dtype, memory_format), float(mean), float(median),
                  float(iqr), int(repeats), float(probe), at)
    times = (entry.mean_ms, entry.median_ms, entry.probe_ms)
    valid = (SIGNATURE.match(signature) and entry.key.batch >= 1 and dtype in DTYPES
             and memory_format in MEMORY_FORMATS and all(0 < x < math.inf for x in times)
             and 0 <= entry.iqr_ms < math.inf and entry.repeats >= 1 and at)
    if not valid:
        raise ValueError(line)
    return entry


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
    ``wanted`` (default: all) is noisy."""
    placed = placed_units(config, resolution, num_classes)
    net = prepare(build(config, num_classes), profile)
    modules = [net.get_submodule(p.name) for p in placed]
    x = example_input((3, resolution, resolution), profile)
    keys = [p.key(profile) for p in placed]
    wanted = set(keys if wanted is None else wanted)
    best: dict[Key, Timed] = {}
    speed = probe(profile, timing)
    with measuring(profile):
        for _ in range(1 + timing.retries):
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
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return {k: Entry(k, t.mean_ms, t.median_ms, t.iqr_ms, t.repeats, speed, now)
            for k, t in best.items()}


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
    net = prepare(build(config, num_classes), profile)
    x = example_input((3, resolution, resolution), profile)
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


PROBE = Network.from_dict({  # a little of every kind of op the families run
    "stem": {"kind": "simple", "width": 16},
    "stages": [{"block": "resnext", "depth": 2, "width": 32, "group_w": 8},
               {"block": "mobilenetv2", "depth": 2, "width": 48},
               {"block": "shufflenetv2", "depth": 2, "width": 96}]})
PROBE_RESOLUTION = 112


def probe(profile: Profile, timing: Timing) -> float:
    """Median milliseconds of the probe network run now in this process: the machine's speed."""
    quick = replace(timing, min_run_time=min(timing.min_run_time, 0.2))
    return measure_network(PROBE, profile, quick, PROBE_RESOLUTION, 10).median_ms


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


def in_own_process(timing: Timing, function: Callable, *args):
    """``function(*args)``, in a process forked for it alone when ``timing.fresh_process``."""
    if not timing.fresh_process:
        return function(*args)
    return _fresh_processes().submit(function, *args).result()


@functools.cache
def _fresh_processes() -> ProcessPoolExecutor:
    """A new process per task, forked from a server that imported torch and nothing else ran.
    The server and its processes die with their parents: after a ``kill -9`` the idle process
    the pool keeps ready would otherwise wait forever, and keep the server alive."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nas.cost.forkserver"])
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


def fill(table: Table, configs: Iterable[Network], timing: Timing, resolution: int = 224,
         num_classes: int = 1000) -> int:
    """Measure and save the entries the table lacks for these networks; returns how many."""
    added = 0
    for config in configs:
        check_fits(config, num_classes, resolution, table.profile.batch)
        keys = list(dict.fromkeys(p.key(table.profile)
                                  for p in placed_units(config, resolution, num_classes)))
        if any(table.get(k) is None for k in keys):
            table.refresh()  # another process may have measured them meanwhile
        missing = [k for k in keys if table.get(k) is None]
        if missing:
            entries = in_own_process(timing, measure_units, config, table.profile, timing,
                                     resolution, num_classes, missing)
            table.add(entries[k] for k in missing)
            added += len(missing)
    return added


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency: the entry of every unit, in network order, each scaled
    from the speed it was measured at (its ``probe_ms``) to the speed ``probe_ms``."""

    units: tuple[tuple[Placed, Entry], ...]
    probe_ms: float

    def unit_ms(self, entry: Entry) -> float:
        return entry.mean_ms * self.probe_ms / entry.probe_ms

    @property
    def total_ms(self) -> float:
        return sum(self.unit_ms(entry) for _, entry in self.units)

    def by_stage(self) -> dict[str, float]:
        """Milliseconds of ``stem``, ``s1`` ... and ``head``."""
        parts: dict[str, float] = {}
        for placed, entry in self.units:
            stage = placed.name.split(".")[0]
            parts[stage] = parts.get(stage, 0.0) + self.unit_ms(entry)
        return parts


def predict(config: Network, table: Table, resolution: int = 224, num_classes: int = 1000,
            timing: Timing | None = None, probe_ms: float | None = None) -> Prediction:
    """Sum of the table's entries for the network at the speed ``probe_ms`` (default: the
    table's typical speed); missing entries are measured and saved with ``timing``, and
    without it raise LatencyError."""
    if timing is not None:
        fill(table, [config], timing, resolution, num_classes)
    placed = placed_units(config, resolution, num_classes)
    missing = [p for p in placed if table.get(p.key(table.profile)) is None]
    if missing:
        raise LatencyError(f"{table.path}: {len(missing)} unit(s) not measured, first "
                           f"{missing[0].key(table.profile).signature}")
    return Prediction(tuple((p, table.get(p.key(table.profile))) for p in placed),
                      probe_ms or table.typical_probe_ms())


def check(configs: Iterable[Network], table: Table, timing: Timing, resolution: int = 224,
          num_classes: int = 1000) -> dict:
    """Predicted against measured end-to-end latency of networks, each predicted at the speed
    the probe shows around its measurement: ``n``, the median absolute relative error, the
    shares within 5% and 10%, the mean share of units whose entries were in the table before
    (``reused``; the rest were measured in the network itself), the probes' ``probe_spread``
    (warned about when too wide), and one row per network."""
    end_to_end = replace(timing, min_run_time=2 * timing.min_run_time)  # whole networks
    rows = []
    for config in configs:
        keys = [p.key(table.profile) for p in placed_units(config, resolution, num_classes)]
        reused = sum(table.get(k) is not None for k in keys) / len(keys)
        fill(table, [config], timing, resolution, num_classes)
        measured, speed = in_own_process(timing, network_at_speed, config, table.profile,
                                         end_to_end, resolution, num_classes)
        prediction = predict(config, table, resolution, num_classes, probe_ms=speed)
        rows.append({"predicted_ms": prediction.total_ms, "measured_ms": measured.median_ms,
                     "measured_iqr_ms": measured.iqr_ms, "probe_ms": speed,
                     "predicted_typical_ms": replace(prediction,
                                                     probe_ms=table.typical_probe_ms()).total_ms,
                     "reused": reused, "config": config.to_dict()})
    errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in rows]
    spread = warn_if_noisy([r["probe_ms"] for r in rows], "check")
    return {"n": len(rows), "median_abs_error": statistics.median(errors),
            "probe_spread": spread,
            "within_5": sum(e <= 0.05 for e in errors) / len(rows),
            "within_10": sum(e <= 0.10 for e in errors) / len(rows),
            "reused": statistics.fmean(r["reused"] for r in rows), "rows": rows}
