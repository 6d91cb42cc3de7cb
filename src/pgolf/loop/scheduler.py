"""One scheduler hands work to free slots: baseline seeds first (the noise floor), then the replicate
runs candidates need (the candidate's seeds and the incumbent's paired seeds), then new proposals.

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
from pgolf.loop.experiment import run_baseline, run_proposal, run_replicate
from pgolf.loop.judging import Candidate, conclude, pending_candidates
from pgolf.loop.lab import Lab
from pgolf.loop.noise import baseline_seeds, samples_of
from pgolf.loop.proposers.base import Proposer
from pgolf.loop.slots import Slot
from pgolf.status import Status

_TICK_SECONDS = 0.2


@dataclass
class Job:
    """One run to hand to a slot."""

    kind: str  # baseline | replicate | proposal
    seed: int = 0
    commit: str = ""
    candidate: str = ""  # replicate and paired baseline runs: the candidate's first run

    @property
    def key(self) -> str:
        """Two candidates that need the same run of the same commit share it."""
        return f"{self.kind}:{self.commit}:{self.seed}"

    def describe(self) -> str:
        if self.kind == "proposal":
            return "a new proposal"
        what = f"seed {self.seed} of {self.commit[:8]}"
        return f"replicating {self.candidate} ({what})" if self.kind == "replicate" else \
            f"baseline {what}" + (f", paired with {self.candidate}" if self.candidate else "")


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
        self.candidates: dict[str, Candidate] = {}  # first run id -> a candidate being replicated
        self._keys: set[str] = set()  # jobs queued or running

    # -- the noise floor -----------------------------------------------------------------------------

    def queue_noise_floor(self) -> int:
        """Queue the baseline seeds the best commit needs before anything can be judged (its runs, and
        σ); how many were queued."""
        rows = self.lab.rows()
        commit = self.lab.refs.best_commit()
        if self.lab.noise(rows) is not None:
            return 0
        done = {s.seed for s in samples_of(rows, commit)}
        missing = [s for s in baseline_seeds(self.lab.config.loop.noise_seeds) if s not in done]
        for seed in missing:
            self._push(Job("baseline", seed, commit))
        return len(missing)

    def resume_candidates(self) -> list[str]:
        """Candidates a stop or a kill left pending: judged again, their missing runs queued."""
        said = []
        for candidate in pending_candidates(self.lab.rows(), self.lab.refs):
            said.append(f"resuming the judgement of {candidate.first_run} ({candidate.description})")
            self._judge(candidate)
        return said

    def _floor_ready(self) -> bool:
        return self.lab.noise() is not None

    def _push(self, job: Job) -> None:
        if job.key in self._keys:
            return  # queued or running already: the candidates waiting for it share it
        self._keys.add(job.key)
        self.queue.append(job)

    def _judge(self, candidate: Candidate) -> None:
        """Ask the judge; queue what a `replicate` verdict names, or record the decision."""
        verdict, record = conclude(self.lab, candidate, self.proposer)
        if record is not None:
            self.candidates.pop(candidate.first_run, None)
            self.schedule.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
            return
        self.candidates[candidate.first_run] = candidate
        incumbent = self.lab.refs.best_commit()
        jobs = [Job("replicate", seed, candidate.commit, candidate.first_run) for seed in verdict.candidate_seeds]
        jobs += [Job("baseline", seed, incumbent, candidate.first_run) for seed in verdict.incumbent_seeds]
        if not jobs:  # the judge wants nothing the ledger lacks: never loop on it
            candidate.failed = "the judge asked for no new run"
            self._judge(candidate)
            return
        candidate.pending = {job.key for job in jobs}
        for job in jobs:  # queued runs go before new proposals, oldest candidate first
            self._push(job)

    def _finished(self, job: Job, record: ExperimentRecord) -> None:
        """A replicate or paired run ended: judge every candidate that was waiting only for it."""
        self._keys.discard(job.key)
        for candidate in list(self.candidates.values()):
            if job.key not in candidate.pending:
                continue
            candidate.pending.discard(job.key)
            if record.status not in (Status.REPLICATE, Status.BASELINE):
                candidate.failed = f"{record.kind} run {record.run_id} ended as {record.status}"
            if not candidate.pending:
                self._judge(candidate)

    # -- running -------------------------------------------------------------------------------------

    def _others(self, me: int) -> list[str]:
        with self._lock:
            return [f"slot {i}: {text}" for i, text in sorted(self.running.items()) if i != me]

    def _work(self, job: Job, slot: Slot) -> tuple[ExperimentRecord, Candidate | None]:
        with self._lock:
            self.running[slot.index] = job.describe()
        try:
            if job.kind == "baseline":
                record = run_baseline(self.lab, slot, job.seed, job.commit or None, paired_with=job.candidate)
                if record.status != Status.BASELINE and not job.candidate:
                    folder = self.lab.ws.run(record.run_id)
                    raise PgolfError(f"the baseline run {record.run_id} ended as {record.status} "
                                     f"({record.reason}); see {folder.log}")
                return record, None
            if job.kind == "replicate":
                return run_replicate(self.lab, slot, job.candidate, job.commit, job.seed), None
            assert self.proposer is not None
            return run_proposal(self.lab, slot, self.proposer, self._others(slot.index))
        finally:
            with self._lock:
                self.running.pop(slot.index, None)

    def _next_job(self) -> Job | None:
        if self.queue:
            job = self.queue.popleft()
            if job.kind == "baseline" and not job.candidate and self.lab.noise() is not None:
                self._keys.discard(job.key)
                return self._next_job()  # the floor is measured (a resumed loop queued it twice)
            return job
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
        futures: dict[Future[tuple[ExperimentRecord, Candidate | None]], tuple[Slot, Job]] = {}
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
                    slot, job = futures.pop(future)
                    free.append(slot)
                    free.sort(key=lambda s: s.index)
                    try:
                        record, candidate = future.result()
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
                    try:
                        if candidate is not None:
                            self._judge(candidate)
                        self._finished(job, record)
                    except BaseException as err:  # noqa: BLE001 - re-raised once the other slots finished
                        failure = failure or err
                        self._halted = True
        if failure is not None:
            raise failure
        return self.schedule
