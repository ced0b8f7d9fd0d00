"""Fidelity against full training: how well each accuracy signal ranks networks whose fully
trained errors are published (``../shared/ground_truth``, or ``NAS_GROUND_TRUTH``).

Five sets. ``cifar10``: 29 CIFAR-10 networks (ResNeXt-20/29/56/272, ResNet/SE-ResNet-542,
ResNet-1001, DenseNet-BC) with their published errors. ``imagenet_regnet``: RegNetX/Y from
200MF to 1.6GF with pycls's ImageNet errors, the case the product exists for (a CIFAR-10 proxy
choosing ImageNet-scale networks); each is measured through its CIFAR-10 proxy network, as the
search measures a candidate. ``cifar10_extra`` (``benchmarks/ground_truth``): 33 more CIFAR-10
networks of the same source (ResNet, PreResNet and their SE variants from 20 to 1,202 layers,
DenseNet with and without BC, Wide ResNet, ResNeXt-29), added after every ranking model was
fitted, so held out whole; ``cifar10_with_extra`` ranks them together with ``cifar10``'s
held-out part. ``imagenet_pycls`` (``benchmarks/ground_truth``): 20 more ImageNet networks of
pycls's recipe, RegNetX/Y from 3.2GF to 32GF and ResNet/ResNeXt-50/101/152, added at the same
time; ``imagenet_with_pycls`` ranks them together with ``imagenet_regnet``, and
``imagenet_regnets`` the RegNets of both (12 pairs of RegNetY and RegNetX of equal FLOPs). A
fifth, ``regnet_400mf``, holds the 16 RegNets of ``benchmarks/proxy_fidelity.py`` within 400MF,
judged by its longer full-width training.

Signals, each oriented so that higher means more accurate:
- ``flops``, ``params``: analytic counts of the network as it is fully trained (free);
- ``synflow``, ``naswot``, ``grad_norm``, ``snip``: zero-cost scores at initialisation of the
  proxy network (width 0.5) on one batch of 64 training images (``nas.evaluate.zero_cost``);
- ``proxy``: the search's proxy training (``nas.evaluate.proxy``, default settings, one torch
  thread, two trainings at a time), its validation top-1; ``proxy_loss``: minus its validation
  loss; ``sotl``: minus the sum of training losses over its last epoch (SoTL-E);
- ``rank:<features>``: the signals that the search can use (``nas.evaluate.signal``), with
  weights fitted here on the tuning part of ``cifar10`` only.

Held out: ``cifar10``'s networks are split in FLOPs order, every other one to the tuning part
(the first, third, ...), the rest held out; every figure reported for ``cifar10`` is on the
held-out part, and the other sets are held out whole. ``noise_ceiling`` is the tau a perfect
predictor of the expected error would reach on each CIFAR-10 part, given the run-to-run noise of
the published errors. The proxy trainings cost minutes per network for the deep CIFAR-10
networks, so ``proxy``, ``proxy_loss``, ``sotl`` and the rankings using them are measured on
``TRAINED`` (the networks up to 900MF); each result lists FLOPs' and params' tau on the same
networks beside it. Intervals are bootstrap 95% percentiles over the networks;
``minus_same_networks_ci`` is the interval of a signal's tau minus FLOPs' (params') on the same
resamples. ``pick_within_budget`` is what a user gets from the signal: under each FLOPs budget
(each network's own FLOPs), whether the network it ranks first is the best there by published
error, and the mean excess error of its pick (``pick_same_networks``: FLOPs' and params' picks).
``cifar10_both_halves`` holds each half of ``cifar10`` out in turn: every network scored by the
ranking model fitted on the other half, all ranked together (a raw signal: all networks).
``cifar10_refit_with_extra`` fits each ranking model afresh on every other network of both
CIFAR-10 sets in FLOPs order and reports it on the rest (``refit_split``; a raw signal: the same
rest). ``--fidelity NAME ...`` trains the alternative proxies of ``FIDELITIES`` as well,
``--sets imagenet_regnet`` trains the networks of that set only (``cifar10``: of ``TRAINED``;
``imagenet_pycls`` is not trained: by the 1.6GF networks' 50 s, a 32GF network's proxy would
take a quarter of an hour), and ``--second-seed`` trains each network of ``imagenet_regnet``
with a second seed (``fidelity_seeds``: tau by each seed and by their mean). The zero-cost
scores are measured for every network of every set.

Every measurement is appended to ``proxy_ground_truth_runs.csv`` as it ends (a cut run resumes);
the summary is ``proxy_ground_truth.json`` and the per-network table ``proxy_ground_truth.csv``.

    NAS_DATA=... nice -n 5 python benchmarks/proxy_ground_truth.py [--workers 2] [--fidelity F ...]
        [--sets imagenet_regnet] [--second-seed]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nas.config import Network
from nas.evaluate import data, proxy, ranking, signal, zero_cost
from nas.generators import from_spec, load_network
from nas.network import build, complexity

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "proxy_ground_truth_runs.csv"
TRUTH = Path(os.environ.get("NAS_GROUND_TRUTH", ROOT.parent / "shared" / "ground_truth"))
EXTRA = ROOT / "benchmarks" / "ground_truth"  # cifar10_extra, imagenet_pycls: its README
PROXY = proxy.ProxySettings(threads=1)
FIDELITIES = {  # alternative proxies: name -> changed settings
    "proxy": {},  # the search's: width 0.25, 4 epochs on 5,000 images
    "width0.5x2ep": {"width_mult": 0.5, "epochs": 2},  # the search's until 2026-12
    "width0.5x10kx4ep": {"width_mult": 0.5, "train_images": 10000},  # 4x its image-steps
}
TRAINED = (  # the cifar10 networks proxy-trained: four of each part, ResNeXt-20/56, DenseNet-BC
    "densenet100_k12_bc", "resnext20_8x8d", "resnext20_1x64d", "resnext56_64x1d",  # tuning
    "resnext20_32x2d", "resnext20_4x16d", "densenet40_k36_bc", "resnext56_32x2d")  # held out
NOISE = ("RegNetX-400MF", "RegNetY-400MF", "RegNetX-800MF", "resnext20_32x2d")  # seed 1 too
FIELDS = ("set", "model", "measure", "seed", "status", "reason", "seconds", *zero_cost.SCORES,
          "top1", "loss", "sotl")
BOOTSTRAP = 2000
RUN_NOISE = 0.15  # sd of one full training's top-1 error, points (its README: 0.1 to 0.2)
SETS = ("cifar10", "imagenet_regnet", "regnet_400mf", "cifar10_extra", "imagenet_pycls")
COMBINED = {  # parts of several sets, held out and ranked together: name -> which rows
    "cifar10_with_extra": lambda r: r["set"] in ("cifar10", "cifar10_extra"),
    "imagenet_with_pycls": lambda r: r["set"] in ("imagenet_regnet", "imagenet_pycls"),
    "imagenet_regnets": lambda r: r["set"].startswith("imagenet") and "RegNet" in r["model"]}
PARTS = (*SETS, *COMBINED)  # every set's held-out part, and the combinations
POOL_PROXY: dict[str, tuple[float, float]] = {}  # regnet_400mf: proxy top-1 and seconds, as run


@dataclasses.dataclass(frozen=True)
class Truth:
    set: str
    model: str
    error: float
    network: Network
    counts: dict[str, int]  # flops, params, acts, mac of the network as fully trained

    @property
    def flops(self) -> int:
        return self.counts["flops"]


def ground_truth() -> list[Truth]:
    nets = []
    for name, folder, resolution, classes in (("cifar10", TRUTH, 32, 10),
                                              ("cifar10_extra", EXTRA, 32, 10),
                                              ("imagenet_pycls", EXTRA, 224, 1000)):
        with open(folder / f"{name}.csv") as f:
            for r in csv.DictReader(f):
                net = load_network(folder / r["config"])
                cx = complexity(net, resolution, classes)
                assert (cx.flops, cx.params) == (int(r["flops"]), int(r["params"])), r["model"]
                nets.append(Truth(name, r["model"], float(r["top1_error"]), net, cx.totals()))
    with open(TRUTH / "imagenet_regnet.csv") as f:
        for r in csv.DictReader(f):
            spec = {"generator": "regnet", "d": int(r["d"]), "w0": int(r["w0"]),
                    "wa": float(r["wa"]), "wm": float(r["wm"]), "group_w": int(r["group_w"]),
                    "se": float(r["se"])}
            net = from_spec(spec)
            cx = complexity(net, 224, 1000)
            assert (cx.flops, cx.params) == (int(r["flops"]), int(r["params"])), r["model"]
            nets.append(Truth("imagenet_regnet", r["model"], float(r["top1_error"]), net,
                              cx.totals()))
    with open(RESULTS / "proxy_fidelity.csv") as f:  # within one budget: a longer training
        for r in csv.DictReader(f):
            net = from_spec({"generator": "regnet",
                             **{k: int(r[k]) for k in ("d", "w0", "group_w")},
                             **{k: float(r[k]) for k in ("wa", "wm")}})
            nets.append(Truth("regnet_400mf", f"pool{r['index']}", 100 - float(r["reference_top1"]),
                              net, complexity(net, 224, 1000).totals()))
            POOL_PROXY[f"pool{r['index']}"] = (float(r["proxy_top1"]), float(r["proxy_seconds"]))
    return nets


def tuning(nets: list[Truth]) -> set[str]:
    """Every other cifar10 network in FLOPs order, starting with the first."""
    ordered = sorted((t for t in nets if t.set == "cifar10"), key=lambda t: t.flops)
    return {t.model for t in ordered[::2]}


def held_out(rows: list[dict], part: str, tune: set[str]) -> list[dict]:
    """The rows of a part (``PARTS``) that no ranking model was fitted on."""
    member = COMBINED.get(part, lambda r: r["set"] == part)
    return [r for r in rows if member(r) and r["model"] not in tune]


def trained(t: Truth) -> bool:
    return t.set == "imagenet_regnet" or t.model in TRAINED  # regnet_400mf: proxy_fidelity.py


# --- measuring ---------------------------------------------------------------------------

_data = None


def _measure(config: dict, measure: str, seed: int) -> dict:
    """One measurement in a worker process, which memory-maps the data once."""
    global _data
    _data = _data or data.load()
    net = Network.from_dict(config)
    if measure == "zero_cost":
        torch.set_num_threads(1)
        x, y = signal.score_batch(_data)
        torch.manual_seed(seed)
        model = build(proxy.proxy_network(net, signal.ZERO_COST_WIDTH), proxy.NUM_CLASSES)
        start = time.perf_counter()
        result = zero_cost.scores(model, x, y)
        return {"status": "ok", "seconds": time.perf_counter() - start, **result}
    settings = dataclasses.replace(PROXY, **FIDELITIES[measure])
    r = proxy.evaluate(net, _data, settings, seed)
    return {"status": r.status, "reason": r.reason, "seconds": r.seconds, "top1": r.top1,
            "loss": r.loss, "sotl": r.sotl}


def done() -> dict[tuple, dict]:
    if not RUNS.exists():
        return {}
    with open(RUNS) as f:
        return {(r["set"], r["model"], r["measure"], int(r["seed"])): r for r in csv.DictReader(f)}


def jobs(nets: list[Truth], fidelities: list[str], sets: tuple[str, ...] = SETS,
         second_seed: bool = False) -> list[tuple[Truth, str, int]]:
    """Cheap first: zero-cost scores, then trainings (of ``sets`` only) from the smallest
    network up; with ``second_seed``, every imagenet_regnet training again with seed 1."""
    by_cost = sorted(nets, key=lambda t: (t.set != "imagenet_regnet", t.flops))
    todo = [(t, "zero_cost", seed) for seed in (0, 1) for t in by_cost]
    by_cost = [t for t in by_cost if t.set in sets]
    for measure in fidelities:
        todo += [(t, measure, seed) for seed in (0, 1)[:1 + second_seed] for t in by_cost
                 if trained(t) and t.set != "cifar10"]
    todo += [(t, "proxy", 1) for t in by_cost if t.model in NOISE and t.set != "cifar10"]
    for measure in fidelities:
        todo += [(t, measure, 0) for t in by_cost if trained(t) and t.set == "cifar10"]
    todo += [(t, "proxy", 1) for t in by_cost if t.model in NOISE and t.set == "cifar10"]
    return list({(t.set, t.model, m, s): (t, m, s) for t, m, s in todo}.values())


def run(todo: list[tuple[Truth, str, int]], workers: int) -> None:
    finished = done()
    todo = [(t, m, s) for t, m, s in todo if (t.set, t.model, m, s) not in finished]
    RESULTS.mkdir(exist_ok=True)
    new = not RUNS.exists()
    with open(RUNS, "a", newline="") as f, ProcessPoolExecutor(
            workers, mp_context=get_context("spawn")) as pool:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        futures = {pool.submit(_measure, t.network.to_dict(), m, s): (t, m, s)
                   for t, m, s in todo}
        for future in as_completed(futures):
            t, m, s = futures[future]
            row = {"set": t.set, "model": t.model, "measure": m, "seed": s, **future.result()}
            writer.writerow(row)
            f.flush()
            print(f"{t.set} {t.model} {m} seed {s}: {row['status']} in {row['seconds']:.1f}s "
                  f"{row.get('top1', '')}", flush=True)


# --- summarizing -------------------------------------------------------------------------

def kendall(truth, guess) -> float:
    return float(kendalltau(truth, guess).statistic)


def interval(truth: np.ndarray, guess: np.ndarray, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(truth), len(truth))
        if len(set(truth[i])) > 1 and len(set(guess[i])) > 1:
            taus.append(kendall(truth[i], guess[i]))
    return [round(float(np.percentile(taus, 2.5)), 3), round(float(np.percentile(taus, 97.5)), 3)]


def difference_interval(truth: np.ndarray, guess: np.ndarray, other: np.ndarray,
                        seed: int = 0) -> list[float]:
    """Bootstrap 95% interval of tau(guess) - tau(other), both on each resample of the
    networks: whether a signal ranks better than another on the same networks."""
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(truth), len(truth))
        if min(len(set(truth[i])), len(set(guess[i])), len(set(other[i]))) > 1:
            differences.append(kendall(truth[i], guess[i]) - kendall(truth[i], other[i]))
    return [round(float(np.percentile(differences, q)), 3) for q in (2.5, 97.5)]


def picks(rows: list[dict], values: list[float]) -> dict:
    """What a user gets from the signal: under each FLOPs budget (one per network, its own
    FLOPs; two networks or more within it) the network the signal ranks first, against the
    best there by published error: how often it is the best, and its mean excess error."""
    excess = []
    for budget in sorted({r["flops"] for r in rows}):
        within = [(r, v) for r, v in zip(rows, values) if r["flops"] <= budget]
        if len(within) > 1:
            chosen = max(within, key=lambda rv: rv[1])[0]
            excess.append(chosen["top1_error"] - min(r["top1_error"] for r, _ in within))
    return {"budgets": len(excess), "best_picked": sum(e == 0 for e in excess),
            "mean_excess_error": round(statistics.mean(excess), 3)}


def table(nets: list[Truth], rows: dict[tuple, dict]) -> list[dict]:
    """One row per network: its error and every raw signal measured (higher: more accurate)."""
    out = []
    for t in nets:
        row = {"set": t.set, "model": t.model, "top1_error": t.error, **t.counts}
        zc = rows.get((t.set, t.model, "zero_cost", 0))
        if zc:
            row.update({k: float(zc[k]) for k in zero_cost.SCORES})
            row["zero_cost_seconds"] = float(zc["seconds"])
        for measure in FIDELITIES:
            r = rows.get((t.set, t.model, measure, 0))
            if r and r["status"] == "ok":
                prefix = "" if measure == "proxy" else f"{measure}:"
                row.update({f"{prefix}proxy": float(r["top1"]),
                            f"{prefix}proxy_loss": -float(r["loss"]),
                            f"{prefix}sotl": -float(r["sotl"]),
                            f"{prefix}proxy_seconds": float(r["seconds"])})
        if t.model in POOL_PROXY:
            row["proxy"], row["proxy_seconds"] = POOL_PROXY[t.model]
        noise = rows.get((t.set, t.model, "proxy", 1))
        if noise and noise["status"] == "ok":
            row["proxy_seed1"] = float(noise["top1"])
        out.append(row)
    return out


def cost_columns(features: tuple[str, ...]) -> list[str]:
    """The per-network seconds a ranking model's features cost."""
    return ((["zero_cost_seconds"] if any(f in zero_cost.SCORES for f in features) else [])
            + (["proxy_seconds"] if any(f in ranking.TRAINED for f in features) else []))


