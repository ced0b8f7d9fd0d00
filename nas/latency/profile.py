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
