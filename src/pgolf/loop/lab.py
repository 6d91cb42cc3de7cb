"""The state every slot shares (workspace, ledger, refs, budget, events) and the steps of one run:
allocate its id, execute it on the local tier, and record it.

Recording is the one critical section: the ledger row is written first, then the git move, the
proposer's feedback and program.md, all under the refs' lock, so any number of slots can finish in any
order. `.pgolf/running/<run_id>.json` says what is in flight (see `pgolf.loop.recovery`).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from typing import Any

from pgolf.atomic import atomic_write_text
from pgolf.compute.base import Backend, RunOutcome, RunRequest
from pgolf.compute.local import LocalBackend
from pgolf.config import PgolfConfig
from pgolf.ledger import LedgerRow
from pgolf.logs import RunResult, read_run_result
from pgolf.loop.breaker import ProposerFailure
from pgolf.loop.events import ExperimentRecord, LoopEvents, QuietEvents
from pgolf.loop.hyperparams import find, read_hyperparameters
from pgolf.loop.inflight import InFlight
from pgolf.loop.judge import KeepPolicy
from pgolf.loop.noise import BASELINE_SEED, NoiseFloor, noise_floor
from pgolf.loop.proposers.base import Proposer
from pgolf.loop.refs import Refs
from pgolf.loop.slots import Slot
from pgolf.status import Status
from pgolf.workspace import RunFolder, Workspace

TIER = "local"
_RUN_ID = re.compile(r"^r(\d+)")


def write_json(path: Any, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def code_lines(text: str) -> int:
    """Non-blank lines: what "the script got simpler" counts."""
    return sum(1 for line in text.splitlines() if line.strip())


class Lab:
    """One workspace's loop state on the local tier, shared by every slot."""

    def __init__(self, ws: Workspace, config: PgolfConfig, *, backend: Backend | None = None,
                 events: LoopEvents | None = None, cancel: threading.Event | None = None,
                 stop: threading.Event | None = None) -> None:
        self.ws = ws
        self.config = config
        self.events = events or QuietEvents()
        self.cancel = cancel or threading.Event()  # abort the runs in flight
        self.stop = stop or threading.Event()  # start no new run
        self._backend = backend  # one backend for every run (tests); else a LocalBackend per run
        self.refs = Refs(ws)
        self.ledger = ws.ledger()
        self.budget = ws.budget(config)
        self.ruleset = config.get_ruleset()
        self.policy = KeepPolicy.from_config(config.loop)
        self.first_seed = BASELINE_SEED  # a proposal's first run; the same seed as the first baseline: paired
        self._ids = threading.Lock()

    # -- state -------------------------------------------------------------------------------------

    def rows(self) -> list[LedgerRow]:
        """The ledger's complete rows."""
        return self.ledger.rows()

    def save(self, state: InFlight) -> None:
        state.save(self.ws)

    def next_run_id(self) -> str:
        """r0001, r0002, …: one more than any run id in the ledger or the runs folder; its folder is made
        here, so two slots never get the same id."""
        with self._ids:
            seen = [r.run_id for r in self.rows()]
            if self.ws.runs_dir.is_dir():
                seen += [p.name for p in self.ws.runs_dir.iterdir()]
            numbers = [int(m[1]) for s in seen if (m := _RUN_ID.match(s))]
            run_id = f"r{max(numbers, default=0) + 1:04d}"
            self.ws.run(run_id).path.mkdir(parents=True, exist_ok=False)
            return run_id

    def noise(self, rows: list[LedgerRow] | None = None) -> NoiseFloor | None:
        """The noise floor at pgolf/best: its runs' mean, the pooled σ, the screening bar."""
        loop = self.config.loop
        return noise_floor(rows if rows is not None else self.rows(), min_gain=loop.min_gain,
                           screen_sigmas=loop.screen_sigmas, commit=self.refs.best_commit())

    def best(self, rows: list[LedgerRow], noise: NoiseFloor | None) -> tuple[float | None, str]:
        """The score of pgolf/best's commit (the mean of its runs, never one draw) and the run that
        stands for it (its keep, else its first baseline)."""
        commit = self.refs.best_commit()
        mine = [r for r in rows if r.tier == TIER and r.commit == commit]
        run = next((r.run_id for r in reversed(mine) if r.status == Status.KEEP), "") or \
            next((r.run_id for r in mine if r.status == Status.BASELINE), "")
        return (noise.mean if noise is not None and noise.commit == commit else None), run

    def parent_model_bytes(self, parent_run: str) -> int | None:
        result = read_run_result(self.ws.run(parent_run).path) if parent_run else None
        return result.model_bytes if result else None

    # -- running -----------------------------------------------------------------------------------

    def run_env(self, seed: int, slot: Slot) -> dict[str, str]:
        """The environment of a local run: the slot's pinning, the tier's env, the data paths, the seed."""
        data = self.config.data
        return {
            **slot.env,
            **self.config.tiers.local.env,
            "DATA_PATH": str(self.ws.resolve(data.dataset_dir)),
            "TOKENIZER_PATH": str(self.ws.resolve(data.tokenizer_path)),
            "VOCAB_SIZE": str(data.vocab_size),
            "SEED": str(seed),
        }

    def _tracker_info(self, state: InFlight, env: dict[str, str]) -> dict[str, Any]:
        """Tokens per step, the wallclock limit and the slot, for the display's rates and ETA."""
        script = self.refs.script(state.commit)
        tokens = env.get("TRAIN_BATCH_TOKENS")
        if tokens is None:
            param = find(read_hyperparameters(script), "TRAIN_BATCH_TOKENS")
            tokens = param.default if param else None
        try:
            per_step = int(tokens) if tokens is not None else None
        except (TypeError, ValueError):
            per_step = None
        return {"tokens_per_step": per_step, "wallclock_seconds": self.config.tiers.local.wallclock_seconds,
                "slot": state.slot, "seed": state.seed}

    def _backend_for(self, state: InFlight) -> Backend:
        if self._backend is not None:
            return self._backend

        def started(pid: int) -> None:
            state.child_pid = pid  # recovery ends this launcher's process tree
            self.save(state)

        return LocalBackend(on_start=started)

    def execute(self, state: InFlight, slot: Slot) -> tuple[RunOutcome, RunResult | None]:
        """Run the state's commit with its seed in its run folder on the slot."""
        tier = self.config.tiers.local
        folder = self.ws.run(state.run_id)
        env = self.run_env(state.seed, slot)
        request = RunRequest(run_id=state.run_id, workspace_root=self.ws.root, commit=state.commit,
                             command=tier.command, run_dir=folder.path, env=env,
                             wallclock_seconds=tier.wallclock_seconds, timeout_seconds=tier.timeout_seconds,
                             cancel=self.cancel)
        self.events.run_started(state.run_id, state.kind, state.description, self._tracker_info(state, env))

        def line(text: str) -> None:
            self.events.run_line(state.run_id, text)

        outcome = self._backend_for(state).run(request, on_line=line)
        return outcome, read_run_result(folder.path)

    # -- recording ---------------------------------------------------------------------------------

    def record(self, state: InFlight, row: LedgerRow, proposer: Proposer | None,
               decision: dict[str, Any] | None = None) -> None:
        """decision.json, then the ledger row, then git, the proposer's feedback and program.md."""
        folder = self.ws.run(state.run_id)
        if decision is not None and folder.exists():
            write_json(folder.decision, decision)
        with self.refs.lock:
            self.ledger.append(row)
            state.phase, state.status = "recorded", row.status
            self.save(state)
            self.refs.settle(run_id=state.run_id, commit=state.commit, parent_commit=state.parent_commit,
                             status=row.status)
            if proposer is not None and state.proposal_state:
                proposer.observe(state.proposal_state, row.status, row.val_bpb)
            state.clear(self.ws)
            self.refresh_program()

    def refresh_program(self) -> None:
        """Rewrite program.md (every section, once); research problems never stop the loop."""
        from pgolf.sections import refresh_program  # renders research sections too: loaded on first use

        try:
            refresh_program(self.ws, self.config)
        except Exception as err:  # noqa: BLE001 - program.md is advisory: it must never stop the loop
            self.events.message(f"warning: program.md not refreshed: {err}")

    def finish(self, state: InFlight, status: str, result: RunResult | None, reason: str, seconds: float,
               gain: float | None = None, promoted: str = "no",
               verdict: dict[str, Any] | None = None, failure: ProposerFailure | None = None) -> ExperimentRecord:
        """The record of a recorded run, told to the display."""
        record = ExperimentRecord(
            run_id=state.run_id, kind=state.kind, status=status, description=state.description,
            commit=state.commit, val_bpb=result.val_bpb if result else None, reason=reason, gain=gain,
            promoted=promoted, seconds=seconds, slot=state.slot, verdict=verdict or {}, failure=failure,
        )
        self.events.run_finished(record)
        return record

    def folder(self, run_id: str) -> RunFolder:
        return self.ws.run(run_id)

    def drop_folder(self, run_id: str) -> None:
        """Remove the empty folder of a run id that was never recorded."""
        with contextlib.suppress(OSError):
            self.ws.run(run_id).path.rmdir()
