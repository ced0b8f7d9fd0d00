"""The search loop: Optuna asks, analytic limits reject, Ray actors proxy-train, Optuna learns.

The Optuna study lives in an append-only journal file in the run folder, so a run killed at
any point (even ``kill -9``) keeps every told trial; ``resume`` reopens it, re-queues the
trials that were running, and continues with the same sampler. Every trial's record (costs,
config, result, timings) is a user attribute of its Optuna trial, and the tables of the run
folder are rewritten from the study each time a trial ends.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from tqdm import tqdm

from nas.errors import ConfigError, NasError, excerpt, interrupt_on_signal
from nas.evaluate.data import load
from nas.evaluate.ranking import SIGNALS, features
from nas.evaluate.zero_cost import SCORES
from nas.network import complexity
from nas.search.pareto import OBJECTIVES
from nas.search.results import status, write_run_yaml, write_tables
from nas.search.screen import Screen
from nas.search.settings import SearchSettings
from nas.spaces import Constraints, constraints_for, load_space

FAIL_FAST = 3  # trainings that all fail before a run gives up
MAX_REJECTED = 20_000  # consecutive analytic rejections before a run gives up
CONNECT_TIMEOUT = 30.0  # seconds for the cluster at --address to answer
TABLES_EVERY = 2.0  # seconds between rewrites of the run's tables while trials end
NOTHING_MEASURED = {"status": "ok", "reason": ""}  # the measurement of an analytic signal


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
            load(s.data)  # a missing or corrupt data set fails here, before Ray starts
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
        self.screen = Screen(self.space.feasible(s.seed + done, self.constraints), s.screen,
                             s.columns) if s.screen else None
        _keep_study_settings(self.study, s, self.run_dir)
        for trial in self.study.get_trials(states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)  # shown as "interrupted"
        trials = self.study.get_trials(deepcopy=False)
        requeued = {t.user_attrs.get("requeued_from") for t in trials}
        for trial in trials:
            if status(trial) in ("interrupted", "stopped") and trial.number not in requeued:
                self.study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
        write_run_yaml(self.run_dir, s)

    def trained(self) -> int:
        """Trials that reached training: complete, failed, or running now."""
        return _count(self.study, "complete", "failed", "running")

    # --- one candidate --------------------------------------------------------------------

    def propose(self) -> optuna.trial.Trial:
        """Ask for candidates until one is within every limit; record the rejected ones. With
        a screen, a candidate is the screen's choice where it has one (``nas.search.screen``)."""
        start = time.time()
        for _ in range(MAX_REJECTED):
            self._screen()
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
            self.study.tell(trial, [0.0 if OBJECTIVES[c] else record.get(c, math.inf)
                                    for c in self.settings.columns])
        raise SearchError(f"{MAX_REJECTED} candidates in a row were over the limits "
                          f"({self.constraints}); loosen them")

    def _screen(self) -> None:
        """Queue the screen's choice as the next trial, unless trials wait to be re-run."""
        if self.screen is None or self.study.get_trials(deepcopy=False,
                                                         states=(TrialState.WAITING,)):
            return
        scored = [t.user_attrs for t in self.study.get_trials(deepcopy=False)
                  if status(t) == "complete"]
        values = self.screen.choose(scored)
        if values is not None:
            self.study.enqueue_trial(self.space.asked(values), user_attrs={"screened": True})

    def cost(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """The candidate's config and analytic costs; status 'infeasible' if over a limit."""
        s = self.settings
        try:
            net = self.space.network(self.space.suggest(trial))
        except ConfigError as e:  # a combination of values the families cannot build
            return {"status": "infeasible", "error": f"invalid network: {e}"}
        counts = complexity(net, s.resolution, s.num_classes)
        record = {"config": net.to_json(), **counts.totals()}
        if not (self.constraints.admits_costs(record)
                and self.constraints.admits("stages", len(net.stages))):
            return {**record, "status": "infeasible",
                    "error": f"over the limits ({self.constraints})"}
        if self.table is not None:
            from nas.latency import Timing, predict

            record["latency_ms"] = predict(net, self.table, s.resolution, s.num_classes,
                                           Timing()).total_ms
            if record["latency_ms"] > self.limits.get("latency_ms", math.inf):
                return {**record, "status": "infeasible", "error": "over the latency budget"}
        return {**record, "status": "running"}

    def interrupt(self, trials: list) -> None:
        """Record the trials a Ctrl-C or SIGTERM cut off as interrupted (a resumed run trains
        them again)."""
        for trial in trials:
            if trial is not None:
                self.study.tell(trial, state=TrialState.FAIL)

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
        attrs = {"wall_seconds": wall, "submitted_at": run.submitted}
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
        write_tables(self.run_dir, self.study, self.settings)
        self.tables_written = time.time()


def run(settings: SearchSettings, run_dir: Path, resume: bool = False) -> Path:
    """Search until ``settings.trials`` candidates are scored or time runs out. Candidates that
    the signal measures (zero-cost scores, proxy training) are scored by Ray actors; with a
    signal of analytic counts alone they are scored here, without starting Ray."""
    import ray

    from nas.search.workers import Evaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = Search(settings, run_dir)
    s = settings
    on_ray = SIGNALS[s.signal].needs_measurement
    reach_cluster(s)
    owner = own_run_folder(run_dir, resume)  # noqa: F841 (held until the run ends)
    deadline = time.time() + (s.time_budget_seconds() or math.inf)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    if on_ray:
        start_ray(s)
    signal.signal(signal.SIGTERM, interrupt_on_signal)  # SIGTERM stops the run as Ctrl-C does
    progress = None
    running: dict[Any, Running] = {}
    ready_trial = None  # proposed ahead, while the slots train, so no slot waits for it
    try:
        search.open_study()
        progress = Progress(search, s.trials)

        def new_actor():
            return Evaluator.options(num_cpus=s.cpus_per_trial).remote(
                s.data, s.proxy.to_dict(), s.cpus_per_trial, s.signal)

        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // s.cpus_per_trial)) \
            if on_ray else 0
        idle = [new_actor() for _ in range(slots)]
        while True:
            wanted = search.trained() < s.trials and time.time() < deadline
            if ready_trial is None and wanted:
                ready_trial = search.propose()
            if ready_trial is not None and not on_ray:  # nothing to measure: scored at once
                search.finish(Running(ready_trial, None, time.time()), NOTHING_MEASURED)
                ready_trial = None
                progress.update(0)
                continue
            if ready_trial is not None and idle:
                actor = idle.pop()
                seed = s.seed * 1_000_003 + ready_trial.number
                future = actor.evaluate.remote(ready_trial.user_attrs["config"], seed)
                running[future] = Running(ready_trial, actor, time.time())
                ready_trial = None
                continue
            progress.update(len(running))
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1,
                                timeout=max(0.1, min(5.0, deadline - time.time())))
            for future in ready:
                job = running.pop(future)
                try:
                    result, weights = ray.get(future)
                    search.finish(job, result, weights=weights)
                    idle.append(job.actor)
                except ray.exceptions.RayError as e:
                    search.finish(job, None, f"worker died: {type(e).__name__}: {e}"[:500])
                    idle.append(new_actor())
                _fail_fast(search)
            if time.time() >= deadline:
                stopped = [*running.values()] + ([Running(ready_trial, None, time.time())]
                                                  if ready_trial is not None else [])
                for job in stopped:
                    if job.actor is not None:
                        ray.kill(job.actor)
                    search.stop(job)
                break
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the trials cut off resume as interrupted
        if progress is not None:
            search.interrupt([job.trial for job in running.values()] + [ready_trial])
        raise
    finally:
        ray.shutdown()
        # ray.shutdown() leaves SIGTERM at the default action (death, exit code -15) while
        # Python still shows its handler: set the caller's handler again.
        signal.signal(signal.SIGTERM, on_sigterm)
        if progress is not None:  # the study is open: however the run ends, table every trial
            progress.close()
            search.write_tables()
    return run_dir


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


