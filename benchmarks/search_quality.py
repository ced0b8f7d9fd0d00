"""Search quality at equal wall-clock: the front each method finds in the same seconds.

Methods, each given ``--seconds`` of wall-clock on this machine, for ``--seeds`` seeds:
- ``default``: ``search.py`` as a user runs it (TPE, screened, the default accuracy signal),
  with ``--time-budget``;
- ``tpe``: the same without the screen (``--screen 0``), TPE proposing every candidate;
- ``random``: ``--sampler random --screen 0``;
- ``screenN`` (e.g. ``screen256``): the default with a screen pool of N (``--screen N``);
- ``sums``: the default with the table's noise unstated, so that its screen compares the
  table's sums rather than expected latencies;
- ``freshN`` (e.g. ``fresh64``): the default drawing N networks anew for each choice instead of
  a quarter of its pool (``nas.search.screen.REDRAWN``);
- ``params_topk``: no search: draw 2,000 feasible networks from the space, sort them by params
  (most first) and score them in that order with the same signal, two at a time, until the
  seconds run out.
Objectives are the default's, (accuracy signal, predicted latency), from one latency table
filled beforehand for the space (``--table-networks``, each unit measured ``--table-sessions``
times, a table of its own per number of sessions); each run starts from its own copy of
it, so that no run inherits the entries another measured. Hypervolumes use one reference
point for all runs: the lowest signal and the highest latency any run found.

    NAS_DATA=... python benchmarks/search_quality.py [--seconds 90] [--seeds 5]

``--latency-budget`` gives every method the same ceiling on predicted latency (the search's
option; params_topk and ``--drawn`` drop the networks above it).

Writes benchmarks/results/search_quality.{csv,json} (``search_quality_SPACE_BUDGET[_LATENCY].*``
for another space or budget than regnet at 400MF, or a latency budget; ``_300s`` for another
``--seconds`` than 90; ``_NAME`` with ``--name NAME``); ``--update --methods
default`` measures one method again against the stored others (same reference point).
``--ceiling SECONDS`` adds to the stored results how much hypervolume there is to find: the
default search run that long (seed 0, the stored reference point), ``ceiling`` in the JSON
with its ratio to random's median.
``--drawn N`` adds what N random feasible networks hold together, scored by the signal, with
the table's latency where it knows every block (``known``) and the screen's log-count fit's for
the others (``all``): ``drawn`` in the JSON. ``--local-search STEPS`` with it adds what a local
search from that front finds in as many steps, each a neighbour (``Space.neighbour``) of a
random member of its current front, scored the same way: near the most the space holds at the
stored reference point, with no training and no latency measured (``drawn.local_search``).
``--judge`` times every unit of every run's networks near its front again into one new
table all runs share, the networks of all runs shuffled together, so that the machine's drift
falls on every method alike (each unit once at least; as in any table, a unit met again in a
later network is measured again in passing and pooled), and adds each method's hypervolume
by those latencies, at the stored table's speed (``judged`` in the JSON,
``judged_hypervolume`` in the CSV; files named ``_judged``). A run chooses its front by its
own measurements, noise included, so its own latencies flatter it the more candidates it
compares; an independent measurement does not.
"Near" is within ``NEAR_FRONT`` of the run's own front in latency. The judged hypervolume is a
lower bound (networks further from the front, and those a run dropped over ``--latency-budget``,
are not judged) and uses the same reference point as the runs' own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from nas.commands.options import positive
from nas.config import Network
from nas.evaluate import data
from nas.evaluate.proxy import ProxySettings
from nas.evaluate.ranking import DEFAULT_SIGNAL, SIGNALS, features
from nas.evaluate.signal import measure
from nas.latency import Profile, Table, Timing, fill, predict
from nas.search.pareto import hypervolume, pareto_mask
from nas.search.screen import Lookup, latency_fit
from nas.search.settings import SearchSettings, parse_milliseconds
from nas.spaces import constraints_for, load_space

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OBJECTIVES = ["accuracy", "latency_ms"]
POOL = 2000
SECONDS = 90
LOCAL_FRONT_EVERY = 200  # local search: steps between recomputing the front it moves from
NEAR_FRONT = 1.1  # judged: networks at most 10% slower than a run's front at their accuracy


def setting(args) -> str:
    """What names this space and budget's files: nothing for regnet at 400MF."""
    latency = f"_{args.latency_budget}" if args.latency_budget else ""
    return "" if (args.space, args.budget, latency) == ("regnet", "400MF", "") \
        else f"_{args.space}_{args.budget}{latency}"


