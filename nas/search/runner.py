"""The search loop: the run folder owned, Ray started where a signal measures candidates, trials
proposed and scored until the budget of trials or time is spent, progress shown.

``resume`` reopens a run's study (``nas.search.study``) and continues with the same sampler.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from tqdm import tqdm

from nas.errors import interrupt_on_signal
from nas.evaluate.ranking import SIGNALS
from nas.latency.remote import identify
from nas.search.pareto import OBJECTIVES
from nas.search.report import objective_text
from nas.search.results import status
from nas.search.settings import SearchSettings
from nas.search.study import (
    NOTHING_MEASURED,
    Running,
    Search,
    SearchError,
    check_journal,
    count_status,
)

FAIL_FAST = 3  # trainings that all fail before a run gives up
CONNECT_TIMEOUT = 30.0  # seconds for the cluster at --address to answer
STARTED = ("lock", "run.yaml", "study.journal")  # what a run that stopped as it started leaves


def run(settings: SearchSettings, run_dir: Path, resume: bool = False,
        started: Callable[[Path], None] = lambda run_dir: None) -> Path:
    """Search until ``settings.trials`` candidates are scored or time runs out. Candidates that
    the signal measures (zero-cost scores, proxy training) are scored by Ray actors; with a
    signal of analytic counts alone they are scored here, without starting Ray. ``started``
    is called once the settings are checked and the run folder is owned."""
    import ray

    from nas.search.workers import Evaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = settings.check()
    deadline = time.time() + (s.time_budget_seconds() or math.inf)  # setup counts too
    on_ray = SIGNALS[s.signal].needs_measurement
    reach_cluster(s)
    if s.latency_on is not None:  # the latency table is the node's: the cluster comes first
        start_ray(s)
    try:
        search = Search(settings, run_dir)
    except BaseException:
        ray.shutdown()
        raise
    owner = own_run_folder(run_dir, resume)  # noqa: F841 (held until the run ends)
    started(run_dir)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    if on_ray and not ray.is_initialized():
        start_ray(s)
    signal.signal(signal.SIGTERM, interrupt_on_signal)  # SIGTERM stops the run as Ctrl-C does
    progress = None
    running: dict[Any, Running] = {}
    ready_trial = None  # proposed ahead, while the slots train, so no slot waits for it
    try:
        search.open_study()
        progress = Progress(search, s.trials, deadline)

        def new_actor():
            return Evaluator.options(num_cpus=s.cpus_per_trial).remote(
                s.data, s.proxy.to_dict(), s.cpus_per_trial, s.signal)

        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // s.cpus_per_trial)) \
            if on_ray else 0
        idle = [new_actor() for _ in range(slots)]
        while True:
            wanted = search.trained() < s.trials and time.time() < deadline
            if ready_trial is None and wanted:
                ready_trial = search.propose(deadline)
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
            search.interrupt()
        raise
    finally:
        ray.shutdown()
        identify.cache_clear()  # a node is known while connected to its cluster
        # ray.shutdown() leaves SIGTERM at the default action (death, exit code -15) while
        # Python still shows its handler: set the caller's handler again.
        restore_sigterm(on_sigterm)
        if progress is not None:  # the study is open: however the run ends, table every trial
            progress.close()
            search.write_tables()
    return run_dir


def own_run_folder(run_dir: Path, resume: bool):
    """Make this process the run folder's one owner, by an exclusive lock on ``RUN_DIR/lock``
    held while the returned file is open; SearchError naming the owner's pid when another
    process holds it. The kernel drops a lock when its process ends, even by ``kill -9``, so
    a killed run's lock is simply taken over. A new search may not reuse a run's folder, nor
    one that holds other files; a resumed run's journal must be whole."""
    import fcntl

    journal = run_dir / "study.journal"
    left_empty = journal.exists() and journal.stat().st_size == 0 \
        and not (run_dir / "trials.csv").exists()  # by a run stopped as it started
    has_study = journal.exists() and not left_empty
    if resume and not has_study:
        raise SearchError(f"{run_dir}: nothing to resume (no study.journal with a study)")
    if resume:
        check_journal(journal)  # before the lock is written beside it
    if not resume and has_study:
        raise SearchError(f"{run_dir}: holds a run already; continue it with --resume "
                          f"{run_dir}, or give another --out")
    others = sorted(p.name for p in run_dir.iterdir() if p.name not in STARTED) \
        if run_dir.is_dir() and not resume else []
    if others:
        raise SearchError(f"{run_dir}: holds {others[0]}, not a run's; give a new or empty "
                          "folder as --out")
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
    if left_empty:
        journal.unlink()
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


