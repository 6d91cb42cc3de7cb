"""`pgolf run`: one loop per workspace, limits that stop it cleanly, Ctrl-C, and crash recovery."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pgolf import git
from pgolf.compute.base import Backend
from pgolf.config import PgolfConfig
from pgolf.errors import ConfigError, LockedError, PgolfError
from pgolf.loop.breaker import ProposerBreaker
from pgolf.loop.events import ExperimentRecord, LoopEvents, QuietEvents
from pgolf.loop.hyperparams import find, read_hyperparameters
from pgolf.loop.lab import Lab
from pgolf.loop.promotion import remote_tier_name
from pgolf.loop.proposers import make_proposer
from pgolf.loop.proposers.base import Proposer
from pgolf.loop.recovery import recover
from pgolf.loop.refs import BEST_BRANCH, EXPLORE_BRANCH
from pgolf.loop.scheduler import Scheduler
from pgolf.loop.setup_check import FirstStepsWatch, check_before_start
from pgolf.loop.slots import plan_slots
from pgolf.workspace import Workspace

LOCK_NAME = "run.lock"  # the name of Workspace.run_lock, for readers that only probe it


@dataclass
class LoopSummary:
    """What one `pgolf run` did and why it stopped."""

    records: list[ExperimentRecord] = field(default_factory=list)
    stop_reason: str = ""
    recovered: str | None = None
    proposer_broken: bool = False  # stopped by the proposer-failure breaker: `pgolf run` exits 1

    @property
    def experiments(self) -> list[ExperimentRecord]:
        """Experiments done: a proposer's failure is not one (nothing ran)."""
        return [r for r in self.records if r.kind == "experiment" and r.failure is None]


@contextlib.contextmanager
def workspace_lock(ws: Workspace) -> Iterator[None]:
    """Hold `.pgolf/run.lock`; a second `pgolf run` in the same workspace gets one clear line.

    The kernel drops a flock when its process dies, kill -9 included, so no stale lock survives.
    """
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = ws.run_lock
    fh = open(path, "a+")  # noqa: SIM115 - held for the whole loop
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise LockedError(f"another `pgolf run` (pid {holder}) is running in {ws.root}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


def check_env_conflicts(config: PgolfConfig, script: str, proposer_kind: str) -> list[str]:
    """Refuse env settings that would override searched values; warn about other script overrides."""
    env = config.tiers.local.env
    params = read_hyperparameters(script)
    if proposer_kind == "search":
        searched = [k for k in env for name in config.proposer.search_space
                    if (p := find(params, name)) is not None and k == p.env]
        if searched:
            raise ConfigError(f"[tiers.local] env sets {', '.join(sorted(searched))}, which the search proposer "
                              "searches: the environment would silently override every proposal; remove it")
    overridden = sorted(k for k in env if any(p.env == k for p in params.values()))
    if not overridden:
        return []
    return [f"[tiers.local] env overrides {', '.join(overridden)} of train_gpt.py: a change to those "
            "defaults in the script has no effect on local runs"]


class _Signals:
    """First Ctrl-C: stop after the run in flight. Second Ctrl-C, or SIGTERM: abort it now.

    A handler installed before ours (an application using pgolf as a library) still hears every
    signal, and is put back when the loop ends.
    """

    def __init__(self, cancel: threading.Event, events: LoopEvents) -> None:
        self.cancel = cancel
        self.stop = threading.Event()
        self.events = events
        self.promoting = False
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if self.promoting:
            # A promotion's own handler (pgolf.compute.pods) ends its pod and records the run first.
            self.stop.set()
            self.events.message(f"{name}: stopping; a promotion in flight is ended and recorded, "
                                "no further promotion or experiment starts")
        elif signum == signal.SIGINT and not self.stop.is_set():
            self.stop.set()
            self.events.message("Ctrl-C: finishing the run in flight, then stopping (Ctrl-C again to abort it)")
        else:
            self.stop.set()
            self.cancel.set()
            self.events.message(f"{name}: aborting the run in flight; it will be recorded as aborted")
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)

    @contextlib.contextmanager
    def promotions(self) -> Iterator[threading.Event]:
        """While the promotion queue runs: the event that tells it to start no further promotion."""
        self.promoting = True
        try:
            yield self.stop
        finally:
            self.promoting = False

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _run_promotions(ws: Workspace, config: PgolfConfig, events: LoopEvents, signals: _Signals) -> None:
    """Hand queued promotions to the remote tier's executor, when one is configured."""
    if remote_tier_name(config) is None:
        return
    if signals.stop.is_set():
        return  # a stop was asked for: no paid run starts after it
    from pgolf.loop.promote import run_promotion_queue

    try:
        with signals.promotions() as stop:
            results = run_promotion_queue(ws, config, yes=False, cancel=stop,
                                              on_line=lambda text: events.run_line("promotion", text))
        for result in results:
            events.message(f"promotion of {result.run_id}: {result.status}")
    except PgolfError as err:
        events.message(f"promotion: {err}")