def own_run_folder(run_dir: Path, resume: bool):
    """Make this process the run folder's one owner, by an exclusive lock on ``RUN_DIR/lock``
    held while the returned file is open; SearchError naming the owner's pid when another
    process holds it. The kernel drops a lock when its process ends, even by ``kill -9``, so
    a killed run's lock is simply taken over. A new search may not reuse a run's folder."""
    import fcntl

    has_study = (run_dir / "study.journal").exists()
    if resume and not has_study:
        raise SearchError(f"{run_dir}: nothing to resume (no study.journal)")
    if not resume and has_study:
        raise SearchError(f"{run_dir}: holds a run already; continue it with --resume "
                          f"{run_dir}, or give another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = open(run_dir / "lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "unknown"
        lock.close()
        raise SearchError(f"{run_dir}: in use by another search (pid {owner}); wait for it to "
                          "end or stop it") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def reach_cluster(s: SearchSettings) -> None:
    """SearchError unless this machine has ``cpus_per_trial`` CPUs, or the cluster at
    ``s.address`` answers within CONNECT_TIMEOUT seconds."""
    if s.address is None and s.cpus_per_trial > (os.cpu_count() or 1):
        raise SearchError(f"--cpus-per-trial {s.cpus_per_trial}: this machine has "
                          f"{os.cpu_count()} CPUs")
    if s.address not in (None, "auto"):
        host, _, port = s.address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), CONNECT_TIMEOUT).close()
        except OSError as e:
            raise SearchError(f"--address {s.address}: no Ray cluster answers there "
                              f"({e.strerror or e}); start one with `ray start --head` or "
                              "check the address") from None