def scored(rows: list[dict], values: list[float], seconds: float) -> dict:
    """Kendall tau (with interval), Spearman rho, and FLOPs' and params' tau on the same
    networks, over the rows that have the signal."""
    have = [(r, v) for r, v in zip(rows, values) if math.isfinite(v)]
    if len(have) < 3:
        return {}
    truth = np.array([-r["top1_error"] for r, _ in have])
    guess = np.array([v for _, v in have])
    result = {"n": len(have), "kendall_tau": round(kendall(truth, guess), 3),
              "kendall_tau_ci": interval(truth, guess),
              "spearman_rho": round(float(spearmanr(truth, guess).statistic), 3),
              "seconds_per_candidate": round(seconds, 2),
              "same_networks": {c: round(kendall(truth, [r[c] for r, _ in have]), 3)
                                for c in ("flops", "params")},
              "minus_same_networks_ci": {
                  c: difference_interval(truth, guess, np.array([r[c] for r, _ in have]))
                  for c in ("flops", "params")},
              "pick_within_budget": picks([r for r, _ in have], list(guess)),
              "pick_same_networks": {c: picks([r for r, _ in have], [r[c] for r, _ in have])
                                     for c in ("flops", "params")}}
    if any("RegNetY" in r["model"] for r, _ in have):
        by_model = {r["model"]: v for r, v in have}
        pairs = [(y, x) for y in by_model if "RegNetY" in y
                 and (x := y.replace("RegNetY", "RegNetX")) in by_model]
        result["y_over_x_pairs"] = sum(by_model[y] > by_model[x] for y, x in pairs)
        result["pairs_of_equal_flops"] = len(pairs)
    return result


