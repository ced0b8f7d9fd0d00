"""Command-line options that several commands share, declared once."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from nas.checks import MAX_SEED

RESOLUTION, NUM_CLASSES = 224, 1000  # the deployment network's, unless told otherwise


def positive(text: str) -> int:
    """An argparse type: a positive integer."""
    return _integer(text, 1, math.inf, "a positive integer")


def seed(text: str) -> int:
    """An argparse type: a seed, 0 to MAX_SEED."""
    return _integer(text, 0, MAX_SEED, f"an integer from 0 to {MAX_SEED}")


def _integer(text: str, low: int, high: float, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


PLOT_FORMATS = (".png", ".pdf", ".svg")


def plot_path(text: str) -> Path:
    """An argparse type: a file name for a plot, in a format its suffix names."""
    path = Path(text)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise argparse.ArgumentTypeError(f"a plot is written as {', '.join(PLOT_FORMATS)}; "
                                         f"got {text!r}")
    return path


def add_input_size(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    """``--resolution`` and ``--num-classes`` of the deployment network, the size its costs and
    budgets are counted at; ``defaults=False`` leaves them None when not given (a resume must
    tell what was)."""
    p.add_argument("--resolution", type=positive, default=RESOLUTION if defaults else None,
                   help=f"input size of the deployment network (default {RESOLUTION})")
    p.add_argument("--num-classes", type=positive, default=NUM_CLASSES if defaults else None,
                   help=f"classes of the deployment network (default {NUM_CLASSES})")


def add_space(p: argparse.ArgumentParser, budget_example: str = "400MF") -> None:
    """``--space`` (required) and ``--budget`` of the commands that draw networks of a space."""
    p.add_argument("--space", required=True, help="space name in spaces/ or a space YAML file")
    p.add_argument("--budget", help=f"FLOPs ceiling, e.g. {budget_example}")
