"""Spaces read from YAML (``spaces/NAME.yaml``; the format is in ``spaces/README.md``), every
error one line naming the file and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nas.blocks import DEFAULT_FAMILY, FAMILIES
from nas.budget import parse_count
from nas.checks import check_keys, check_types, field_names
from nas.config import Head, Stem
from nas.errors import ConfigError, excerpt
from nas.spaces.constraints import METRICS, Constraints
from nas.spaces.distributions import Choice, Float, Int, Param, Pow2
from nas.spaces.space import Space
from nas.yamlfile import load_yaml

SPACES_DIR = Path(__file__).resolve().parents[2] / "spaces"
GENERATOR_SETTINGS = {"regnet": {"d", "w0", "wa", "wm", "block", "se"},
                      "anynet": {"block", "depth", "width", "stride", "se"}}


KINDS = {"int": Int, "float": Float, "pow2": Pow2, "choice": Choice}
GENERATED = {"depth", "width", "stride"}  # stage fields a generator sets (and the size field)


def available() -> list[str]:
    """Names of the shipped spaces."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def space_path(name: str) -> Path:
    """``spaces/NAME.yaml`` for a name, the path itself for a file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    if not (SPACES_DIR / f"{name}.yaml").exists():
        raise ConfigError(f"unknown space {excerpt(name)}; choose from {', '.join(available())} "
                          "or give a .yaml file")
    return SPACES_DIR / f"{name}.yaml"


def load_space(name: str) -> Space:
    """A shipped space by name, or a space file; errors name the file and the key."""
    path = space_path(name)
    data = load_yaml(path)
    try:
        return parse_space(path.stem, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_space(name: str, data: Any) -> Space:
    """A space from the mapping of a space file."""
    _expect_mapping("space", data)
    check_keys("space", data, {"generator", "stages", "params", "fixed", "constraints"})
    generator = data.get("generator")
    if generator not in GENERATOR_SETTINGS:
        raise ConfigError(f"generator: expected one of {', '.join(GENERATOR_SETTINGS)}, "
                          f"got {excerpt(generator)}")
    stages = data.get("stages", 0)
    if (generator == "anynet") != (isinstance(stages, int) and stages >= 1):
        raise ConfigError("stages: anynet needs the number of stages (a positive integer); "
                          "regnet takes none")
    params, fixed = (_expect_mapping(k, data.get(k) or {}) for k in ("params", "fixed"))
    dists = {k: _distribution(f"params.{k}", v) for k, v in params.items()}
    families = _families(dists.get("block"), fixed.get("block", DEFAULT_FAMILY))
    for where, keys in (("params", params), ("fixed", fixed)):
        for key in keys:
            _check_name(f"{where}.{key}", key, generator, families, where == "fixed")
    _check_fixed_types(fixed, families)
    if generator == "regnet" and {"d", "w0", "wa", "wm"} - set(params) - set(fixed):
        raise ConfigError("regnet needs d, w0, wa and wm, each in params or fixed")
    space = Space(name, generator, _expand(dists, stages, "block" in dists), fixed,
                  _constraints(data.get("constraints") or {}), stages)
    space.network(space.draw(np.random.default_rng(0))[0])  # settings the generator refuses
    return space


def _families(block: Choice | None, fixed_block: Any) -> tuple[str, ...]:
    families = block.values if isinstance(block, Choice) else (fixed_block,)
    if block is not None and not isinstance(block, Choice):
        raise ConfigError("params.block: expected {choice: [families]}")
    for family in families:
        if family not in FAMILIES:
            raise ConfigError(f"block: unknown family {excerpt(family)}; choose from "
                              f"{', '.join(FAMILIES)}")
    return families


def _check_name(where: str, key: str, generator: str, families: tuple[str, ...],
                fixed: bool) -> None:
    own = {f: field_names(FAMILIES[f]) - GENERATED - {FAMILIES[f].size} for f in families}
    allowed = (GENERATOR_SETTINGS[generator] | set.intersection(*map(set, own.values()))
               | {f"{f}.{name}" for f, names in own.items() for name in names}
               | ({"stem", "head"} if fixed else set()))
    if key not in allowed:
        raise ConfigError(f"{where}: not a setting of {generator} with block "
                          f"{' or '.join(families)}; expected one of {', '.join(sorted(allowed))}")


def _check_fixed_types(fixed: Mapping[str, Any], families: tuple[str, ...]) -> None:
    for part, cls in (("stem", Stem), ("head", Head)):
        if part in fixed:
            check_types(f"fixed.{part}", cls, _expect_mapping(f"fixed.{part}", fixed[part]))
    for key, value in fixed.items():
        family, _, name = key.rpartition(".")
        for f in [family] if family else families:
            check_types("fixed" + (f".{family}" if family else ""), FAMILIES[f], {name: value})


def _expand(dists: dict[str, Any], stages: int, chosen: bool) -> tuple[Param, ...]:
    """The free parameters in asking order (the block choice first), per stage for anynet."""
    order = sorted(dists, key=lambda k: k != "block")
    scopes = [f"s{i}." for i in range(1, stages + 1)] or [""]
    return tuple(Param(scope + key, dists[key],
                       (scope + "block", key.split(".")[0]) if chosen and "." in key else None)
                 for scope in scopes for key in order)


def _distribution(where: str, spec: Any) -> Int | Float | Pow2 | Choice:
    kinds = set(spec) & set(KINDS) if isinstance(spec, dict) else set()
    if len(kinds) != 1:
        raise ConfigError(f"{where}: expected a distribution {{int: [low, high]}}, "
                          f"{{float: [low, high]}} (either with step and log), "
                          f"{{pow2: [low, high]}} or {{choice: [values]}}; got {excerpt(spec)}")
    kind = kinds.pop()
    check_keys(where, spec, {kind, "step", "log"} if kind in ("int", "float") else {kind})
    bounds = spec[kind]
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{where}.choice: expected a non-empty list of values")
        return Choice(tuple(bounds))
    number = int if kind == "int" else (int, float)
    if not (isinstance(bounds, list) and len(bounds) == 2
            and all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
            and 0 <= bounds[0] <= bounds[1]):
        raise ConfigError(f"{where}.{kind}: expected [low, high] with 0 <= low <= high"
                          f"{' (integers)' if kind == 'int' else ''}, got {excerpt(bounds)}")
    low, high = bounds
    step, log = spec.get("step"), spec.get("log", False)
    if kind == "pow2":
        if low <= 0 or not all(math.log2(b).is_integer() for b in bounds):
            raise ConfigError(f"{where}.pow2: expected powers of two, got {excerpt(bounds)}")
        return Pow2(low, high)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {excerpt(log)}")
    if step is not None and not (isinstance(step, number) and step > 0
                                 and _multiple(high - low, step)
                                 and (not log or _multiple(low, step))):
        raise ConfigError(f"{where}.step: expected a positive {kind} dividing high - low"
                          f"{' and low' if log else ''}, got {excerpt(step)}")
    if log and low <= 0:
        raise ConfigError(f"{where}.log: a log scale needs low > 0, got {low}")
    if kind == "int":
        return Int(low, high, step or 1, log)
    return Float(float(low), float(high), step and float(step), log)


def _multiple(x: float, step: float) -> bool:
    return abs(x / step - round(x / step)) < 1e-9


def _constraints(spec: Any) -> Constraints:
    _expect_mapping("constraints", spec)
    check_keys("constraints", spec, {*METRICS, "stages"})
    bounds = {}
    for metric, limits in spec.items():
        where = f"constraints.{metric}"
        if not isinstance(limits, dict) or not limits or set(limits) - {"min", "max"}:
            raise ConfigError(f"{where}: expected {{min: ..., max: ...}} (either or both), "
                              f"got {excerpt(limits)}")
        low, high = (parse_count(limits[k], f"{where}.{k}") if k in limits else default
                     for k, default in (("min", 0), ("max", math.inf)))
        if low > high:
            raise ConfigError(f"{where}: min {low} is above max {high}")
        bounds[metric] = (low, high)
    return Constraints(bounds)


def _expect_mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {excerpt(value)}")
    return value
