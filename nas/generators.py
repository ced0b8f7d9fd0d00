"""Network generators: pure functions from a few parameter values to a :class:`Network`.

``regnet`` is the quantized linear rule of Radosavovic et al. (2020), computed exactly as pycls
does; ``anynet`` takes every stage's settings freely. Both work for every block family: a
generated stage width becomes the family's size field, through the family's ``generated``
(which for ResNeXt is pycls's compatibility step), and the family's own parameters pass
through unchanged.

The generators take values of the right types (a space's draws are); :func:`from_spec` and
:func:`load_network`, the entry points for user files, check types first.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from nas.blocks import DEFAULT_FAMILY, FAMILIES, Stage
from nas.checks import check_keys, check_types, field_names, require
from nas.config import Head, Network, Stem
from nas.errors import ConfigError, excerpt
from nas.yamlfile import load_yaml, parse_yaml

QUANTUM = 8  # RegNet widths are multiples of 8


def regnet_widths(d, w0, wa, wm) -> np.ndarray:
    """Per-block widths of the RegNet rule, for one network or many (arrays of parameters).

    u_j = w0 + wa * j, s_j = round(log(u_j / w0) / log(wm)), w_j = 8 * round(w0 * wm^s_j / 8),
    with numpy's rounding (half to even) as in pycls. Rows are networks; entries past a
    network's depth are 0.
    """
    d, w0, wa, wm = (np.atleast_1d(x)[:, None] for x in (d, w0, wa, wm))
    j = np.arange(d.max())
    steps = np.round(np.log((j * wa + w0) / w0) / np.log(wm))
    widths = np.round(w0 * np.power(wm, steps) / QUANTUM).astype(int) * QUANTUM
    return np.where(j < d, widths, 0)


def stage_counts(widths: np.ndarray) -> np.ndarray:
    """Number of stages (runs of equal width) of each row of :func:`regnet_widths`."""
    return 1 + np.count_nonzero((widths[:, 1:] != widths[:, :-1]) & (widths[:, 1:] > 0), axis=1)


def stage_runs(widths: np.ndarray) -> list[tuple[int, int]]:
    """(depth, width) of each stage, from one row of :func:`regnet_widths`."""
    return [(len(list(run)), w) for w, run in groupby(widths.tolist()) if w]


def regnet_stages(d: int, w0: int, wa: float, wm: float) -> list[tuple[int, int]]:
    """(depth, width) of each stage of one RegNet, checking the parameters."""
    require(_is_int(d) and d >= 1, "d", f"must be a positive integer, got {excerpt(d)}")
    require(_is_int(w0) and w0 > 0 and w0 % QUANTUM == 0, "w0",
            f"must be a positive multiple of {QUANTUM}, got {excerpt(w0)}")
    require(_is_real(wa) and 0 <= wa < math.inf, "wa",
            f"must be a finite number >= 0, got {excerpt(wa)}")
    require(_is_real(wm) and 1 < wm < math.inf, "wm",
            f"must be a finite number > 1, got {excerpt(wm)}")
    return stage_runs(regnet_widths(d, w0, wa, wm)[0])


def regnet(d: int, w0: int, wa: float, wm: float, *, stem: Mapping | None = None,
           head: Mapping | None = None, **settings) -> Network:
    """A RegNet: the rule's stages of one block family (settings as for :func:`rule_stages`)."""
    return anynet(rule_stages(regnet_stages(d, w0, wa, wm), **settings), stem=stem, head=head)


def rule_stages(stages: Sequence[tuple[int, int]], *, block: str = DEFAULT_FAMILY,
                se: float = 0.0, **block_params) -> list[dict[str, Any]]:
    """Stage settings for (depth, width) pairs of one block family, each starting with stride 2.

    ``block_params`` are the family's own stage fields, with those it declares in
    ``generator_needs`` (ResNeXt's ``group_w``).
    """
    for name in getattr(FAMILIES.get(block), "generator_needs", ()):
        require(name in block_params, name, f"missing: {block} stages need it from a generator")
    return [{"block": block, "depth": depth, "width": width, "se": se, **block_params}
            for depth, width in stages]


def anynet(stages: Sequence[Mapping[str, Any]], *, stem: Mapping | None = None,
           head: Mapping | None = None) -> Network:
    """A network of freely set stages: each a mapping of ``block`` and its stage fields.

    ``stride`` defaults to 2; ``width`` sets the family's size field (see
    ``nas.blocks.base``).
    """
    return assemble(stages, stem, head).validate()


def assemble(stages: Sequence[Mapping[str, Any]], stem: Mapping | None = None,
             head: Mapping | None = None) -> Network:
    """:func:`anynet` before validation (for samplers that validate only what they keep)."""
    return Network(tuple(_stage(i, dict(s)) for i, s in enumerate(stages)),
                   _part("stem", Stem, stem or {}), _part("head", Head, head or {}))


def _stage(i: int, settings: dict[str, Any]) -> Stage:
    block = settings.pop("block", DEFAULT_FAMILY)
    if block not in FAMILIES:
        raise ConfigError(f"stages[{i}].block: unknown family {excerpt(block)}; "
                          f"choose from {', '.join(FAMILIES)}")
    settings.setdefault("stride", 2)
    return _part(f"stages[{i}]", FAMILIES[block], FAMILIES[block].generated(settings))


def _part(where: str, cls: type, settings: Mapping[str, Any]):
    check_keys(where, settings, field_names(cls))
    return cls(**settings)


GENERATORS = {"regnet": regnet, "anynet": anynet}


def from_spec(spec: Mapping[str, Any]) -> Network:
    """A network from a generator spec: ``generator: regnet`` (or ``anynet``) and its arguments,
    with names and types checked."""
    spec = dict(spec)
    name = spec.pop("generator")
    if name not in GENERATORS:
        raise ConfigError(f"generator: unknown generator {excerpt(name)}; choose from "
                          f"{', '.join(GENERATORS)}")
    try:
        inspect.signature(GENERATORS[name]).bind(**spec)
    except TypeError as e:
        raise ConfigError(f"generator {name}: {e}") from None
    for part, cls in (("stem", Stem), ("head", Head)):
        check_types(part, cls, spec.get(part) or {})
    stages = spec.get("stages") if name == "anynet" else [spec]
    if not isinstance(stages, list) or not all(isinstance(s, Mapping) for s in stages):
        raise ConfigError("stages: expected a list of stage mappings")
    for i, stage in enumerate(stages):
        block = stage.get("block", DEFAULT_FAMILY)
        check_types(f"stages[{i}]" if name == "anynet" else name, FAMILIES.get(block, Stage),
                    stage)
    return GENERATORS[name](**spec)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def load_network(path: str | Path) -> Network:
    """A network from a config YAML file or a generator spec (``generator: regnet``, ...), in a
    file or inline as a YAML mapping (``{generator: regnet, d: 22, ...}``); errors name the
    file."""
    inline = str(path).lstrip().startswith("{")
    source = "the inline spec" if inline else str(path)
    try:
        data = parse_yaml(str(path), source) if inline else load_yaml(path)
        if isinstance(data, dict) and "generator" in data:
            return from_spec(data)
        return Network.from_dict(data)
    except ConfigError as e:
        message = str(e)
        raise ConfigError(message if message.startswith(source) else f"{source}: {message}") \
            from None
