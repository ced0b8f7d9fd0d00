"""Where and how networks run (device, threads, batch, dtype, memory format), the clock that
times them, and the errors and warnings of latency tables."""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.benchmark.utils.timer import timer as default_timer

from nas.errors import NasError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
BACKENDS = ("torch", "onnxruntime")  # what runs the networks (nas.latency.timing.runnable)


class LatencyError(NasError):
    """A latency table that cannot be read or used, or a missing entry that may not be measured."""


class TableWarning(UserWarning):
    """A table measured on another device, or with rows that had to be skipped."""


class OtherDeviceWarning(TableWarning):
    """A table measured on another device than the profile's."""


class SpeedWarning(UserWarning):
    """The machine's speed varied more than the probe correction handles."""


@dataclass(frozen=True)
class Profile:
    """Where and how networks run: the device, its thread count, the backend that runs them
    (eager PyTorch, or ONNX Runtime sessions of their ONNX export), and the run's batch, dtype
    and memory format. The device and backend part names the table; the run part is in every
    key."""

    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    dtype: str = "float32"
    memory_format: str = "contiguous"
    backend: str = "torch"
    node: str | None = None  # the Ray resource of the node that runs them (nas.latency.remote)

    def __post_init__(self):
        checks = (
            (self.device in ("cpu", "cuda"), f"device must be cpu or cuda, not {self.device}"),
            (self.threads >= 1, f"threads must be positive, not {self.threads}"),
            (self.batch >= 1, f"batch must be positive, not {self.batch}"),
            (self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}"),
            (self.memory_format in MEMORY_FORMATS,
             f"memory format must be one of {', '.join(MEMORY_FORMATS)}"),
            (self.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}"),
            (self.backend == "torch" or (self.device, self.dtype, self.memory_format)
             == ("cpu", "float32", "contiguous"),
             "the onnxruntime backend runs float32, contiguous, on the cpu device only"))
        for ok, message in checks:
            if not ok:
                raise LatencyError(message)
        if self.node is not None:
            return  # what the node has is checked there, by the first measurement
        if self.backend == "onnxruntime":
            from nas.latency.ort import onnxruntime

            onnxruntime()  # LatencyError naming the extra to install, if missing
        if self.device == "cuda" and not torch.cuda.is_available():
            raise LatencyError("device cuda: torch sees no GPU on this machine")

    def hardware(self) -> str:
        return torch.cuda.get_device_name() if self.device == "cuda" else cpu_model()

    def fingerprint(self) -> str:
        """What must match for a table's entries to hold: hardware, the backend's version,
        threads, and the host of a remote node."""
        if self.node is not None:
            from nas.latency.remote import identify

            node = identify(self)
            return f"{node.fingerprint}; host={node.hostname}"
        if self.backend == "onnxruntime":
            from nas.latency.ort import version

            runtime = f"onnxruntime={version()}"
        else:
            runtime = f"torch={torch.__version__}"
        return f"{self.device}={self.hardware()}; {runtime}; threads={self.threads}"

    def name(self) -> str:
        """Default table name, e.g. ``cpu-amd-epyc-t1`` (``cpu-amd-epyc-ort-t1`` for
        onnxruntime; ``<host>-cpu-...`` on a remote node)."""
        if self.node is not None:
            from nas.latency.remote import identify

            node = identify(self)
            return f"{node.hostname}-{node.name}"
        slug = re.sub(r"[^a-z0-9]+", "-", self.hardware().lower()).strip("-")
        backend = "-ort" if self.backend == "onnxruntime" else ""
        return f"{self.device}-{slug}{backend}-t{self.threads}"

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