def ranking_of(rows: list[dict], features: tuple[str, ...]) -> ranking.Ranking:
    return ranking.Ranking.fit(features, [ranking.features(r, features) for r in rows],
                              [r["top1_error"] for r in rows])


def tuning_tau(fit: list[dict], features: tuple[str, ...]) -> dict:
    """Kendall tau of leave-one-out predictions on the tuning networks: how a ranking model
    is chosen without looking at the held-out ones."""
    loo = [ranking_of(fit[:i] + fit[i + 1:], features).score(ranking.features(r, features))
           for i, r in enumerate(fit)]
    return {"n": len(fit), "kendall_tau": round(kendall([-r["top1_error"] for r in fit], loo), 3),
            "method": "leave-one-out"}


def both_halves(rows: list[dict], tune: set[str], features: tuple[str, ...]) -> dict:
    """Both halves of cifar10 held out in turn: each network scored by the model fitted on the
    other half, and all of them ranked together. Twice the held-out networks of the fixed
    split, at the price of mixing two fits in one ranking; the features were still chosen on
    the tuning half alone."""
    part = [r for r in rows if r["set"] == "cifar10" and ranking.available(r, features)]
    halves = [r for r in part if r["model"] in tune], [r for r in part if r["model"] not in tune]
    values = {}
    for fit, held in (halves, halves[::-1]):
        if len(fit) <= len(features) + 1:
            return {}
        model = ranking_of(fit, features)
        values.update({r["model"]: model.score(ranking.features(r, features)) for r in held})
    cost = sum(mean_seconds(part, c) for c in cost_columns(features))
    return scored(part, [values[r["model"]] for r in part], cost)


