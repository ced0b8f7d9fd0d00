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
    used, ``config`` (the network as JSON), ``error``, timings, and the space's parameters as
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

import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from nas import __version__
from nas.evaluate.zero_cost import SCORES
from nas.search.pareto import pareto_mask
from nas.yamlfile import load_yaml

COLUMNS = ["trial_id", "status", "accuracy", "proxy_accuracy", "latency_ms", "flops", "params",
           "acts", "mac", *SCORES, "sotl", "val_loss", "error", "score_seconds", "train_seconds",
           "wall_seconds", "overhead_seconds", "propose_seconds", "latency_measured",
           "latency_noise", "images_per_second", "proxy_flops", "started", "config"]


def status(trial: FrozenTrial) -> str:
    """A trial's status; a trial that was running when its process died is ``interrupted``, and
    one re-queued on resume is ``queued`` until it is asked again."""
    if trial.state == TrialState.WAITING:
        return "queued"
    recorded = trial.user_attrs.get("status", "running")
    if trial.state == TrialState.FAIL and recorded == "running":
        return "interrupted"
    return recorded


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {**t.user_attrs, "trial_id": t.number, "status": status(t),
               "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start
               else None}
        row.update({f"param:{k}": v for k, v in t.params.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    rest = sorted(c for c in table.columns if c not in COLUMNS)
    return table[COLUMNS + rest]


def pareto_table(trials: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    complete = trials[trials["status"] == "complete"]
    return complete[pareto_mask(complete, objectives)].sort_values(objectives[0])


def write_tables(run_dir: Path, study: optuna.Study, settings) -> None:
    trials = trials_table(study)
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