def start_ray(s: SearchSettings) -> None:
    """Start Ray on this machine or join the cluster at ``s.address``; refuse a
    ``cpus_per_trial`` that no node offers."""
    import ray

    ray.init(address=s.address, num_cpus=None if s.address else os.cpu_count(),
             include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if s.cpus_per_trial > largest:
        ray.shutdown()
        raise SearchError(f"--cpus-per-trial {s.cpus_per_trial}: no node of the cluster has "
                          f"more than {largest:g} CPUs")


def _fail_fast(search: Search) -> None:
    statuses = [status(t) for t in search.study.get_trials(deepcopy=False)]
    ended = [x for x in statuses if x in ("complete", "failed")]
    if len(ended) >= FAIL_FAST and all(x == "failed" for x in ended):
        last = [t for t in search.study.trials if t.user_attrs.get("status") == "failed"][-1]
        raise SearchError(f"the first {len(ended)} trainings all failed, stopping; the last: "
                          f"{last.user_attrs.get('error')}")


class Progress:
    """One line: trials trained and running, feasible rate, best so far, elapsed and ETA."""

    def __init__(self, search: Search, total: int):
        self.search = search
        self.bar = tqdm(total=total, unit="trial", dynamic_ncols=True,
                        initial=_count(search.study, "complete", "failed"))
        self.updated = 0.0

    def update(self, running: int) -> None:
        if time.time() - self.updated < 0.5:
            return
        self.updated = time.time()
        trials = self.search.study.get_trials(deepcopy=False)
        done = _count(self.search.study, "complete", "failed")
        rejected = _count(self.search.study, "infeasible")
        feasible = 1 - rejected / max(1, len(trials))
        best = []  # each objective's best, with the trial that has it
        for column in self.search.settings.columns:
            scored = [(t.user_attrs[column], t.number) for t in trials
                      if status(t) == "complete" and column in t.user_attrs]
            if scored:
                value, number = (max if OBJECTIVES[column] else min)(scored)
                best.append(f"{column} {value:.4g} (#{number})")
        self.bar.n = done
        self.bar.set_postfix_str(f"running {running}, feasible {feasible:.0%}, best of each: "
                                 + ", ".join(best))

    def close(self) -> None:
        self.updated = 0.0
        self.update(0)
        self.bar.close()


def _count(study: optuna.Study, *statuses: str) -> int:
    return sum(status(t) in statuses for t in study.get_trials(deepcopy=False))


def _sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(50, trials // 4)),
                                             seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, min(10, trials // 4)),
                                      multivariate=True, constant_liar=True)


def _keep_study_settings(study: optuna.Study, s: SearchSettings, run_dir: Path) -> None:
    """Record the settings that shape the study in its journal, or, on resume, refuse a
    run.yaml whose settings are not those the journal's trials were made with."""
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", s.study_settings())
        return
    for name, value in s.study_settings().items():
        if recorded.get(name) != value:
            raise SearchError(f"{run_dir / 'run.yaml'}: {name} is {excerpt(value)}, but the "
                              f"study in study.journal was made with {excerpt(recorded.get(name))}"
                              "; run.yaml does not belong to this study")


def _with_limits(constraints: Constraints, limits: dict[str, float]) -> Constraints:
    """The constraints with the run's MAC and params budgets added."""
    bounds = dict(constraints.bounds)
    for column in ("mac", "params"):
        if column in limits:
            low, high = bounds.get(column, (0, math.inf))
            bounds[column] = (low, min(high, limits[column]))
    return replace(constraints, bounds=bounds)


def _latency_table(s: SearchSettings):
    from nas.latency import Profile, Table

    profile = Profile()
    return Table(s.latency_table or profile.default_path(), profile)