def _sweep_remote(ws: Workspace, config: PgolfConfig, events: LoopEvents) -> None:
    """Recover promotions a killed pgolf left, and end this workspace's orphaned pods (never raises)."""
    if remote_tier_name(config) is None:
        return
    from pgolf.loop.promote import sweep_at_start

    for line in sweep_at_start(ws, config):
        events.message(line)


def run_loop(ws: Workspace, *, experiments: int | None = None, hours: float | None = None,
             proposer_kind: str | None = None, events: LoopEvents | None = None,
             backend: Backend | None = None, proposer: Proposer | None = None,
             clock: Callable[[], float] = time.monotonic, config: PgolfConfig | None = None,
             first_seed: int | None = None) -> LoopSummary:
    """Recover, measure the noise floor if needed, then run experiments on every slot until a limit or
    Ctrl-C stops the loop. `first_seed`: the seed of each proposal's first run (default 1337)."""
    events = events or QuietEvents()
    config = config or ws.config()
    kind = proposer_kind or config.proposer.kind
    max_experiments = experiments if experiments is not None else config.loop.max_experiments
    max_hours = hours if hours is not None else config.loop.max_hours
    summary = LoopSummary()
    cancel = threading.Event()
    watch = FirstStepsWatch(events, ws.run_dir, wallclock_seconds=config.tiers.local.wallclock_seconds,
                            env=config.tiers.local.env)
    with workspace_lock(ws), watch as events, _Signals(cancel, events) as signals:
        lab = Lab(ws, config, backend=backend, events=events, cancel=cancel, stop=signals.stop)
        if first_seed is not None:
            lab.first_seed = first_seed
        was_on = git.current_branch(ws.root)
        lab.refs.prepare()
        if was_on != EXPLORE_BRANCH:  # say so: the user's checkout changes branch under them
            events.message(f"switched to branch {EXPLORE_BRANCH} (from {was_on or 'a detached HEAD'}): experiments "
                           f"are committed there, {BEST_BRANCH} holds the best script; {was_on or 'HEAD'} is "
                           "left as it was")
        summary.recovered = "; ".join(recover(lab)) or None
        if summary.recovered:
            events.message(summary.recovered)
        _sweep_remote(ws, config, events)
        for warning in check_env_conflicts(config, ws.train_script.read_text(encoding="utf-8"), kind):
            events.message(f"warning: {warning}")
        slots = plan_slots(config.tiers.local)
        chosen = proposer or make_proposer(kind, ws, config)
        start, spent_at_start = clock(), ws.budget(config).status().spent_usd
        breaker = ProposerBreaker(config.proposer.max_failures)
        check_before_start(ws, config, lab.refs.best_commit(), events)  # one line, not a doomed baseline

        def limit(started: int) -> str:
            if breaker.tripped:
                return breaker.tripped
            # A proposer's failure ran nothing: it is not an experiment done.
            return _limit_reached(started - breaker.failures, max_experiments, start, max_hours, clock, ws,
                                  config, spent_at_start, kind, signals.stop.is_set())

        def after(record: ExperimentRecord) -> None:
            if record.kind != "experiment":
                return  # baselines and replicates say nothing about the proposer
            if tripped := breaker.observe(record.failure, events.message):
                summary.proposer_broken = True
                events.message(f"stopping: {tripped}")
            if record.failure is None:
                _run_promotions(ws, config, events, signals)

        scheduler = Scheduler(lab, slots, chosen, limit, on_record=after)
        if scheduler.queue_noise_floor():
            events.message(f"measuring the noise floor on {len(slots)} slot(s)")
        elif not signals.stop.is_set():
            for line in scheduler.resume_candidates():
                events.message(line)
        try:
            schedule = scheduler.run()
        except PgolfError:
            summary.records = scheduler.schedule.records
            if signals.stop.is_set():
                summary.stop_reason = "stopped by the user while measuring the noise floor"
                return summary
            raise
        summary.records = schedule.records
        if lab.noise() is None and signals.stop.is_set():
            summary.stop_reason = "stopped by the user while measuring the noise floor"
        elif cancel.is_set():
            summary.stop_reason = "aborted by the user"
        elif signals.stop.is_set():
            summary.stop_reason = "stopped by the user"
        else:
            summary.stop_reason = schedule.stop_reason or "nothing left to run"
    return summary


def _limit_reached(done: int, max_experiments: int | None, start: float, max_hours: float | None,
                   clock: Callable[[], float], ws: Workspace, config: PgolfConfig, spent_at_start: float,
                   kind: str, stop_requested: bool) -> str:
    """Why the loop must stop now, or "" to go on."""
    if stop_requested:
        return "stopped by the user"
    if max_experiments is not None and done >= max_experiments:
        return f"{done} experiment{'s' if done != 1 else ''} done (limit {max_experiments})"
    if max_hours is not None and clock() - start >= max_hours * 3600:
        return f"time limit of {max_hours:g} h reached"
    budget = ws.budget(config)
    if config.loop.max_usd is not None and budget.status().spent_usd - spent_at_start >= config.loop.max_usd:
        return f"spending limit of ${config.loop.max_usd:.2f} reached"
    if kind == "llm" and not (verdict := budget.can_spend_llm(0.0)).ok:
        return f"LLM spend limit reached ({verdict.reason})"
    return ""

