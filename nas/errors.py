"""Errors the user can fix; the command line prints them as one line and exits non-zero."""

from __future__ import annotations

import reprlib
from typing import Any

EXCERPT = reprlib.Repr()
EXCERPT.maxlevel, EXCERPT.maxdict, EXCERPT.maxlist, EXCERPT.maxtuple = 2, 4, 4, 4
EXCERPT.maxstring = EXCERPT.maxother = EXCERPT.maxlong = 60


class NasError(Exception):
    """Base of every error caused by input: its message is complete and fit to print."""


class ConfigError(NasError, ValueError):
    """An invalid network config, design space or budget; the message names the field."""


def excerpt(value: Any, limit: int = 80) -> str:
    """A value quoted for an error message: its repr, bounded in depth and cut to ``limit``
    characters, never built whole (a value from hostile input may be huge)."""
    text = EXCERPT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def interrupt_on_signal(signum, frame) -> None:
    """A signal handler that stops the program as Ctrl-C does (SIGTERM's, in ``nas``)."""
    raise KeyboardInterrupt
