"""One scheduler hands work to free slots: baseline seeds first (the noise floor), then proposals.

Each slot runs in its own thread; the main thread only starts work, collects what finished and
watches the stop and cancel events, so signals are handled at once. Work that finishes is recorded by
the slot itself (`Lab.record` serialises that), in whatever order the slots finish.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from pgolf.errors import BudgetRefused, PgolfError
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.experiment import run_baseline, run_proposal
from pgolf.loop.lab import TIER, Lab
from pgolf.loop.noise import baseline_seeds
from pgolf.loop.proposers.base import Proposer
from pgolf.loop.slots import Slot
from pgolf.status import Status

_TICK_SECONDS = 0.2


@dataclass
class Job:
    """One run to hand to a slot."""

    kind: str  # baseline | proposal
    seed: int = 0
    commit: str = ""

    def describe(self) -> str:
        return f"baseline seed {self.seed}" if self.kind == "baseline" else "a proposal"


@dataclass
class Schedule:
    """What the scheduler did: every record, and why it stopped starting work."""

    records: list[ExperimentRecord] = field(default_factory=list)
    stop_reason: str = ""
    proposals_started: int = 0


class Scheduler:
    """Runs jobs on `slots` until `limit()` says stop (or a stop, cancel or failure)."""

    def __init__(self, lab: Lab, slots: list[Slot], proposer: Proposer | None,
                 limit: Callable[[int], str], on_record: Callable[[ExperimentRecord], None] | None = None) -> None:
        self.lab = lab
        self.slots = slots
        self.proposer = proposer
        self.limit = limit  # (proposals started) -> why no new proposal may start, or ""
        self.on_record = on_record
        self.queue: deque[Job] = deque()
        self.schedule = Schedule()
        self.running: dict[int, str] = {}  # slot index -> what it runs (for the other slots' briefs)
        self._lock = threading.Lock()
        self._halted = False  # a failure or the budget: start nothing more (the user's stop is lab.stop)

    # -- the noise floor -----------------------------------------------------------------------------

    def queue_noise_floor(self) -> int:
        """Queue the baseline seeds the best commit still lacks; how many were queued."""
        rows = self.lab.rows()
        commit = self.lab.refs.best_commit()
        existing = self.lab.noise(rows)
        if existing is not None and existing.commit != commit:
            return 0  # measured on an earlier best; still the floor
        done = {r.seed for r in rows if r.status == Status.BASELINE and r.commit == commit and r.tier == TIER}
        missing = [s for s in baseline_seeds(self.lab.config.loop.noise_seeds) if s not in done]
        self.queue.extend(Job("baseline", seed, commit) for seed in missing)
        return len(missing)

    def _floor_ready(self) -> bool:
        return self.lab.noise() is not None

    # -- running -------------------------------------------------------------------------------------

    def _others(self, me: int) -> list[str]:
        with self._lock:
            return [f"slot {i}: {text}" for i, text in sorted(self.running.items()) if i != me]

    def _work(self, job: Job, slot: Slot) -> ExperimentRecord:
        with self._lock:
            self.running[slot.index] = job.describe()
        try:
            if job.kind == "baseline":
                record = run_baseline(self.lab, slot, job.seed, job.commit or None)
                if record.status != Status.BASELINE:
                    folder = self.lab.ws.run(record.run_id)
                    raise PgolfError(f"the baseline run {record.run_id} ended as {record.status} "
                                     f"({record.reason}); see {folder.log}")
                return record
            assert self.proposer is not None
            return run_proposal(self.lab, slot, self.proposer, self._others(slot.index))
        finally:
            with self._lock:
                self.running.pop(slot.index, None)

    def _next_job(self) -> Job | None:
        if self.queue:
            return self.queue.popleft()
        if self.proposer is None or not self._floor_ready():
            return None
        reason = self.limit(self.schedule.proposals_started)
        if reason:
            self.schedule.stop_reason = self.schedule.stop_reason or reason
            return None
        self.schedule.proposals_started += 1
        return Job("proposal")

    def run(self) -> Schedule:
        """Start jobs on free slots until nothing may start, then wait for the slots in flight."""
        lab, free = self.lab, list(self.slots)
        futures: dict[Future[ExperimentRecord], tuple[Slot, Job]] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="pgolf-slot") as pool:
            while True:
                while free and not self._halted and not lab.stop.is_set():
                    job = self._next_job()
                    if job is None:
                        break
                    slot = free.pop(0)
                    futures[pool.submit(self._work, job, slot)] = (slot, job)
                if not futures:
                    break
                done, _ = wait(futures, timeout=_TICK_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    slot, _job = futures.pop(future)
                    free.append(slot)
                    free.sort(key=lambda s: s.index)
                    try:
                        record = future.result()
                    except BudgetRefused as err:
                        self.schedule.stop_reason = f"budget: {err}"
                        self._halted = True
                        continue
                    except BaseException as err:  # noqa: BLE001 - re-raised once the other slots finished
                        failure = failure or err
                        self._halted = True
                        continue
                    self.schedule.records.append(record)
                    if self.on_record is not None:
                        self.on_record(record)
        if failure is not None:
            raise failure
        return self.schedule