def latency_limit(args) -> float:
    return parse_milliseconds(args.latency_budget) if args.latency_budget else math.inf


def outputs(args) -> tuple[Path, Path]:
    """The results' CSV and JSON, named by the setting, another --seconds than 90, --judge and
    --name."""
    seconds = "" if args.seconds == SECONDS else f"_{args.seconds}s"
    named = f"_{args.name}" if args.name else ""
    stem = f"search_quality{setting(args)}{seconds}{'_judged' if args.judge else ''}{named}"
    return RESULTS / f"{stem}.csv", RESULTS / f"{stem}.json"


SEARCHES = {"default": [], "tpe": ["--screen", "0"],
            "random": ["--sampler", "random", "--screen", "0"], "sums": []}
#: ``sums``: the default with its table stating no noise, so that the screen compares the
#: table's sums as they are, as it did before expected latencies (``Table.session_noise``).
UNSTATED_NOISE = ("import runpy, nas.latency.table as t; t.NOISE_SESSIONS = float('inf'); "
                  "runpy.run_path('search.py', run_name='__main__')")
SCREEN_METHOD = re.compile(r"screen(\d+)")  # the default with another pool: screen256
FRESH_METHOD = re.compile(r"fresh(\d+)")  # the default drawing N networks per choice: fresh64
FEWER_DRAWS = ("import runpy, nas.search.screen as s; s.REDRAWN = {redrawn}; "
               "runpy.run_path('search.py', run_name='__main__')")


def search_options(method: str) -> list[str] | None:
    """The search.py options of a method: one of SEARCHES, ``screenN`` or ``freshN`` (N at
    most the default pool); None for another."""
    if method in SEARCHES:
        return SEARCHES[method]
    if (fresh := FRESH_METHOD.fullmatch(method)) and 0 < int(fresh[1]) <= SearchSettings().screen:
        return []
    if pool := SCREEN_METHOD.fullmatch(method):
        return ["--screen", pool[1]]
    return None


