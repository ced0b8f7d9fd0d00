"""Everything a search run is given, validated before any work starts, and kept in run.yaml."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.budget import parse_count
from nas.checks import MAX_SEED, check_keys
from nas.errors import ConfigError, excerpt
from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS
from nas.evaluate.settings import ProxySettings
from nas.search.pareto import ALIASES
from nas.yamlfile import load_yaml

SAMPLERS = ("tpe", "nsga2", "random")
MAX_SCREEN = 65_536  # networks in a screen's pool: 4,096 already costs a second per candidate
LATENCY_BACKENDS = ("torch", "onnxruntime")  # nas.latency.profile.BACKENDS, named without torch
RESUMABLE = ("trials", "time_budget", "data", "address")  # what a resumed run may change
DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
MILLISECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s)?")
ADDRESS = re.compile(r"auto|(ray://)?[\w.-]+:\d{1,5}")
TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
         "None": (type(None),)}  # the field types run.yaml's values are checked against


@dataclass(frozen=True)
class SearchSettings:
    space: str = "regnet"
    budget: str | None = "400MF"
    band: float | None = None
    objectives: tuple[str, ...] = ("accuracy", "latency")
    mac_budget: str | None = None
    params_budget: str | None = None
    latency_budget: str | None = None
    sampler: str = "tpe"
    screen: int = 1024  # the pool (benchmarks/README.md: Search quality)
    trials: int = 24
    time_budget: str | None = None
    seed: int = 0
    data: str | None = None
    signal: str = DEFAULT_SIGNAL
    proxy: ProxySettings = field(default_factory=ProxySettings)
    latency_table: str | None = None
    latency_backend: str = "torch"
    latency_on: str | None = None  # the Ray resource of the node the latency table is of
    resolution: int = 224
    num_classes: int = 1000
    cpus_per_trial: int = 1
    address: str | None = None

    def check(self) -> SearchSettings:
        """Raise ConfigError, naming the setting, for anything that cannot run."""
        unknown = [o for o in self.objectives if o not in ALIASES]
        if unknown or not self.objectives:
            raise ConfigError(f"objectives: unknown objective {excerpt(unknown[0])}; choose from "
                              f"{', '.join(ALIASES)}" if unknown else "objectives: none given")
        if self.signal not in SIGNALS:
            raise ConfigError(f"signal: must be one of {', '.join(SIGNALS)}, "
                              f"got {excerpt(self.signal)}")
        repeated = [o for o in self.objectives if self.objectives.count(o) > 1]
        if repeated:
            raise ConfigError(f"objectives: {repeated[0]} is given more than once")
        if self.address is not None and not ADDRESS.fullmatch(self.address):
            raise ConfigError("address: expected HOST:PORT of a Ray cluster (or auto), "
                              f"got {excerpt(self.address)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler: must be one of {', '.join(SAMPLERS)}, "
                              f"got {excerpt(self.sampler)}")
        if self.latency_backend not in LATENCY_BACKENDS:
            raise ConfigError(f"latency-backend: must be one of {', '.join(LATENCY_BACKENDS)}, "
                              f"got {excerpt(self.latency_backend)}")
        if self.latency_on is not None and self.address is None:
            raise ConfigError(f"latency-on: measuring on '{self.latency_on}' needs the "
                              "cluster's --address")
        if not 0 <= self.screen <= MAX_SCREEN:
            raise ConfigError(f"screen: must be 0 (off) to {MAX_SCREEN:,} networks, got "
                              f"{self.screen}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be 0 to {MAX_SEED}, got {self.seed}")
        for name in ("trials", "resolution", "num_classes", "cpus_per_trial"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}: must be positive, "
                                  f"got {getattr(self, name)}")
        self.limits()
        self.time_budget_seconds()
        return self

    @property
    def columns(self) -> list[str]:
        """The table columns of the objectives."""
        return [ALIASES[o] for o in self.objectives]

    def limits(self) -> dict[str, float]:
        """Hard upper limits by table column: flops, mac, params, latency_ms."""
        limits = {}
        for column, text in (("flops", self.budget), ("mac", self.mac_budget),
                             ("params", self.params_budget)):
            if text is not None:
                limits[column] = parse_count(text, f"{column} budget")
        if self.latency_budget is not None:
            limits["latency_ms"] = parse_milliseconds(self.latency_budget)
        return limits

    def study_settings(self) -> dict[str, Any]:
        """The settings that shape the study, which a resumed run keeps."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE}

    def uses_latency(self) -> bool:
        return "latency_ms" in self.columns or self.latency_budget is not None

    def time_budget_seconds(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SearchSettings:
        """Settings from run.yaml's mapping, checked: ConfigError names the setting at fault."""
        data = _typed("settings", cls, data)
        objectives = data.get("objectives", [])
        if not (isinstance(objectives, list) and all(isinstance(o, str) for o in objectives)):
            raise ConfigError(f"objectives: expected a list of names, got {excerpt(objectives)}")
        data["objectives"] = tuple(objectives)
        data["proxy"] = ProxySettings(**_typed("proxy", ProxySettings, data.get("proxy", {})))
        data.setdefault("signal", "proxy")  # runs made before the calibrated signal
        data.setdefault("screen", 0)  # runs made before screening
        return cls(**data).check()

    @classmethod
    def load(cls, run_dir: Path) -> SearchSettings:
        """The settings in a run folder's run.yaml; ConfigError if it is missing or damaged."""
        path = Path(run_dir) / "run.yaml"
        if not path.is_file():
            raise ConfigError(f"{run_dir}: not a run folder (no run.yaml)")
        data = load_yaml(path)
        try:
            if not isinstance(data, dict) or "settings" not in data:
                raise ConfigError("no 'settings' mapping")
            return cls.from_dict(data["settings"])
        except ConfigError as e:
            raise ConfigError(f"{path}: damaged: {e}") from None


def _typed(where: str, cls: type, data: Any) -> dict[str, Any]:
    """A copy of the mapping ``data`` whose keys are fields of dataclass ``cls``, each of the
    field's type where that is a plain one (str, int, float, bool or None)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {excerpt(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(where, data, set(fields))
    for name, value in data.items():
        kinds = tuple(k for t in fields[name].type.split("|") for k in TYPES.get(t.strip(), ()))
        bool_as_number = isinstance(value, bool) and bool not in kinds
        if kinds and (not isinstance(value, kinds) or bool_as_number):
            raise ConfigError(f"{where}.{name}: expected {fields[name].type}, "
                              f"got {excerpt(value)}")
    return dict(data)


def default_trials(signal: str) -> int:
    """Candidates a search scores unless told: 24 proxy trainings, or 500 with a signal that
    trains nothing."""
    return 24 if SIGNALS[signal].needs_training else 500


def parse_duration(text: str) -> float:
    """Seconds of a duration like 30m, 1h30m, 90s or 45 (minutes)."""
    text = str(text).strip().lower()
    match = DURATION.fullmatch(text)
    if text.replace(".", "", 1).isdigit():
        seconds = float(text) * 60
    elif match and any(match.groups()):
        h, m, s = (float(g or 0) for g in match.groups())
        seconds = 3600 * h + 60 * m + s
    else:
        raise ConfigError("time budget: expected a duration like 30m, 1h30m or 90s, "
                          f"got {excerpt(text)}")
    if seconds <= 0:
        raise ConfigError(f"time budget: must be positive, got {excerpt(text)}")
    return seconds


def parse_milliseconds(text: str) -> float:
    """Milliseconds of a latency like 15ms, 0.015s or 15."""
    match = MILLISECONDS.fullmatch(str(text).strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError("latency budget: expected a positive latency like 15ms, "
                          f"got {excerpt(text)}")
    return float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
