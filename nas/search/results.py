"""The files of a run folder, written from the study as trials end.

``run.yaml``
    every setting, the versions of the tool, Python, torch, Ray and Optuna, and where the run
    uses latency, the table it predicts from (``latency_table``: the file's absolute path, the
    device its entries are measured on, and how many it held when the run first started).
``trials.csv`` (and ``trials.parquet``)
    one row per trial: ``trial_id``, ``status`` (``complete``, ``failed``, ``infeasible``,
    ``interrupted``, ``stopped`` by the time budget, ``running`` or ``queued``), the objectives
    and costs (``accuracy`` is the run's accuracy signal, ``proxy_accuracy`` the raw proxy top-1
    where the candidate was trained), the zero-cost scores and training statistics the signal
    used, ``config`` (the network as JSON), ``error``, timings, and the space's values as
    ``param:<name>``.
``pareto.csv``
    the complete trials no other complete trial dominates on the run's objectives.
``study.journal``
    Optuna's append-only record of the study, from which the above are rebuilt.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from nas import __version__
from nas.evaluate.zero_cost import SCORES
from nas.search.pareto import pareto_mask
from nas.yamlfile import load_yaml

FLAGS = ("screened", "startup")  # how a trial was proposed: True or False in every row
COLUMNS = ["trial_id", "status", "accuracy", "proxy_accuracy", "latency_ms", "flops", "params",
           "acts", "mac", *SCORES, "sotl", "val_loss", "error", "score_seconds", "train_seconds",
           "wall_seconds", "overhead_seconds", "propose_seconds", "latency_measured",
           "latency_noise", "images_per_second", "proxy_flops", "started", "config", *FLAGS]


def status(trial: FrozenTrial) -> str:
    """A trial's status; a trial that was running when its process died is ``interrupted``, and
    one re-queued on resume is ``queued`` until it is asked again."""
    if trial.state == TrialState.WAITING:
        return "queued"
    recorded = trial.user_attrs.get("status", "running")
    if trial.state == TrialState.FAIL and recorded == "running":
        return "interrupted"
    return recorded


def trials_table(study: optuna.Study, space) -> pd.DataFrame:
    """One row per trial, with ``param:<name>`` the values of ``space`` it had (what
    ``Space.suggest`` made of the Optuna parameters it asked, e.g. ``wa`` 19.2 where Optuna
    asked ``wa/0.1`` 192)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {**t.user_attrs, "trial_id": t.number, "status": status(t),
               "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start
               else None}
        row.update({f"param:{k}": v for k, v in _values(space, t.params).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    for flag in FLAGS:
        table[flag] = table[flag].astype("boolean").fillna(False).astype(bool)
    rest = sorted(c for c in table.columns if c not in COLUMNS)
    return table[COLUMNS + rest]


def _values(space, params: dict[str, Any]) -> dict[str, Any]:
    """The space's values of a trial's Optuna parameters; none for a trial not asked yet."""
    try:
        return space.suggest(FixedTrial(params)) if params else {}
    except ValueError:  # a parameter missing: a trial cut off while it was being asked
        return {}


def pareto_table(trials: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    complete = trials[trials["status"] == "complete"]
    return complete[pareto_mask(complete, objectives)].sort_values(objectives[0])


def write_tables(run_dir: Path, study: optuna.Study, settings, space) -> None:
    trials = trials_table(study, space)
    _atomic_csv(trials, run_dir / "trials.csv")
    _atomic_csv(pareto_table(trials, settings.columns), run_dir / "pareto.csv")
    tmp = run_dir / "trials.parquet.tmp"
    trials.astype({c: "string" for c in ("error", "config", "started")}).to_parquet(tmp)
    os.replace(tmp, run_dir / "trials.parquet")


def write_run_yaml(run_dir: Path, settings, table=None, resumed: bool = False) -> None:
    import ray
    import torch

    versions = {"nas": __version__, "python": platform.python_version(),
                "torch": str(torch.__version__), "ray": ray.__version__,
                "optuna": optuna.__version__}
    latency = None if table is None else {  # a table only ever holds one device's entries
        "path": str(table.path.resolve()),
        "measured_on": table.measured_on or table.profile.fingerprint(),
        "entries_at_start": len(table)}
    path = run_dir / "run.yaml"
    if resumed:  # its run.yaml, already checked, keeps the record of the table it started from
        latency = load_yaml(path).get("latency_table") or latency
    text = yaml.safe_dump({"settings": settings.to_dict(), "versions": versions,
                           "latency_table": latency,
                           "written": datetime.now(UTC).isoformat(timespec="seconds")},
                          sort_keys=False)
    path.write_text(text)


def _atomic_csv(table: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
