"""The study of a search: Optuna asks, analytic limits reject, signals score, Optuna learns.

The Optuna study lives in an append-only journal file in the run folder, so a run killed at
any point (even ``kill -9``) keeps every told trial; reopening it re-queues the trials that were
running. Every trial's record (costs, config, result, timings) is a user attribute of its Optuna
trial, and the tables of the run folder are rewritten from the study as trials end.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nas.errors import ConfigError, NasError, excerpt
from nas.evaluate.data import load, stratified_split
from nas.evaluate.ranking import SIGNALS, features
from nas.evaluate.zero_cost import SCORES
from nas.network import complexity
from nas.search.pareto import OBJECTIVES
from nas.search.results import status, write_run_yaml, write_tables
from nas.search.screen import Lookup, Screen
from nas.search.settings import SearchSettings
from nas.spaces import Constraints, constraints_for, load_space

MAX_REJECTED = 20_000  # consecutive analytic rejections before a run gives up
TABLES_EVERY = 2.0  # seconds between rewrites of the run's tables while trials end
NOTHING_MEASURED = {"status": "ok", "reason": ""}  # the measurement of an analytic signal
STARTUP_POOL = 64  # the draws a random start without a screen chooses among


class SearchError(NasError):
    """A search that cannot go on (every trial failing, a space the limits exclude)."""


@dataclass
class Running:
    trial: optuna.trial.Trial
    actor: Any
    submitted: float


@dataclass
class Search:
    settings: SearchSettings
    run_dir: Path
    study: optuna.Study = field(init=False)
    tables_written: float = 0.0  # when the run's tables were last rewritten

    def __post_init__(self):
        s = self.settings.check()
        self.space = load_space(s.space)
        self.limits = s.limits()
        self.constraints = _with_limits(
            constraints_for(self.space, s.budget, s.band, s.resolution, s.num_classes),
            self.limits)
        next(self.space.feasible(s.seed, self.constraints))  # Infeasible, quickly, if nothing fits
        if SIGNALS[s.signal].needs_measurement:
            data = load(s.data)  # a missing or corrupt data set fails here, before Ray starts
            stratified_split(data.train_labels, s.proxy.train_images, s.proxy.val_images,
                             s.proxy.split_seed)  # and a split it cannot give
        self.table = _latency_table(s) if s.uses_latency() else None

    # --- the study ------------------------------------------------------------------------

    def open_study(self) -> None:
        s = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True)
        journal = self.run_dir / "study.journal"
        resuming = journal.exists()
        storage = JournalStorage(JournalFileBackend(str(journal)))
        done = len(optuna.load_study(study_name="search", storage=storage).trials) \
            if resuming else 0
        self.study = optuna.create_study(
            study_name="search", storage=storage, load_if_exists=True,
            directions=["maximize" if OBJECTIVES[c] else "minimize" for c in s.columns],
            sampler=_sampler(s.sampler, s.seed + done, s.trials))
        lookup = (Lookup(self.table, s.resolution, s.num_classes) if self.table is not None
                  else None)
        draws = self.space.feasible(s.seed + done, self.constraints)
        budget = self.limits.get("latency_ms", math.inf)
        self.screen = Screen(draws, s.screen, s.columns, lookup, budget) if s.screen else None
        self.startup = (Screen(draws, STARTUP_POOL, s.columns, lookup, budget)
                        if not s.screen and s.sampler != "random" else None)
        _keep_study_settings(self.study, s, self.run_dir)
        self.interrupt()  # the trials a killed run left running
        trials = self.study.get_trials(deepcopy=False)
        requeued = {t.user_attrs.get("requeued_from") for t in trials}
        for trial in trials:
            if status(trial) in ("interrupted", "stopped") and trial.number not in requeued:
                self.study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
        write_run_yaml(self.run_dir, s, self.table, resuming)

    def trained(self) -> int:
        """Trials that reached training: complete, failed, or running now."""
        return count_status(self.study, "complete", "failed", "running")

    # --- one candidate --------------------------------------------------------------------

    def propose(self, deadline: float = math.inf) -> optuna.trial.Trial | None:
        """Ask for candidates until one is within every limit; record the rejected ones. With
        a screen, a candidate is the screen's choice where it has one (``nas.search.screen``).
        None once ``deadline`` (a ``time.time()``) has passed."""
        start = time.time()
        for _ in range(MAX_REJECTED):
            if time.time() >= deadline:
                return None
            self._queue()
            trial = self.study.ask()
            record = self.cost(trial)
            for key, value in record.items():
                trial.set_user_attr(key, value)
            # Relative excess over each limit (unknown counts as over), and 1 for a candidate
            # the space's own constraints or an invalid combination rejected.
            violations = {c: record[c] / limit - 1 if c in record else 1.0
                          for c, limit in self.limits.items()}
            violations["space"] = float(record["status"] == "infeasible"
                                        and all(v <= 0 for v in violations.values()))
            for column, v in violations.items():
                trial.set_constraint(column, v)
            if record["status"] == "running":
                trial.set_user_attr("propose_seconds", time.time() - start)
                return trial
            if record["status"] == "failed":  # its measurement died; the next one starts anew
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            self.study.tell(trial, [0.0 if OBJECTIVES[c] else record.get(c, math.inf)
                                    for c in self.settings.columns])
        raise SearchError(f"{MAX_REJECTED} candidates in a row were over the limits "
                          f"({self.constraints}); loosen them")

    def _queue(self) -> None:
        """Queue the next trial where the run rather than the sampler chooses it, unless trials
        wait to be re-run: the screen's choice; without a screen, a random start
        (:meth:`Screen.start`: a feasible network, under a latency budget one the table puts
        within it where it can) until a model-based sampler has ``startup_trials`` within every
        limit to model (its own random start would mostly draw networks over the limits, and
        learn nothing from them where a latency ceiling binds)."""
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
        if self.screen is not None:
            scored = [t.user_attrs for t in self.study.get_trials(deepcopy=False)
                      if status(t) == "complete"]
            values = self.screen.choose(scored)
            if values is not None:
                self.study.enqueue_trial(self.space.asked(values), user_attrs={"screened": True})
        elif self.startup is not None and self.trained() < startup_trials(self.settings.trials):
            values = self.startup.start()
            if values is not None:
                self.study.enqueue_trial(self.space.asked(values), user_attrs={"startup": True})

    def cost(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """The candidate's config and analytic costs; status 'infeasible' if over a limit."""
        s = self.settings
        try:
            net = self.space.network(self.space.suggest(trial))
        except ConfigError as e:  # a combination of values the families cannot build
            return {"status": "infeasible", "error": f"invalid network: {e}"}
        counts = complexity(net, s.resolution, s.num_classes)
        record = {"config": net.to_json(), **counts.totals()}
        violations = self.constraints.violations({**record, "stages": len(net.stages)})
        if violations:
            return {**record, "status": "infeasible", "error": "; ".join(violations)}
        if self.table is not None:
            from nas.latency import Timing, fill, predict
            from nas.latency.timing import MeasurementDied

            try:
                record["latency_measured"] = fill(self.table, [net], Timing(), s.resolution,
                                                  s.num_classes)
            except MeasurementDied as e:
                return {**record, "status": "failed", "error": str(e)}
            prediction = predict(net, self.table, s.resolution, s.num_classes)
            record["latency_ms"] = prediction.total_ms
            record["latency_noise"] = self.table.sum_noise(
                (entry.key, prediction.unit_ms(entry)) for _, entry in prediction.units)
            if record["latency_ms"] > self.limits.get("latency_ms", math.inf):
                return {**record, "status": "infeasible",
                        "error": f"latency {record['latency_ms']:.3g} ms, not latency <= "
                                 f"{self.limits['latency_ms']:g} ms"}
        return {**record, "status": "running"}

    def interrupt(self) -> None:
        """Record every trial still running as interrupted (a resumed run trains it again):
        those a Ctrl-C or SIGTERM cut off, in training or just proposed, or a killed run left.
        The run folder has one owner, so every running trial in its study is this run's."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)  # shown as "interrupted"

    def stop(self, run: Running) -> None:
        """Record a candidate cut off by the time budget; a resumed run trains it again."""
        run.trial.set_user_attr("status", "stopped")
        run.trial.set_user_attr("error", "time budget reached")
        self.study.tell(run.trial, state=TrialState.FAIL)

    def finish(self, run: Running, result: dict[str, Any] | None, error: str = "",
               weights: dict | None = None) -> None:
        """Tell the study how a scored candidate did, save its weights, and rewrite the tables
        if they are TABLES_EVERY seconds old (the journal has every trial at once)."""
        trial, wall = run.trial, time.time() - run.submitted
        attrs = {"wall_seconds": wall}
        if result is not None:
            attrs.update(measured_attrs(result, wall))
            error = result["reason"]
        status = "failed" if error else "complete"
        for key, value in {**attrs, "status": status, "error": error}.items():
            trial.set_user_attr(key, value)
        if error:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            if weights is not None:
                import torch

                (self.run_dir / "weights").mkdir(exist_ok=True)
                torch.save(weights, self.run_dir / "weights" / f"trial_{trial.number}.pt")
            ranking = SIGNALS[self.settings.signal]
            measured = {**trial.user_attrs, **result, "proxy": result.get("top1", math.nan)}
            trial.set_user_attr("accuracy", ranking.score(features(measured, ranking.features)))
            self.study.tell(trial, [trial.user_attrs[c] for c in self.settings.columns])
        if time.time() - self.tables_written > TABLES_EVERY:
            self.write_tables()

    def write_tables(self) -> None:
        write_tables(self.run_dir, self.study, self.settings, self.space)
        self.tables_written = time.time()


def measured_attrs(result: dict[str, Any], wall: float) -> dict[str, Any]:
    """The trial attributes of a measurement (``nas.evaluate.signal.measure``): zero-cost
    scores, and the proxy training's accuracy, losses and timings where it was trained."""
    attrs = {k: result[k] for k in (*SCORES, "score_seconds") if k in result}
    if "top1" in result:
        attrs.update(proxy_accuracy=result["top1"], val_loss=result["loss"], sotl=result["sotl"],
                     train_seconds=result["seconds"], images_per_second=result["images_per_second"],
                     proxy_flops=result["flops"])
    spent = attrs.get("train_seconds", 0.0) + attrs.get("score_seconds", 0.0)
    return {**attrs, "overhead_seconds": wall - spent}