def search_script(method: str) -> list[str]:
    """What the Python interpreter runs for a method: search.py, or a snippet that changes a
    constant of the screen first and then runs it."""
    if method == "sums":
        return ["-c", UNSTATED_NOISE]
    if fresh := FRESH_METHOD.fullmatch(method):
        return ["-c", FEWER_DRAWS.format(redrawn=SearchSettings().screen // int(fresh[1]))]
    return ["search.py"]


def searched(args, table: Path, method: str, seed: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as out:
        run = Path(out) / "run"
        subprocess.run([sys.executable, *search_script(method), "--space", args.space,
                        "--budget", args.budget, *search_options(method), "--seed", str(seed),
                        "--trials", "100000", "--time-budget", f"{args.seconds}s",
                        "--latency-table", str(table), "--out", str(run),
                        *(["--latency-budget", args.latency_budget] if args.latency_budget
                          else [])],
                       cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        trials = pd.read_csv(run / "trials.csv")
    return trials[trials["status"] == "complete"][OBJECTIVES + ["params", "config"]]


_data = None


def _score(config, seed: int) -> tuple[dict, float]:
    global _data
    if _data is None and SIGNALS[DEFAULT_SIGNAL].needs_measurement:
        _data = data.load()
    start = time.perf_counter()
    record, _ = measure(config, _data, SIGNALS[DEFAULT_SIGNAL], ProxySettings(threads=1), seed)
    return record, time.perf_counter() - start


def params_topk(args, table: Table, seed: int) -> pd.DataFrame:
    start = time.time()
    space = load_space(args.space)
    samples = space.sample(POOL, seed, constraints_for(space, args.budget))
    samples.sort(key=lambda s: -s.complexity.params)
    ranking, rows = SIGNALS[DEFAULT_SIGNAL], []
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        pending = []
        for i, sample in enumerate(samples):
            pending.append((sample, pool.submit(_score, sample.network, seed * 100_003 + i)))
            if len(pending) < 2:
                continue
            sample, future = pending.pop(0)
            record, _ = future.result()
            if time.time() - start > args.seconds:
                break
            latency = predict(sample.network, table, 224, 1000, Timing()).total_ms
            if record["status"] == "ok" and latency <= latency_limit(args):
                measured = {**record, **sample.complexity.totals()}
                rows.append({"accuracy": ranking.score(features(measured, ranking.features)),
                             "latency_ms": latency, "params": sample.complexity.params,
                             "config": sample.network.to_json()})
        for _, future in pending:
            future.cancel()
    return pd.DataFrame(rows, columns=[*OBJECTIVES, "params", "config"])


def ceiling(args, base: Path) -> None:
    """The stored summary, with the hypervolume a default search of ``args.ceiling`` seconds
    finds: near what any method can find at the stored reference point."""
    summary = json.loads(outputs(args)[1].read_text())
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "latency.csv"
        shutil.copy(base, table)
        found = searched(argparse.Namespace(**{**vars(args), "seconds": args.ceiling}), table,
                         "default", 0)
    volume = hypervolume(found, OBJECTIVES, summary["reference_point"])
    summary["ceiling"] = {"method": "default", "seed": 0, "wall_clock_seconds": args.ceiling,
                          "scored": len(found), "hypervolume": volume,
                          "ratio_to_random": volume / summary["median_hypervolume"]["random"]}
    print(json.dumps(summary["ceiling"], indent=2))
    outputs(args)[1].write_text(json.dumps(summary, indent=2) + "\n")


def drawn(args, base: Path) -> None:
    """The stored summary, with the hypervolume of the front of ``args.drawn`` random feasible
    networks, each scored by the signal and given the table's latency or the fit's; and, with
    ``args.local_search``, of that front improved by a local search."""
    summary = json.loads(outputs(args)[1].read_text())
    space = load_space(args.space)
    limits = constraints_for(space, args.budget)
    lookup = Lookup(Table(base, Profile()), 224, 1000)
    known, ranking = lookup.known(), SIGNALS[DEFAULT_SIGNAL]

    def scored(sample) -> dict:
        counts = sample.complexity.totals()
        ms = known(lookup.keys(sample.network))
        return {**counts, "values": sample.values,
                "accuracy": ranking.score(features(counts, ranking.features)),
                "latency_ms": None if ms is None else ms.ms}

    rows = [scored(sample) for sample in space.sample(args.drawn, 123, limits)]
    networks = pd.DataFrame(rows)
    known = networks[networks["latency_ms"].notna()]
    fit = latency_fit(known.to_dict("records"))
    fitted = pd.DataFrame([_with_latency(r, fit) for r in rows])
    known, fitted = (d[d["latency_ms"] <= latency_limit(args)] for d in (known, fitted))
    random = summary["median_hypervolume"]["random"]
    volumes = {"known": hypervolume(known, OBJECTIVES, summary["reference_point"]),
               "all": hypervolume(fitted, OBJECTIVES, summary["reference_point"])}
    summary["drawn"] = {"networks": len(networks), "known": len(known), "feasible": len(fitted),
                        "hypervolume": volumes,
                        "ratio_to_random": {k: v / random for k, v in volumes.items()}}
    if args.local_search:
        found = local_search(args, space, limits, fitted,
                             lambda sample: _with_latency(scored(sample), fit))
        volume = hypervolume(found.pop("front"), OBJECTIVES, summary["reference_point"])
        summary["drawn"]["local_search"] = {**found, "hypervolume": volume,
                                            "ratio_to_random": volume / random,
                                            "ratio_to_drawn": volume / volumes["all"]}
    print(json.dumps(summary["drawn"], indent=2))
    outputs(args)[1].write_text(json.dumps(summary, indent=2) + "\n")


def _with_latency(row: dict, fit) -> dict:
    """The row with the fit's latency where the table lacks a block."""
    return {**row, "latency_ms": fit(row)} if pd.isna(row["latency_ms"]) else row


def local_search(args, space, limits, networks: pd.DataFrame, scored) -> dict:
    """``args.local_search`` steps from the front of ``networks``, each a neighbour of a random
    member of the current front (the front recomputed every ``LOCAL_FRONT_EVERY`` steps): how
    many were feasible, the seconds taken and the final front."""
    rng = np.random.default_rng(0)
    front, added, feasible = networks[pareto_mask(networks, OBJECTIVES)], [], 0
    start = time.perf_counter()
    for step in range(1, args.local_search + 1):
        child = space.neighbour(rng, front["values"].iloc[rng.integers(len(front))], limits)
        if child is not None and (row := scored(child))["latency_ms"] <= latency_limit(args):
            feasible += 1
            added.append(row)
        if added and (step % LOCAL_FRONT_EVERY == 0 or step == args.local_search):
            front = pd.concat([front, pd.DataFrame(added)], ignore_index=True)
            front = front.drop_duplicates(OBJECTIVES)  # one of networks built alike
            front, added = front[pareto_mask(front, OBJECTIVES)], []
            print(f"local search: {step} steps, {feasible} feasible, front of {len(front)}",
                  flush=True)
    return {"steps": args.local_search, "feasible": feasible,
            "seconds": round(time.perf_counter() - start, 1), "front": front}


def near_front(found: pd.DataFrame) -> pd.DataFrame:
    """The rows no row of the front beats by more than ``NEAR_FRONT`` in latency at an
    accuracy at least theirs."""
    front = found[pareto_mask(found, OBJECTIVES)]
    accuracy, latency = (found[c].to_numpy()[:, None] for c in OBJECTIVES)
    beaten = ((front["accuracy"].to_numpy() >= accuracy)
              & (front["latency_ms"].to_numpy() * NEAR_FRONT < latency)).any(axis=1)
    return found[~beaten]


def judged(args, runs: list, base: Path, profile: Profile) -> tuple[list, dict]:
    """The runs with only their networks near their own front, each given its latency from one
    new table shared by all runs, at the stored table's speed; and how many networks and units
    that took."""
    near = [near_front(found) for _, _, found in runs]
    configs = sorted({c for found in near for c in found["config"]})
    random.Random(0).shuffle(configs)
    networks = {c: Network.from_json(c) for c in configs}
    speed = Table(base, profile).typical_probe_ms()
    with tempfile.TemporaryDirectory() as tmp:
        table = Table(Path(tmp) / "judge.csv", profile)
        added = 0
        for i, network in enumerate(networks.values(), 1):
            added += fill(table, [network], Timing())
            if i % 25 == 0 or i == len(networks):
                print(f"judge: {i} of {len(networks)} networks, {added} units timed", flush=True)
        ms = {c: predict(n, table, probe_ms=speed).total_ms for c, n in networks.items()}
    retimed = [found.assign(latency_ms=found["config"].map(ms)) for found in near]
    return ([(m, s, found[found["latency_ms"] <= latency_limit(args)])
             for (m, s, _), found in zip(runs, retimed)],
            {"networks": len(networks), "units_timed": added})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="regnet")
    p.add_argument("--budget", default="400MF")
    p.add_argument("--latency-budget", help="also a ceiling on predicted latency, e.g. 10ms")
    p.add_argument("--seconds", type=positive, default=SECONDS,
                   help=f"wall-clock per run (default {SECONDS})")
    p.add_argument("--seeds", type=positive, default=5)
    p.add_argument("--table-networks", type=positive, default=200,
                   help="networks whose blocks fill the latency table first (default 200)")
    p.add_argument("--table-sessions", type=positive, default=1,
                   help="measurements of each unit in that table (nas latency build --sessions; "
                        "default 1)")
    p.add_argument("--methods", default="default,tpe,random,params_topk")
    p.add_argument("--name", help="a suffix of the result files' names, e.g. screens")
    p.add_argument("--update", action="store_true",
                   help="measure only --methods again, keeping the other methods' results and "
                        "the reference point of the stored run")
    p.add_argument("--ceiling", type=positive, metavar="SECONDS",
                   help="only add the hypervolume a default search this long finds")
    p.add_argument("--drawn", type=positive, metavar="N",
                   help="only add the hypervolume N random feasible networks hold")
    p.add_argument("--local-search", type=positive, metavar="STEPS",
                   help="with --drawn: also improve the drawn front by this many steps of a "
                        "local search")
    p.add_argument("--judge", action="store_true",
                   help="also score every run's front by latencies timed again in one table")
    args = p.parse_args()
    if args.judge and args.update:
        p.error("--judge measures every method's runs together: it cannot --update")
    if args.local_search and not args.drawn:
        p.error("--local-search starts from the front of --drawn N networks")
    unknown = [m for m in args.methods.split(",")
               if m != "params_topk" and search_options(m) is None]
    if unknown:  # before the table is built
        p.error(f"unknown method {', '.join(unknown)}: choose from {', '.join(SEARCHES)}, "
                "params_topk, screenN or freshN")
    load_before = os.getloadavg()
    profile = Profile()
    sessions = f"_s{args.table_sessions}" if args.table_sessions > 1 else ""
    base = (ROOT / "results" / "latency"
            / f"search-quality{setting(args)}{sessions}-{profile.name()}.csv")
    subprocess.run([sys.executable, "-m", "nas.cli", "latency", "build", "--space", args.space,
                    "--budget", args.budget, "-n", str(args.table_networks),
                    "--sessions", str(args.table_sessions),
                    "--latency-table", str(base)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    if args.ceiling:
        return ceiling(args, base)
    if args.drawn:
        return drawn(args, base)
    csv_path, json_path = outputs(args)
    runs = []
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            with tempfile.TemporaryDirectory() as tmp:  # every run starts from the same table
                table = Path(tmp) / "latency.csv"
                shutil.copy(base, table)
                found = (params_topk(args, Table(table, profile), seed)
                         if method == "params_topk" else searched(args, table, method, seed))
            runs.append((method, seed, found))
            print(f"{method} seed {seed}: {len(found)} candidates scored", flush=True)
    kept = pd.DataFrame()
    if args.update:  # the other methods' rows stay; the new runs use their reference point
        kept = pd.read_csv(csv_path)
        kept = kept[~kept["method"].isin(args.methods.split(","))]
        reference = json.loads(json_path.read_text())["reference_point"]
    else:
        everything = pd.concat([f for _, _, f in runs])
        reference = [float(everything["accuracy"].min()), float(everything["latency_ms"].max())]
    rows = [{"method": m, "seed": s, "scored": len(f),
             "hypervolume": hypervolume(f, OBJECTIVES, reference) if len(f) else 0.0,
             "best_accuracy": float(f["accuracy"].max()) if len(f) else None}
            for m, s, f in runs]
    if args.judge:
        retimed, judge_work = judged(args, runs, base, profile)
        for row, (_, _, found) in zip(rows, retimed):
            row["judged_hypervolume"] = (hypervolume(found, OBJECTIVES, reference)
                                         if len(found) else 0.0)
    table_out = pd.concat([kept, pd.DataFrame(rows)], ignore_index=True)
    table_out.to_csv(csv_path, index=False)
    print(table_out.to_string(index=False))
    medians = {m: statistics.median(g["hypervolume"]) for m, g in table_out.groupby("method")}
    summary = {"seeds": args.seeds, "wall_clock_seconds": args.seconds, "space": args.space,
               "budget": args.budget, "latency_budget": args.latency_budget,
               "table_sessions": args.table_sessions, "signal": DEFAULT_SIGNAL,
               "objectives": OBJECTIVES,
               "load_average_before_after": [load_before[0], os.getloadavg()[0]],
               "reference_point": reference, "median_hypervolume": medians,
               "median_scored": {m: statistics.median(g["scored"])
                                 for m, g in table_out.groupby("method")},
               "ratio_to_random": {m: v / medians["random"] for m, v in medians.items()}
               if medians.get("random") else None}
    if args.judge:
        judged_medians = {m: statistics.median(g["judged_hypervolume"])
                          for m, g in table_out.groupby("method")}
        summary["judged"] = {**judge_work, "median_hypervolume": judged_medians,
                             "ratio_to_random": {m: v / judged_medians["random"]
                                                 for m, v in judged_medians.items()}
                             if judged_medians.get("random") else None}
    print(json.dumps(summary, indent=2))
    json_path.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
