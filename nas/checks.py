"""Checks shared by configs, generators and block families: each failure is one ConfigError line
that names the field at fault."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, get_type_hints

from nas.errors import ConfigError, excerpt

MAX_SEED = 2**31 - 1  # a run's sampler seeds count up from its seed, and NumPy's stop at 2**32


def require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")


def check_keys(where: str, data: Mapping[str, Any], known: set[str] | frozenset[str]) -> None:
    """Raise ConfigError naming the first key of ``data`` that is not ``known``."""
    if data.keys() <= known:
        return
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {excerpt(unknown[0])}; expected one of "
                          f"{', '.join(sorted(known))}")


_TYPE_CHECKS = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
                float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                bool: lambda v: isinstance(v, bool),
                str: lambda v: isinstance(v, str)}


def coerce(where: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the type ``hint`` (an int is a float too)."""
    if hint in _TYPE_CHECKS:
        if not _TYPE_CHECKS[hint](value):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {excerpt(value)}")
        return float(value) if hint is float else value
    return value


def check_types(where: str, cls: type, settings: dict[str, Any]) -> None:
    """Raise ConfigError if a setting named like a field of dataclass ``cls`` has the wrong type."""
    hints = type_hints(cls)
    for name, value in settings.items():
        if name in hints:
            coerce(f"{where}.{name}", hints[name], value)


@functools.cache
def field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)