def check_journal(path: Path) -> None:
    """SearchError naming the first line of Optuna's journal that is not a JSON record (a disk
    that filled up, a file edited by hand), before anything is appended to it."""
    if path.stat().st_size == 0:
        raise SearchError(f"{path}: empty; the study cannot be resumed from it")
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise SearchError(f"{path}: damaged at line {number} (not a record of Optuna's "
                                  "journal); the study cannot be resumed from it")


def count_status(study: optuna.Study, *statuses: str) -> int:
    return sum(status(t) in statuses for t in study.get_trials(deepcopy=False))


def startup_trials(trials: int) -> int:
    """The random trials a run of ``trials`` gives TPE before it models."""
    return max(4, min(10, trials // 4))


def _sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(50, trials // 4)),
                                             seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(trials),
                                      multivariate=True, constant_liar=True)


def _keep_study_settings(study: optuna.Study, s: SearchSettings, run_dir: Path) -> None:
    """Record the settings that shape the study in its journal, or, on resume, refuse a
    run.yaml whose settings are not those the journal's trials were made with."""
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", s.study_settings())
        return
    defaults = SearchSettings().study_settings()  # settings newer than the run's journal
    for name, value in s.study_settings().items():
        if recorded.get(name, defaults[name]) != value:
            raise SearchError(f"{run_dir / 'run.yaml'}: {name} is {excerpt(value)}, but the "
                              "study in study.journal was made with "
                              f"{excerpt(recorded.get(name, defaults[name]))}; run.yaml does "
                              "not belong to this study")


def _with_limits(constraints: Constraints, limits: dict[str, float]) -> Constraints:
    """The constraints with the run's MAC and params budgets added."""
    bounds = dict(constraints.bounds)
    for column in ("mac", "params"):
        if column in limits:
            low, high = bounds.get(column, (0, math.inf))
            bounds[column] = (low, min(high, limits[column]))
    return replace(constraints, bounds=bounds)


def _latency_table(s: SearchSettings):
    """The run's latency table; LatencyError if it is not one, or holds another device's
    entries (which this device's would mix with, and whose latencies are not this one's)."""
    import warnings

    from nas.latency import LatencyError, Profile, Table
    from nas.latency.profile import OtherDeviceWarning

    profile = Profile(backend=s.latency_backend, node=s.latency_on)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OtherDeviceWarning)  # refused below, in one line
        table = Table(s.latency_table or profile.default_path(), profile)
    if table.measured_on not in (None, profile.fingerprint()):
        raise LatencyError(f"{table.path} was measured on '{table.measured_on}', this search "
                           f"is for '{profile.fingerprint()}'; give a table of this device "
                           "(--latency-table)")
    return table