def noise_ceiling(rows: list[dict], draws: int = 500) -> float:
    """The median Kendall tau that a perfect predictor of each network's expected error would
    reach against errors published from one training run each, each off by ``RUN_NOISE``
    (a standard deviation): how far any signal could go on these networks."""
    errors = np.array([r["top1_error"] for r in rows])
    rng = np.random.default_rng(0)
    return round(float(np.median([kendall(errors, errors + rng.normal(0, RUN_NOISE, len(errors)))
                                  for _ in range(draws)])), 3)


def refit_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The CIFAR-10 networks of both sets in FLOPs order (then by name): every other one, the
    first, third, ..., to fit on, the rest held out."""
    ordered = sorted((r for r in rows if r["set"] in ("cifar10", "cifar10_extra")),
                     key=lambda r: (r["flops"], r["model"]))
    return ordered[::2], ordered[1::2]


def refit(rows: list[dict], features: tuple[str, ...]) -> dict:
    """A ranking model fitted on half of both CIFAR-10 sets (``refit_split``) and scored on the
    other half, with its leave-one-out tau on the half it was fitted on and its tau on the
    ImageNet RegNets."""
    fit, held = ([r for r in part if ranking.available(r, features)]
                 for part in refit_split(rows))
    if len(fit) <= len(features) + 1:
        return {}
    model = ranking_of(fit, features)
    cost = sum(mean_seconds(held, c) for c in cost_columns(features))
    result = scored(held, [model.score(ranking.features(r, features)) for r in held], cost)
    regnets = [r for r in rows if r["set"] == "imagenet_regnet" and ranking.available(r, features)]
    return result and {**result, "tuning": tuning_tau(fit, features),
                       "imagenet_regnet_kendall_tau": round(kendall(
                           [-r["top1_error"] for r in regnets],
                           [model.score(ranking.features(r, features)) for r in regnets]), 3)}


def mean_seconds(rows: list[dict], column: str) -> float:
    values = [r[column] for r in rows if column in r]
    return statistics.mean(values) if values else 0.0


def zero_cost_seed_noise(rows: list[dict], runs: dict[tuple, dict],
                         fitted: dict[str, ranking.Ranking], tune: set[str]) -> dict:
    """The zero-cost scores of a second initialisation (seed 1): each score's Kendall tau with
    seed 0's over every network, and each fitted ranking using one scored on cifar10's held-out
    networks with seed 1's scores (the weights fitted on seed 0's)."""
    again = [dict(r, **{k: float(z[k]) for k in zero_cost.SCORES}) for r in rows
             if (z := runs.get((r["set"], r["model"], "zero_cost", 1)))]
    if not again:
        return {}
    first = {(r["set"], r["model"]): r for r in rows}
    result = {"n": len(again), "kendall_tau_between_seeds": {
        k: round(kendall([first[r["set"], r["model"]][k] for r in again], [r[k] for r in again]),
                 3) for k in zero_cost.SCORES}}
    held = [r for r in again if r["set"] == "cifar10" and r["model"] not in tune]
    result["cifar10_held_out_tau_seed1"] = {
        name: round(kendall([-r["top1_error"] for r in held],
                            [m.score(ranking.features(r, m.features)) for r in held]), 3)
        for name, m in fitted.items() if m.zero_cost and not m.needs_training}
    return result


def fidelity_seeds(nets: list[Truth], runs: dict[tuple, dict]) -> dict:
    """Each proxy training's Kendall tau on the ImageNet RegNets by the top-1 of seed 0, of
    seed 1, and of their mean, where every network was trained with both seeds."""
    regnets = [t for t in nets if t.set == "imagenet_regnet"]
    result = {}
    for measure in FIDELITIES:
        top1 = [[runs.get((t.set, t.model, measure, seed), {}) for t in regnets]
                for seed in (0, 1)]
        if not all(r.get("status") == "ok" for seed in top1 for r in seed):
            continue
        truth = [-t.error for t in regnets]
        seeds = [[float(r["top1"]) for r in seed] for seed in top1]
        result[measure] = {"n": len(regnets), **{
            f"kendall_tau_seed{s}": round(kendall(truth, seeds[s]), 3) for s in (0, 1)},
            "kendall_tau_mean_of_seeds": round(kendall(truth, np.mean(seeds, 0)), 3),
            "mean_abs_top1_difference": round(float(np.mean(np.abs(np.subtract(*seeds)))), 3)}
    return result


def summarize(nets: list[Truth], runs: dict[tuple, dict]) -> dict:
    rows = table(nets, runs)
    tune = tuning(nets)
    raw = ["flops", "params", "acts", "mac", *zero_cost.SCORES]
    for measure in FIDELITIES:
        prefix = "" if measure == "proxy" else f"{measure}:"
        raw += [f"{prefix}proxy", f"{prefix}proxy_loss", f"{prefix}sotl"]
    signals: dict[str, dict] = {}
    for name in raw:
        cost = ("zero_cost_seconds" if name in zero_cost.SCORES else
                name.rsplit(":", 1)[0] + ":proxy_seconds" if ":" in name else
                "proxy_seconds" if "proxy" in name or name == "sotl" else None)
        for s in PARTS:
            part = held_out(rows, s, tune)
            result = scored(part, [r.get(name, math.nan) for r in part],
                            mean_seconds(part, cost) if cost else 0.0)
            if result:
                signals.setdefault(name, {})[s] = result
    fitted = {}
    for features in ranking.CANDIDATES:
        name = ranking.name(features)
        fit = [r for r in rows if r["model"] in tune and ranking.available(r, features)]
        if len(fit) <= len(features) + 1:
            continue
        fitted[name] = ranking_of(fit, features)
        for s in PARTS:
            part = held_out(rows, s, tune)
            values = [fitted[name].score(ranking.features(r, features))
                      if ranking.available(r, features) else math.nan for r in part]
            cost = sum(mean_seconds(part, c) for c in cost_columns(features))
            result = scored(part, values, cost)
            if result:
                signals.setdefault(name, {})[s] = {**result, "tuned_on": len(fit)}
        signals[name]["tuning"] = tuning_tau(fit, features)
        crossed = both_halves(rows, tune, features)
        if crossed:
            signals[name]["cifar10_both_halves"] = crossed
        if refitted := refit(rows, features):
            signals[name]["cifar10_refit_with_extra"] = refitted
    every_cifar10 = [r for r in rows if r["set"] == "cifar10"]
    refit_held = refit_split(rows)[1]
    for name in raw:
        if name in signals and (crossed := scored(
                every_cifar10, [r.get(name, math.nan) for r in every_cifar10], 0.0)):
            signals[name]["cifar10_both_halves"] = crossed
        if name in signals and (result := scored(
                refit_held, [r.get(name, math.nan) for r in refit_held], 0.0)):
            signals[name]["cifar10_refit_with_extra"] = result
        fit = [r for r in rows if r["model"] in tune and math.isfinite(r.get(name, math.nan))]
        if name in signals and len(fit) >= 3:
            signals[name]["tuning"] = {"n": len(fit), "kendall_tau": round(kendall(
                [-r["top1_error"] for r in fit], [r[name] for r in fit]), 3)}
    noise = [(r["proxy"], r["proxy_seed1"]) for r in rows if "proxy_seed1" in r and "proxy" in r]
    zero_cost_noise = zero_cost_seed_noise(rows, runs, fitted, tune)
    return {"default": ranking.name(ranking.SIGNALS[ranking.DEFAULT_SIGNAL].features),
            "held_out": "cifar10: every other network in FLOPs order, starting with the second; "
                        "imagenet_regnet, cifar10_extra, imagenet_pycls: all (nothing is "
                        "fitted on them); cifar10_with_extra: cifar10's held-out part and "
                        "cifar10_extra; imagenet_with_pycls: imagenet_regnet and imagenet_pycls; "
                        "imagenet_regnets: the RegNets of both; cifar10_refit_with_extra: every "
                        "other network of both CIFAR-10 sets in FLOPs order (refit on the rest)",
            "tuning_networks": sorted(tune),
            "proxy_seed_noise": {
                "n": len(noise),
                "mean_abs_top1_difference": round(statistics.mean(abs(a - b) for a, b in noise), 3)
                if noise else None,
                "networks": [r["model"] for r in rows if "proxy_seed1" in r]},
            "zero_cost_seed_noise": zero_cost_noise,
            "noise_ceiling": {
                "run_noise": RUN_NOISE,
                **{part: noise_ceiling(held_out(rows, part, tune))
                   for part in ("cifar10", "cifar10_extra", "cifar10_with_extra")},
                "cifar10_both_halves": noise_ceiling(
                    [r for r in rows if r["set"] == "cifar10"])},
            "fidelity_seeds": fidelity_seeds(nets, runs),
            "fitted": {name: dataclasses.asdict(m) for name, m in fitted.items()},
            "proxy": PROXY.to_dict(), "fidelities": FIDELITIES,
            "timing": "seconds per network, one torch thread, two measurements at a time on a "
                      "2-core machine shared with other work", "signals": signals}, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="parallel measurements (default 2)")
    p.add_argument("--fidelity", nargs="*", choices=FIDELITIES, default=["proxy"],
                   help="proxy trainings to measure (default: the search's proxy)")
    p.add_argument("--sets", nargs="*", choices=SETS[:2], default=SETS[:2],
                   help="the sets whose networks are proxy-trained (default: both)")
    p.add_argument("--second-seed", action="store_true",
                   help="train every imagenet_regnet network with a second seed as well")
    p.add_argument("--summary-only", action="store_true", help="measure nothing new")
    args = p.parse_args()
    nets = ground_truth()
    if not args.summary_only:
        run(jobs(nets, args.fidelity, tuple(args.sets), args.second_seed), args.workers)
    summary, rows = summarize(nets, done())
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(RESULTS / "proxy_ground_truth.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "proxy_ground_truth.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, sets in summary["signals"].items():
        print(f"{name:48s}", f"tune {sets['tuning']['kendall_tau']:+.2f} " if "tuning" in sets
              else " " * 11, "  ".join(
                  f"{s}: tau {v['kendall_tau']:+.2f} {v['kendall_tau_ci']} n={v['n']}"
                  + (f" Y>X {v['y_over_x_pairs']}/{v['pairs_of_equal_flops']}"
                     if "y_over_x_pairs" in v else "")
                  for s, v in sets.items() if s != "tuning"))


if __name__ == "__main__":
    main()