def restore_sigterm(handler) -> None:
    """Set SIGTERM's handler again, as ``signal.getsignal`` gave it (None: one set outside
    Python, which cannot be set again from here)."""
    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def start_ray(s: SearchSettings) -> None:
    """Start Ray on this machine or join the cluster at ``s.address``; refuse a
    ``cpus_per_trial`` that no node offers."""
    import ray

    # "local": a new instance even when `ray start` left a cluster's address on this machine,
    # which a bare ray.init() would join. ray.init() sets a SIGTERM handler of its own that
    # exits silently with code 15: a SIGTERM while Ray starts stops the run as Ctrl-C does,
    # with what Ray started shut down, and the caller's handler is set again.
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=s.address or "local", num_cpus=None if s.address else os.cpu_count(),
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except SystemExit as e:
        if e.code != signal.SIGTERM:
            raise
        ray.shutdown()
        raise KeyboardInterrupt from None
    finally:
        restore_sigterm(on_sigterm)
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if s.cpus_per_trial > largest:
        ray.shutdown()
        raise SearchError(f"--cpus-per-trial {s.cpus_per_trial}: no node of the cluster has "
                          f"more than {largest:g} CPUs")
    if s.latency_on is not None and not ray.cluster_resources().get(s.latency_on):
        ray.shutdown()
        raise SearchError(f"--latency-on {s.latency_on}: no node of the cluster at {s.address} "
                          "advertises that resource")


def _fail_fast(search: Search) -> None:
    statuses = [status(t) for t in search.study.get_trials(deepcopy=False)]
    ended = [x for x in statuses if x in ("complete", "failed")]
    if len(ended) >= FAIL_FAST and all(x == "failed" for x in ended):
        last = [t for t in search.study.trials if t.user_attrs.get("status") == "failed"][-1]
        raise SearchError(f"the first {len(ended)} trainings all failed, stopping; the last: "
                          f"{last.user_attrs.get('error')}")


class Progress:
    """One line: trials trained and running, feasible rate, best so far, elapsed and ETA (and
    the time budget left, if there is one)."""

    def __init__(self, search: Search, total: int, deadline: float = math.inf):
        self.search = search
        self.deadline = deadline
        self.bar = tqdm(total=total, unit="trial", dynamic_ncols=True,
                        initial=count_status(search.study, "complete", "failed"))
        self.updated = 0.0

    def update(self, running: int) -> None:
        if time.time() - self.updated < 0.5:
            return
        self.updated = time.time()
        trials = self.search.study.get_trials(deepcopy=False)
        done = count_status(self.search.study, "complete", "failed")
        rejected = count_status(self.search.study, "infeasible")
        feasible = 1 - rejected / max(1, len(trials))
        best = []  # each objective's best, with the trial that has it
        for column in self.search.settings.columns:
            scored = [(t.user_attrs[column], t.number) for t in trials
                      if status(t) == "complete" and column in t.user_attrs]
            if scored:
                value, number = (max if OBJECTIVES[column] else min)(scored)
                best.append(f"{column} {objective_text(column, value)} (#{number})")
        left = (f", {tqdm.format_interval(max(0, self.deadline - time.time()))} of the time "
                "budget left" if self.deadline < math.inf else "")
        self.bar.n = done
        self.bar.set_postfix_str(f"running {running}, feasible {feasible:.0%}{left}, best of "
                                 "each: " + ", ".join(best))

    def close(self) -> None:
        self.updated = 0.0
        self.update(0)
        self.bar.close()
