"""Reading run folders back: fronts, picks, design-space statistics and their plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nas.budget import count_text, flops_text
from nas.errors import NasError
from nas.search.pareto import ALIASES, OBJECTIVES, pareto_mask
from nas.search.settings import SearchSettings


class RunError(NasError):
    """A run folder that cannot be read, or holds nothing to report."""


@dataclass(frozen=True)
class Run:
    path: Path
    settings: SearchSettings
    trials: pd.DataFrame

    @property
    def name(self) -> str:
        """The run folder's own name (``results/latest`` names the run it links to)."""
        return self.path.resolve().name

    @property
    def objectives(self) -> list[str]:
        return [ALIASES[o] for o in self.settings.objectives]

    def complete(self) -> pd.DataFrame:
        done = self.trials[self.trials["status"] == "complete"]
        if done.empty:
            counts = self.trials["status"].value_counts()
            ended = ", ".join(f"{n} {status}" for status, n in counts.items())
            raise RunError(f"{self.path}: no trial is complete"
                           + (f" ({ended})" if ended else " yet"))
        return done

    def front(self) -> pd.DataFrame:
        done = self.complete()
        return done[pareto_mask(done, self.objectives)]

    def limits(self) -> dict[str, float]:
        return self.settings.limits()


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not (path / "trials.csv").is_file() or not (path / "run.yaml").is_file():
        raise RunError(f"{path}: not a run folder (it needs trials.csv and run.yaml)")
    settings = SearchSettings.load(path)
    return Run(path, settings, _read_trials(path / "trials.csv",
                                            [ALIASES[o] for o in settings.objectives]))


def _read_trials(path: Path, objectives: list[str]) -> pd.DataFrame:
    """A run's trials table; RunError if it is not the table a search writes."""
    try:
        trials = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: damaged ({str(e).strip().splitlines()[0]})") from None
    missing = [c for c in ["trial_id", "status", "config", *objectives] if c not in trials]
    if missing:
        raise RunError(f"{path}: damaged (no column {', '.join(missing)})")
    garbled = [c for c in ["trial_id", *objectives]
               if not trials.empty and not pd.api.types.is_numeric_dtype(trials[c])]
    if garbled:
        raise RunError(f"{path}: damaged (non-numeric values in {', '.join(garbled)})")
    for row, config in trials.loc[trials["status"] == "complete", "config"].items():
        try:
            json.loads(config)
        except (TypeError, ValueError):
            raise RunError(f"{path}: damaged (line {row + 2}: the config is not JSON)") from None
    return trials


def pick(run: Run, trial: int | None = None, by: str = "knee") -> pd.Series:
    """A trial by id, or the front's best in one objective, or its knee."""
    if trial is not None:
        rows = run.trials[run.trials["trial_id"] == trial]
        if rows.empty:
            raise RunError(f"{run.path}: no trial {trial} (ids 0 to {len(run.trials) - 1})")
        if rows.iloc[0]["status"] != "complete":
            raise RunError(f"{run.path}: trial {trial} is {rows.iloc[0]['status']}, not complete")
        return rows.iloc[0]
    front = run.front()
    if by == "knee":
        return front.iloc[knee(front, run.objectives[:2])]
    column = ALIASES[by]
    if column not in front or front[column].isna().all():
        raise RunError(f"{run.path}: the run has no {by} values")
    best = front[column].idxmax() if OBJECTIVES[column] else front[column].idxmin()
    return front.loc[best]


def knee(front: pd.DataFrame, objectives: list[str]) -> int:
    """Position of the front point farthest from the line through the two extremes, with both
    objectives scaled to [0, 1]: the best trade-off."""
    if len(front) < 3 or len(objectives) < 2:
        return 0
    xy = np.column_stack([front[o].to_numpy(float) for o in objectives])
    xy = (xy - xy.min(0)) / np.where(np.ptp(xy, 0) > 0, np.ptp(xy, 0), 1)
    a, b = xy[xy[:, 0].argmin()], xy[xy[:, 0].argmax()]
    d = b - a
    distance = np.abs(d[0] * (xy[:, 1] - a[1]) - d[1] * (xy[:, 0] - a[0]))
    return int(distance.argmax())


def latency_text(row: pd.Series, unit: str = "") -> str:
    """A trial's predicted latency in ms with the noise its table states: ``3.21 ±6%`` (one
    standard deviation), ``3.21`` where the table cannot say, ``-`` where none was predicted."""
    ms, noise = row.get("latency_ms"), row.get("latency_noise")
    if ms is None or pd.isna(ms):
        return "-"
    known = noise is not None and not pd.isna(noise)
    return f"{ms:.2f}{unit}" + (f" ±{100 * noise:.0f}%" if known else "")


def objective_text(column: str, value: float) -> str:
    """An objective's value as tables print it: ``95.81`` (accuracy), ``3.21`` (ms), ``2.077M``."""
    if pd.isna(value):
        return "-"
    return f"{value:.2f}" if column in ("accuracy", "latency_ms") else count_text(value)


