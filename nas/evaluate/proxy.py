"""Proxy accuracy: train a candidate briefly on a CIFAR-10 subset and score it on held-out images.

The proxy network is the candidate adapted to 32x32 inputs: its stem becomes the ``cifar`` stem
(one 3x3 stride-1 conv) of the same width and the classifier has 10 classes; the stages are
kept, so a four-stage ImageNet body maps 32x32 to 2x2. A width multiplier (default 0.25, with 4
epochs: of the trainings ``benchmarks/proxy_ground_truth.py`` measured, it ranked published
fully trained networks best) scales the stem width and every stage's size field (``width``,
DenseNet's ``growth``) to the nearest value for which it validates (ties go up) and every
later stage still can, so each family keeps its divisibility constraints (a ResNeXt bottleneck
stays a multiple of its group width, and one of a single group stays one group; an IGCV3
stage's groups divide its input width). The head is kept.

The recipe: residual branches start at zero (each block's ``zero_init_last``: deep bodies
diverge within a few steps of a short schedule otherwise), SGD with Nesterov momentum, a linear
warm-up then cosine decay to zero per step, gradient-norm clipping, label smoothing,
channels-last tensors, and batch-norm statistics recomputed on un-augmented training images
before evaluation. A run with the same seed and thread count gives the same accuracy on CPU.
``evaluate`` never raises for a failed training: a loss that becomes NaN or infinite, or any
exception, gives a result with status ``failed`` and the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
from torch import nn

from nas.config import Network
from nas.errors import ConfigError
from nas.evaluate.data import Cifar10, batches, stratified_split, to_tensor
from nas.evaluate.settings import NUM_CLASSES, ProxySettings
from nas.network import build, complexity


@dataclass
class ProxyResult:
    """Validation top-1 (percent) and loss, the per-step training loss and its sum over the
    last epoch (SoTL-E, Ru et al. 2021), and the costs."""

    status: str  # "ok" or "failed"
    reason: str = ""
    top1: float = float("nan")
    loss: float = float("nan")
    train_loss: list[float] = field(default_factory=list)
    sotl: float = float("nan")
    seconds: float = 0.0
    images_per_second: float = 0.0
    flops: int = 0  # of the proxy network at 32x32
    params: int = 0
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # trained, on CPU

    def to_dict(self) -> dict[str, Any]:
        """Everything but the weights."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "weights"}


def proxy_network(config: Network, width_mult: float = 1.0) -> Network:
    """The candidate adapted to CIFAR-10: cifar stem, stem and stages scaled by ``width_mult``.
    Each width goes to the value nearest its target (ties go up) for which the stage validates
    and every later stage still can (a stage's groups may need to divide its input width);
    ConfigError if no choice of widths validates."""
    @functools.cache
    def stages_from(i: int, w_in: int) -> tuple | None:
        if i == len(config.stages):
            return ()
        stage = config.stages[i]
        for width in _nearest(getattr(stage, stage.size), width_mult):
            candidate = stage.resized(width)
            try:
                candidate.check(w_in)
            except ConfigError:
                continue
            rest = stages_from(i + 1, candidate.out_width(w_in))
            if rest is not None:
                return (candidate, *rest)
        return None

    for stem_width in _nearest(config.stem.width, width_mult):
        stages = stages_from(0, stem_width)
        if stages is not None:
            stem = dataclasses.replace(config.stem, kind="cifar", width=stem_width)
            return dataclasses.replace(config, stem=stem, stages=stages).validate()
    raise ConfigError(f"no valid widths near {width_mult} times the network's for its proxy")


def _nearest(size: int, width_mult: float) -> list[int]:
    """The widths a scaled ``size`` may take, nearest ``size * width_mult`` first (ties go up);
    only ``size`` itself at width multiplier 1."""
    if width_mult == 1.0:
        return [size]
    target = max(1, round(size * width_mult))
    return [target + d for d in sorted(range(1 - target, 2 * max(target, size)),
                                       key=lambda d: (abs(d), -d))]


