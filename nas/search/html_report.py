"""An interactive run report: one self-contained HTML file (plotly.js inlined, no network needed)
with each run's Pareto front, best-so-far accuracy and hypervolume over the trials, the error
EDF and the trials table; several runs overlay. Needs the ``report`` extra (plotly)."""

from __future__ import annotations

import contextlib
import html
from pathlib import Path

import numpy as np
import pandas as pd

from nas.errors import NasError
from nas.search.pareto import OBJECTIVES, hypervolume, pareto_mask
from nas.search.report import Run, edf, latency_text, objective_text, summary

LABELS = {"accuracy": "accuracy signal (%)", "latency_ms": "predicted latency (ms)",
          "flops": "FLOPs", "params": "params", "mac": "MAC"}
TABLE_COLUMNS = ("trial_id", "status", "accuracy", "latency_ms", "flops", "params", "mac")


def write_report(runs: list[Run], path: Path) -> Path:
    """Write the report of ``runs`` to ``path`` (atomically) and return it."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise NasError("nas report needs plotly: pip install -e '.[report]'") from None
    figures = [_fronts(go, runs), _progress(go, runs), _edf(go, runs)]
    parts = [f.to_html(full_html=False, include_plotlyjs=i == 0, config={"responsive": True})
             for i, f in enumerate(figures)]
    title = html.escape(", ".join(run.name for run in runs))
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>nas report: {title}"
            "</title><style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:"
            "collapse;font-size:12px}td,th{padding:2px 8px;text-align:right}"
            "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
            f"<h1>nas report: {title}</h1>" + "".join(parts)
            + "".join(_table(run) for run in runs) + "</body></html>\n")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(page)
        tmp.replace(path)
    except OSError as e:  # named by the file the user gave, not the temporary one
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(e.errno, e.strerror, str(path)) from None
    return path


def _hover(rows: pd.DataFrame, objectives: list[str]) -> list[str]:
    return [f"trial {int(r['trial_id'])}<br>"
            + "<br>".join(f"{o} {_value(o, r)}" for o in objectives if o in r)
            + f"<br>{html.escape(summary(r['config']))}" for _, r in rows.iterrows()]


def _value(column: str, row: pd.Series) -> str:
    if column == "latency_ms":
        return latency_text(row)  # with the noise its table states
    return objective_text(column, row[column])


def _fronts(go, runs: list[Run]):
    """Accuracy against each cost objective of the runs: all trials, and each run's front."""
    from plotly.subplots import make_subplots

    costs = [c for c in OBJECTIVES if c != "accuracy"
             and any(c in r.objectives and r.complete()[c].notna().any() for r in runs)]
    costs = costs or ["flops"]
    fig = make_subplots(rows=1, cols=len(costs), subplot_titles=[LABELS[c] for c in costs])
    for col, x in enumerate(costs, 1):
        for run in runs:
            done = run.complete().dropna(subset=[x])
            front = done[pareto_mask(done, ["accuracy", x])].sort_values(x)
            shown = [o for o in OBJECTIVES if o in done]
            fig.add_trace(go.Scatter(x=done[x], y=done["accuracy"], mode="markers",
                                     name=f"{run.name}: trials", legendgroup=run.name,
                                     marker={"size": 5, "opacity": 0.35}, showlegend=col == 1,
                                     hovertext=_hover(done, shown), hoverinfo="text"),
                          row=1, col=col)
            fig.add_trace(go.Scatter(x=front[x], y=front["accuracy"], mode="lines+markers",
                                     name=f"{run.name}: Pareto front", legendgroup=run.name,
                                     showlegend=col == 1, hovertext=_hover(front, shown),
                                     hoverinfo="text"), row=1, col=col)
        fig.update_xaxes(title_text=LABELS[x], type="log" if x != "latency_ms" else "linear",
                         row=1, col=col)
    fig.update_yaxes(title_text=LABELS["accuracy"], row=1, col=1)
    fig.update_layout(title="Pareto fronts (hover a point for its trial)", height=450)
    return fig


def _progress(go, runs: list[Run]):
    """Best accuracy so far and the hypervolume of the front so far, trial by trial; every
    run's on the objectives all runs share, from one reference point (the worst value any of
    them scored in each), so that overlaid runs compare."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=["best accuracy so far",
                                                        "hypervolume of the front so far"])
    done_of = [run.complete().sort_values("trial_id") for run in runs]
    objectives = [o for o in runs[0].objectives
                  if all(o in r.objectives and d[o].notna().all() for r, d in zip(runs, done_of))]
    both = pd.concat([d[objectives] for d in done_of])
    reference = [both[o].min() if OBJECTIVES[o] else both[o].max() for o in objectives]
    for run, done in zip(runs, done_of):
        volumes = volumes_so_far(done, objectives, reference)
        fig.add_trace(go.Scatter(x=done["trial_id"], y=done["accuracy"].cummax(),
                                 mode="lines", name=f"{run.name}: best accuracy"), row=1, col=1)
        fig.add_trace(go.Scatter(x=done["trial_id"], y=volumes, mode="lines",
                                 name=f"{run.name}: hypervolume"), row=1, col=2)
    fig.update_xaxes(title_text="trial")
    fig.update_yaxes(title_text=LABELS["accuracy"], row=1, col=1)
    fig.update_yaxes(title_text="hypervolume of " + " x ".join(LABELS[o] for o in objectives),
                     row=1, col=2)
    fig.update_layout(title="Progress of the search", height=400)
    return fig


def volumes_so_far(done: pd.DataFrame, objectives: list[str], reference: list[float]
                   ) -> list[float]:
    """The hypervolume of the front of the first k trials, for every k: computed again only
    when a trial joins the front (the others leave it unchanged)."""
    front, volume, volumes = done.iloc[:0], 0.0, []
    for k in range(len(done)):
        joined = pd.concat([front, done.iloc[k:k + 1]])
        on_front = pareto_mask(joined, objectives)
        if on_front[-1]:
            front = joined[on_front]
            volume = hypervolume(front, objectives, reference)
        volumes.append(volume)
    return volumes


def _edf(go, runs: list[Run]):
    """The empirical distribution of each run's errors (100 - accuracy signal)."""
    errors = {run.name: 100 - run.complete()["accuracy"].to_numpy(float) for run in runs}
    grid = np.linspace(min(e.min() for e in errors.values()),
                       max(e.max() for e in errors.values()), 200)
    fig = go.Figure([go.Scatter(x=grid, y=edf(e, grid), mode="lines",
                                name=f"{name} (n={len(e)}, best {e.min():.2f})")
                     for name, e in errors.items()])
    fig.update_layout(title="Error EDF", xaxis_title="error by the accuracy signal (%)",
                      yaxis_title="share of models", height=400)
    return fig


def _table(run: Run) -> str:
    columns = [c for c in TABLE_COLUMNS if c in run.trials]
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_value(c, r) if c in OBJECTIVES else str(r[c]))}"
                         "</td>" for c in columns)
        + f"<td style='text-align:left'>{html.escape(summary(r['config']))}</td></tr>"
        for _, r in run.trials.iterrows() if isinstance(r.get("config"), str))
    header = "".join(f"<th>{c}</th>" for c in columns) + "<th>architecture</th>"
    return (f"<h2>Trials of {html.escape(run.name)}</h2><table><tr>{header}</tr>{rows}"
            "</table>")
