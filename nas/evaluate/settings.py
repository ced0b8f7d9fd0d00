"""How a candidate is proxy-trained: one value, importable without torch, that ``nas train``,
``nas search`` and the run's record all read."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError

NUM_CLASSES = 10  # CIFAR-10's, which the proxy trains on


@dataclass(frozen=True)
class ProxySettings:
    """How a candidate is trained; the defaults take about 20 to 30 s for a 400MF network on
    this 2-core machine, two at a time (``benchmarks/proxy_ground_truth.py`` chose them: of
    the trainings it measured, they ranked fully trained networks best)."""

    epochs: int = 4
    train_images: int = 5000
    val_images: int = 5000
    batch_size: int = 128
    width_mult: float = 0.25
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.1  # fraction of the steps
    clip: float = 2.0  # largest gradient norm; 0: no clipping
    bn_batches: int = 8  # batches of training images that recompute batch-norm statistics
    threads: int = 0  # torch threads; 0: one per core
    split_seed: int = 0  # the fixed choice of training and validation images
    channels_last: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "train_images", "val_images", "batch_size", "width_mult", "lr"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name}: must be positive and finite, got "
                                  f"{getattr(self, name)}")
        for name in ("train_images", "val_images"):  # split evenly among the classes
            if getattr(self, name) < NUM_CLASSES:
                raise ConfigError(f"{name}: must be at least {NUM_CLASSES}, one per CIFAR-10 "
                                  f"class, got {getattr(self, name)}")
        if self.batch_size > self.train_images:
            raise ConfigError(f"batch_size: must be at most train_images ({self.train_images}), "
                              f"got {self.batch_size}")
        if self.threads < 0:
            raise ConfigError(f"threads: must be 0 (one per core) or more, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