def evaluate(config: Network, data: Cifar10, settings: ProxySettings = ProxySettings(),
             seed: int = 0) -> ProxyResult:
    """Train the proxy of ``config`` and score it; failures come back as a failed result."""
    start = time.perf_counter()
    try:
        result = _evaluate(config, data, settings, seed)
    except Exception as e:  # any failure of one candidate is its result, not the search's
        result = ProxyResult("failed", f"{type(e).__name__}: {e}")
    result.seconds = time.perf_counter() - start
    return result


def _evaluate(config: Network, data: Cifar10, s: ProxySettings, seed: int) -> ProxyResult:
    torch.set_num_threads(s.threads or os.cpu_count() or 1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_idx, val_idx = stratified_split(data.train_labels, s.train_images, s.val_images,
                                          s.split_seed)
    x, y = to_tensor(data.train_images[train_idx]), torch.from_numpy(data.train_labels[train_idx])
    proxy = proxy_network(config, s.width_mult)
    counts = complexity(proxy, 32, NUM_CLASSES)
    torch.manual_seed(seed)
    model = build(proxy, NUM_CLASSES).to(device)
    zero_init_residual(model)
    if s.channels_last and channels_last_safe(model):
        model = model.to(memory_format=torch.channels_last)
    else:
        s = dataclasses.replace(s, channels_last=False)
    curve, seconds, failure = train(model, x, y, s, torch.Generator().manual_seed(seed))
    result = ProxyResult("failed" if failure else "ok", failure, train_loss=curve,
                         sotl=sum(curve[-(s.train_images // s.batch_size):]),
                         images_per_second=len(curve) * s.batch_size / seconds,
                         flops=counts.flops, params=counts.params)
    if not failure:
        recalibrate_bn(model, x, s.batch_size, s.bn_batches)
        val_x, val_y = to_tensor(data.train_images[val_idx]), data.train_labels[val_idx]
        result.top1, result.loss = score(model, val_x, torch.from_numpy(val_y))
        result.weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return result


def channels_last_safe(model: nn.Module) -> bool:
    """False for a network that torch 2.13's CPU kernels cannot train channels-last: the weight
    gradient of a dense strided 1x1 convolution with fewer than 8 input channels corrupts the
    heap there (found on this project's CI machine; only tiny test networks have one)."""
    return next(model.parameters()).is_cuda or not any(
        isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
        and m.groups == 1 and m.in_channels < 8 for m in model.modules())


def zero_init_residual(model: nn.Module) -> None:
    """Start every residual block as its shortcut (each block's ``zero_init_last``)."""
    for block in model.modules():
        if hasattr(block, "zero_init_last"):
            block.zero_init_last()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, s: ProxySettings,
          generator: torch.Generator) -> tuple[list[float], float, str]:
    """The training loop: per-step losses, seconds spent, and why it stopped early (or '')."""
    device = next(model.parameters()).device
    memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
    steps = s.epochs * (len(x) // s.batch_size)
    warmup = max(1, round(s.warmup * steps))
    optimizer = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=True,
                                weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i, steps, warmup))
    criterion = nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
    model.train()
    curve: list[float] = []
    start = time.perf_counter()
    for _ in range(s.epochs):
        for xb, yb in batches(x, y, s.batch_size, generator):
            xb = xb.to(device, memory_format=memory_format)
            loss = criterion(model(xb), yb.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if s.clip:
                nn.utils.clip_grad_norm_(model.parameters(), s.clip)
            optimizer.step()
            schedule.step()
            curve.append(loss.item())
            if not math.isfinite(curve[-1]):
                return curve, time.perf_counter() - start, \
                    f"training loss became {curve[-1]} at step {len(curve)}"
    return curve, time.perf_counter() - start, ""


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int, n_batches: int) -> None:
    """Replace batch-norm running statistics by exact averages over un-augmented batches."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or n_batches < 1:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    device = next(model.parameters()).device
    model.train()
    for xb, _ in islice(batches(x, x, batch_size), n_batches):
        model(xb.to(device))


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
          batch_size: int = 500) -> tuple[float, float]:
    """Top-1 accuracy in percent and mean cross-entropy."""
    device = next(model.parameters()).device
    model.eval()
    correct, loss = 0, 0.0
    for xb, yb in batches(x, y, batch_size):
        logits = model(xb.to(device))
        yb = yb.to(device)
        loss += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return 100.0 * correct / len(x), loss / len(x)