def summary(config_json: str) -> str:
    """``resnext d[1,2,7,12] w[32,64,160,384]``: families, depths and widths of a config."""
    from nas.blocks import FAMILIES  # torch: only where a summary is printed

    config = json.loads(config_json)
    stages = config["stages"]
    families = "/".join(dict.fromkeys(s["block"] for s in stages))
    widths = [s[FAMILIES[s["block"]].size] for s in stages]
    return (f"{families} d[{','.join(str(s['depth']) for s in stages)}] "
            f"w[{','.join(map(str, widths))}]")


def edf(errors: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Empirical distribution function: the share of errors below each grid value."""
    return np.searchsorted(np.sort(errors), grid, side="right") / len(errors)


SUBSAMPLE = 0.25  # the share of a run's models each resample of the best takes


def best_of_subsamples(errors: np.ndarray, n: int = 1000, seed: int = 0) -> np.ndarray:
    """The RegNet paper's empirical bootstrap: ``n`` times, draw SUBSAMPLE of the models with
    replacement and keep the best (lowest error); the indices of those bests."""
    rng = np.random.default_rng(seed)
    size = max(1, round(SUBSAMPLE * len(errors)))
    drawn = rng.integers(0, len(errors), (n, size))
    return drawn[np.arange(n), errors[drawn].argmin(1)]


def best_error_interval(errors: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the best error among SUBSAMPLE of the models (:func:`best_of_subsamples`):
    how far the best depends on the sample. Resamples of all the models would be pinned at the
    observed best, which no resample can go below."""
    return _interval(errors[best_of_subsamples(errors, n, seed)])


def best_value_interval(values: np.ndarray, errors: np.ndarray, n: int = 1000, seed: int = 0
                        ) -> tuple[float, float]:
    """95% interval of a parameter's value in the best model of SUBSAMPLE of the models: where
    the space's good models lie along it (the paper's trend analyses)."""
    return _interval(values[best_of_subsamples(errors, n, seed)])


def _interval(best: np.ndarray) -> tuple[float, float]:
    """The central 95% of ``best``, as values it holds (a depth stays a whole number)."""
    low, high = np.percentile(best, [2.5, 97.5], method="nearest")
    return float(low), float(high)


LABELLED = 30  # front points a plot labels with trial ids at most (every k-th beyond)


def plot_fronts(runs: list[Run], path: Path) -> None:
    """Accuracy against latency and against FLOPs: every trial grey, each run's front (the
    trials ``pareto`` lists) in colour and labelled with trial ids (latencies with the noise
    their table states, one standard deviation), and, where a panel's two axes are not the
    run's objectives, the front of those two as a line; limits as dashed lines."""
    plt = _pyplot()
    axes_of = [c for c in ("latency_ms", "flops") if any(r.complete()[c].notna().any()
                                                         for r in runs)]
    fig, axes = plt.subplots(1, len(axes_of), figsize=(6.5 * len(axes_of), 5), squeeze=False)
    for ax, x in zip(axes[0], axes_of):
        for i, run in enumerate(runs):
            done = run.complete().dropna(subset=[x])
            front = run.front().dropna(subset=[x]).sort_values(x)
            color, own = f"C{i}", run.objectives == ["accuracy", x]
            name = f"{run.name}: " if len(runs) > 1 else ""
            ax.scatter(done[x], done["accuracy"], s=14, color="0.7", zorder=1)
            ax.plot(front[x], front["accuracy"], "-o" if own else "o", color=color, ms=5,
                    zorder=3, label=f"{name}Pareto front" + ("" if own else " of the run"))
            if not own:
                panel = done[pareto_mask(done, ["accuracy", x])].sort_values(x)
                ax.plot(panel[x], panel["accuracy"], "-", color=color, lw=1, alpha=0.6,
                        zorder=2, label=f"{name}front of these two axes")
            if x == "latency_ms" and "latency_noise" in front:  # the table's stated noise
                spread = np.exp(front["latency_noise"].fillna(0).to_numpy(float))
                ax.errorbar(front[x], front["accuracy"], fmt="none", ecolor=color, alpha=0.5,
                            xerr=[front[x] * (1 - 1 / spread), front[x] * (spread - 1)])
            every = -(-len(front) // LABELLED)
            for _, row in front.iloc[::every].iterrows():
                ax.annotate(str(int(row["trial_id"])), (row[x], row["accuracy"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points", color=color)
            if x in run.limits():
                ax.axvline(run.limits()[x], ls="--", color=color, lw=1,
                           label=f"{x} limit" if len(runs) == 1 else None)
        ax.set_xlabel({"latency_ms": "predicted latency (ms)", "flops": "FLOPs"}[x])
        if x == "flops":
            ax.xaxis.set_major_formatter(lambda value, _: flops_text(value))
        ax.set_ylabel("accuracy signal (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_edfs(runs: list[Run], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    errors = {run.name: 100 - run.complete()["accuracy"].to_numpy(float) for run in runs}
    grid = np.linspace(min(e.min() for e in errors.values()),
                       max(e.max() for e in errors.values()), 400)
    for name, e in errors.items():
        ax.plot(grid, edf(e, grid), label=f"{name} (n={len(e)}, best {e.min():.1f})")
    ax.set_xlabel("error by the accuracy signal (%)")
    ax.set_ylabel("cumulative share of models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
