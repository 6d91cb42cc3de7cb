"""One experiment, end to end: propose, commit, preflight, run, decide, record, move git.

The ledger row is always written before git moves, and `.pgolf/inflight.json` says what is in flight,
so a crash at any point is recovered by the next start (see `recover`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.clock import utc_now_iso
from pgolf.compute.base import Backend, RunOutcome, RunRequest
from pgolf.compute.local import LocalBackend, kill_group
from pgolf.config import PgolfConfig
from pgolf.errors import PgolfError, WorkspaceError
from pgolf.ledger import LedgerRow
from pgolf.logs import RunResult, read_run_result
from pgolf.loop.decision import Decision, RunFacts, decide, run_failure
from pgolf.loop.history import loop_sections
from pgolf.loop.hyperparams import find, read_hyperparameters
from pgolf.loop.noise import BASELINE_SEED, NoiseFloor, baseline_seeds, noise_floor
from pgolf.loop.preflight import preflight
from pgolf.loop.promotion import decide_promotion, write_promotion
from pgolf.loop.proposers.base import Proposal, ProposalContext, Proposer
from pgolf.program import update_program
from pgolf.workspace import TRAIN_SCRIPT, Workspace

BEST_BRANCH = "pgolf/best"
EXPLORE_BRANCH = "pgolf/explore"
TAG_PREFIX = "pgolf/exp/"
INFLIGHT_NAME = "inflight.json"
DIFF_NAME = "diff.patch"
DECISION_NAME = "decision.json"
PREFLIGHT_NAME = "preflight.json"
TIER = "local"
_RUN_ID = re.compile(r"^r(\d+)")


@dataclass
class ExperimentRecord:
    """How one run ended, as the loop reports it."""

    run_id: str
    kind: str  # baseline | experiment
    status: str
    description: str
    commit: str
    val_bpb: float | None = None
    reason: str = ""
    gain: float | None = None
    promoted: str = "no"
    seconds: float = 0.0


class LoopEvents(Protocol):
    """What the loop tells its display; every method may be a no-op."""

    def message(self, text: str) -> None: ...
    def run_started(self, run_id: str, kind: str, description: str, tracker_info: dict[str, Any]) -> None: ...
    def line(self, text: str) -> None: ...
    def run_finished(self, record: ExperimentRecord) -> None: ...


class QuietEvents:
    """A display that shows nothing (library use, tests)."""

    def message(self, text: str) -> None:
        pass

    def run_started(self, run_id: str, kind: str, description: str, tracker_info: dict[str, Any]) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def run_finished(self, record: ExperimentRecord) -> None:
        pass


@dataclass
class InFlight:
    """The run in flight, persisted so that a killed pgolf is recovered by the next start."""

    run_id: str
    kind: str
    commit: str
    parent_commit: str
    parent_run: str
    seed: int
    description: str
    proposer: str = ""
    source_item: str = ""
    proposal_state: dict[str, Any] = field(default_factory=dict)
    phase: str = "running"  # proposing | running | recorded
    status: str = ""
    pgolf_pid: int = 0
    child_pid: int = 0


def _code_lines(text: str) -> int:
    """Non-blank lines: what "the script got simpler" counts."""
    return sum(1 for line in text.splitlines() if line.strip())


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=str) + "\n")


class Lab:
    """The experiment lifecycle of one workspace on the local tier."""

    def __init__(self, ws: Workspace, config: PgolfConfig, *, backend: Backend | None = None,
                 events: LoopEvents | None = None, cancel: threading.Event | None = None,
                 stop: threading.Event | None = None) -> None:
        self.ws = ws
        self.config = config
        self.events = events or QuietEvents()
        self.cancel = cancel or threading.Event()  # abort the run in flight
        self.stop = stop or threading.Event()  # start no new run
        self.backend = backend or LocalBackend(on_start=self._child_started)
        self.ledger = ws.ledger()
        self.budget = ws.budget(config)
        self.ruleset = config.get_ruleset()
        self._inflight: InFlight | None = None

    # -- state -------------------------------------------------------------------------------------

    @property
    def inflight_path(self) -> Path:
        return self.ws.state_dir / INFLIGHT_NAME

    def _save_inflight(self, state: InFlight) -> None:
        self._inflight = state
        _write_json(self.inflight_path, asdict(state))

    def _clear_inflight(self) -> None:
        self._inflight = None
        self.inflight_path.unlink(missing_ok=True)

    def _child_started(self, pid: int) -> None:
        if self._inflight is not None:
            self._inflight.child_pid = pid
            self._save_inflight(self._inflight)

    def rows(self) -> list[LedgerRow]:
        """The ledger's complete rows."""
        return self.ledger.rows()

    def next_run_id(self) -> str:
        """r0001, r0002, …: one more than any run id in the ledger or the runs folder."""
        seen = [r.run_id for r in self.rows()]
        if self.ws.runs_dir.is_dir():
            seen += [p.name for p in self.ws.runs_dir.iterdir()]
        numbers = [int(m[1]) for s in seen if (m := _RUN_ID.match(s))]
        return f"r{max(numbers, default=0) + 1:04d}"

    # -- git ---------------------------------------------------------------------------------------

    def _git(self, *args: str, check: bool = True) -> str:
        return git.git(self.ws.root, *args, check=check)

    def best_commit(self) -> str:
        """The commit pgolf/best points at."""
        return self._git("rev-parse", BEST_BRANCH)

    def prepare_git(self) -> None:
        """Create pgolf/best and pgolf/explore when missing and check out pgolf/explore at the best."""
        root = self.ws.root
        if not git.is_repo(root):
            raise WorkspaceError(f"{root} is not a git repository; run `pgolf init` there first")
        if self._git("status", "--porcelain", "--", TRAIN_SCRIPT):
            raise WorkspaceError(f"{TRAIN_SCRIPT} has uncommitted changes; commit them (they become the "
                                 "starting point) or discard them before `pgolf run`")
        if not self._git("rev-parse", "--verify", "-q", f"refs/heads/{BEST_BRANCH}", check=False):
            self._git("branch", BEST_BRANCH, "HEAD")
        if not self._git("rev-parse", "--verify", "-q", f"refs/heads/{EXPLORE_BRANCH}", check=False):
            self._git("branch", EXPLORE_BRANCH, BEST_BRANCH)
        self._git("checkout", "-q", EXPLORE_BRANCH)
        explore, best = git.head_commit(root), self.best_commit()
        if explore != best:
            if self._git("rev-list", "--count", f"{best}..{explore}") != "0":
                raise WorkspaceError(f"{EXPLORE_BRANCH} has commits that are not on {BEST_BRANCH}; merge "
                                     f"them into {BEST_BRANCH} or delete them, then run again")
            self._reset_to_best()  # explore is only behind (best was moved by hand): catch up

    def _reset_to_best(self) -> None:
        """Point pgolf/explore at the best and restore its script; other files are left as they are."""
        self._git("reset", "-q", "--mixed", BEST_BRANCH)
        self._git("checkout", "-q", "--", TRAIN_SCRIPT)

    def _move_git(self, state: InFlight, status: str) -> None:
        """After the row is written: keep advances pgolf/best; anything else is tagged and reset."""
        if state.kind == "baseline" or state.commit == state.parent_commit:
            self._reset_to_best()
            return
        if status == "keep":
            self._git("branch", "-f", BEST_BRANCH, state.commit)
            self._reset_to_best()  # a no-op unless recovery runs after the move
            return
        tag = TAG_PREFIX + state.run_id
        if not self._git("rev-parse", "--verify", "-q", f"refs/tags/{tag}", check=False):
            self._git("tag", tag, state.commit)
        self._reset_to_best()

    # -- scores ------------------------------------------------------------------------------------

    def noise(self, rows: list[LedgerRow] | None = None) -> NoiseFloor | None:
        """The noise floor from the ledger's baseline runs."""
        loop = self.config.loop
        return noise_floor(rows if rows is not None else self.rows(), sigma_multiplier=loop.sigma_multiplier,
                           min_gain=loop.min_gain, tier=TIER)

    def best(self, rows: list[LedgerRow], noise: NoiseFloor | None) -> tuple[float | None, str]:
        """The score of pgolf/best's commit and the run that measured it."""
        commit = self.best_commit()
        keeps = [r for r in rows if r.tier == TIER and r.status == "keep" and r.commit == commit
                 and r.val_bpb is not None]
        if keeps:
            return keeps[-1].val_bpb, keeps[-1].run_id
        if noise is None:
            return None, ""
        first = next((r.run_id for r in rows if r.status == "baseline" and r.commit == noise.commit), "")
        return noise.mean, first

    def _parent_model_bytes(self, parent_run: str) -> int | None:
        result = read_run_result(self.ws.run_dir(parent_run)) if parent_run else None
        return result.model_bytes if result else None

    # -- running -----------------------------------------------------------------------------------

    def run_env(self, seed: int) -> dict[str, str]:
        """The environment of a local run: the tier's env, the data paths, and the seed."""
        data = self.config.data
        return {
            **self.config.tiers.local.env,
            "DATA_PATH": str(self.ws.resolve(data.dataset_dir)),
            "TOKENIZER_PATH": str(self.ws.resolve(data.tokenizer_path)),
            "VOCAB_SIZE": str(data.vocab_size),
            "SEED": str(seed),
        }

    def _tracker_info(self, commit: str, env: dict[str, str]) -> dict[str, Any]:
        """Tokens per step and the wallclock limit, for the display's rates and ETA."""
        script = self._git("show", f"{commit}:{TRAIN_SCRIPT}")
        tokens = env.get("TRAIN_BATCH_TOKENS")
        if tokens is None:
            param = find(read_hyperparameters(script), "TRAIN_BATCH_TOKENS")
            tokens = param.default if param else None
        try:
            per_step = int(tokens) if tokens is not None else None
        except (TypeError, ValueError):
            per_step = None
        return {"tokens_per_step": per_step, "wallclock_seconds": self.config.tiers.local.wallclock_seconds}

    def _execute(self, state: InFlight) -> tuple[RunOutcome, RunResult | None]:
        tier = self.config.tiers.local
        run_dir = self.ws.run_dir(state.run_id)
        env = self.run_env(state.seed)
        request = RunRequest(run_id=state.run_id, workspace_root=self.ws.root, commit=state.commit,
                             command=tier.command, run_dir=run_dir, env=env,
                             wallclock_seconds=tier.wallclock_seconds, timeout_seconds=tier.timeout_seconds,
                             cancel=self.cancel)
        self.events.run_started(state.run_id, state.kind, state.description, self._tracker_info(state.commit, env))
        outcome = self.backend.run(request, on_line=self.events.line)
        return outcome, read_run_result(run_dir)

    def _facts(self, outcome: RunOutcome, result: RunResult | None) -> RunFacts:
        reason = outcome.error
        if result is not None and result.reason:
            reason = result.reason
        if result is None or result.status == "incomplete":
            status = "crashed" if not (result and result.complete) else "ok"
            if outcome.returncode == 3:
                status = "aborted"
        else:
            status = result.status
        if outcome.returncode not in (0, None) and status == "ok" and outcome.returncode != 3:
            status = "crashed"  # a score was printed, then the script died (e.g. during export)
        if not reason and status == "crashed":
            reason = _last_error_line(outcome.log_path)
        return RunFacts(
            returncode=outcome.returncode, timed_out=outcome.timed_out, interrupted=outcome.interrupted,
            result_status=status, val_bpb=result.val_bpb if result else None,
            artifact_bytes=result.artifact_bytes if result else None,
            train_seconds=result.train_seconds if result else None, reason=reason,
            step_seconds=result.step_avg_ms / 1000 if result and result.step_avg_ms else None,
        )

    def _row(self, state: InFlight, status: str, result: RunResult | None, *, promoted: str = "no",
             reason: str = "", cost: float = 0.0) -> LedgerRow:
        # Why a run failed belongs in the ledger; why a measured run was kept or not is in decision.json.
        failed = status not in ("keep", "discard", "baseline", "skipped")
        description = state.description + (f" ({reason})" if reason and failed else "")
        memory = result.peak_memory_mb / 1024 if result and result.peak_memory_mb is not None else None
        scored = status in ("keep", "discard", "baseline")
        return LedgerRow(
            commit=state.commit, tier=TIER, val_bpb=result.val_bpb if result and scored else None,
            artifact_bytes=result.artifact_bytes if result else None, memory_gb=memory, status=status,
            promoted=promoted, cost_usd=cost, description=description, source_item=state.source_item,
            run_id=state.run_id, parent_run=state.parent_run, seed=state.seed,
            steps=result.steps if result else None, train_seconds=result.train_seconds if result else None,
            finished_at=utc_now_iso(),
        )

    def _record(self, state: InFlight, row: LedgerRow, proposer: Proposer | None) -> None:
        """Ledger first, then git, then the proposer's feedback; inflight.json tracks each step."""
        self.ledger.append(row)
        state.phase, state.status = "recorded", row.status
        self._save_inflight(state)
        self._move_git(state, row.status)
        if proposer is not None and state.proposal_state:
            proposer.observe(state.proposal_state, row.status, row.val_bpb)
        self._clear_inflight()
        self.refresh_program()

    # -- public steps ------------------------------------------------------------------------------

    def measure_noise_floor(self) -> NoiseFloor:
        """Run the unchanged best script with the missing baseline seeds; raise if it cannot score."""
        rows = self.rows()
        commit = self.best_commit()
        done = {r.seed for r in rows if r.status == "baseline" and r.commit == commit and r.tier == TIER}
        existing = self.noise(rows)
        if existing is not None and existing.commit != commit:
            return existing  # measured on an earlier best; still the floor
        for seed in baseline_seeds(self.config.loop.noise_seeds):
            if seed in done:
                continue
            if self.cancel.is_set() or self.stop.is_set():
                raise PgolfError("stopped before the noise floor was measured")
            record = self.run_baseline(seed)
            if record.status != "baseline":
                raise PgolfError(f"the baseline run {record.run_id} ended as {record.status} "
                                 f"({record.reason}); see {self.ws.run_dir(record.run_id) / 'train.log'}")
        floor = self.noise()
        if floor is None:
            raise PgolfError("no noise floor: the baseline runs did not score")
        return floor

    def run_baseline(self, seed: int) -> ExperimentRecord:
        """One run of the unchanged best commit with `seed`: a noise-floor point."""
        commit = self.best_commit()
        state = InFlight(run_id=self.next_run_id(), kind="baseline", commit=commit, parent_commit=commit,
                         parent_run="", seed=seed, description=f"baseline, seed {seed}", pgolf_pid=os.getpid())
        self.ws.run_dir(state.run_id).mkdir(parents=True, exist_ok=True)
        self._save_inflight(state)
        outcome, result = self._execute(state)
        failed = run_failure(self._facts(outcome, result))
        # A baseline is recorded whatever its size: it measures noise, it is not a candidate.
        status, reason = (failed.status, failed.reason) if failed else ("baseline", "")
        self._record(state, self._row(state, status, result, reason=reason), None)
        return self._finish(state, status, result, reason, outcome.seconds)

    def _finish(self, state: InFlight, status: str, result: RunResult | None, reason: str, seconds: float,
                decision: Decision | None = None, promoted: str = "no") -> ExperimentRecord:
        record = ExperimentRecord(
            run_id=state.run_id, kind=state.kind, status=status, description=state.description,
            commit=state.commit, val_bpb=result.val_bpb if result else None, reason=reason,
            gain=decision.gain if decision else None, promoted=promoted, seconds=seconds,
        )
        self.events.run_finished(record)
        return record

    def run_experiment(self, proposer: Proposer) -> ExperimentRecord:
        """Propose a change, commit it on pgolf/explore, preflight it, run it, decide, record, move git."""
        rows = self.rows()
        noise = self.noise(rows)
        best_bpb, best_run = self.best(rows, noise)
        best_commit = self.best_commit()
        run_id = self.next_run_id()
        run_dir = self.ws.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        state = InFlight(run_id=run_id, kind="experiment", commit=best_commit, parent_commit=best_commit,
                         parent_run=best_run, seed=BASELINE_SEED, description=f"{proposer.kind} proposal",
                         proposer=proposer.kind, phase="proposing", pgolf_pid=os.getpid())
        self._save_inflight(state)
        ctx = ProposalContext(ws=self.ws, config=self.config, rows=rows, noise=noise, best_bpb=best_bpb,
                              best_commit=best_commit, run_dir=run_dir, budget=self.budget, cancel=self.cancel)
        self.events.message(f"{run_id}: asking the {proposer.kind} proposer for a change")
        try:
            proposal = proposer.propose(ctx)
        except BaseException:
            self._reset_to_best()
            self._clear_inflight()
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # nothing was recorded for this id; an empty folder would only confuse
            raise
        state.description, state.source_item = proposal.description, proposal.source_item
        state.proposal_state = proposal.state
        if self.cancel.is_set():
            return self._no_run(state, proposal, "aborted", "stopped by the user during the proposal", proposer)
        if proposal.rejected:
            return self._no_run(state, proposal, "rejected", proposal.rejected, proposer)
        if not proposal.changed:
            return self._no_run(state, proposal, "skipped", "no change to run", proposer, best_bpb)
        return self._run_proposal(state, proposer, best_bpb, noise, run_dir)

    def _no_run(self, state: InFlight, proposal: Proposal, status: str, reason: str, proposer: Proposer,
                score: float | None = None) -> ExperimentRecord:
        """Record a proposal that is not run (rejected, skipped, aborted) against the best commit."""
        self._reset_to_best()
        _write_json(self.ws.run_dir(state.run_id) / DECISION_NAME, {"status": status, "reason": reason})
        row = self._row(state, status, None, reason=reason)
        self.ledger.append(row)
        if state.proposal_state:
            proposer.observe(state.proposal_state, status, score)
        self._clear_inflight()
        self.refresh_program()
        return self._finish(state, status, None, reason, 0.0)

    def _run_proposal(self, state: InFlight, proposer: Proposer, best_bpb: float | None,
                      noise: NoiseFloor | None, run_dir: Path) -> ExperimentRecord:
        parent_source = self._git("show", f"{state.parent_commit}:{TRAIN_SCRIPT}")
        self._git("add", TRAIN_SCRIPT)
        self._git("commit", "-q", "-m", f"{state.run_id}: {state.description}")
        state.commit = git.head_commit(self.ws.root)
        state.phase = "running"
        self._save_inflight(state)
        atomic_write_text(run_dir / DIFF_NAME, self._git("diff", state.parent_commit, state.commit) + "\n")
        source = self.ws.train_script.read_text(encoding="utf-8")
        env = self.run_env(state.seed)
        check = preflight(source, artifact_limit=self.ruleset.artifact_limit_bytes,
                          margin_bytes=self.config.loop.artifact_margin_bytes, env=env,
                          parent_source=parent_source, parent_model_bytes=self._parent_model_bytes(state.parent_run))
        _write_json(run_dir / PREFLIGHT_NAME, check.as_dict())
        if not check.ok:
            status = "oversize" if check.oversize else "crash"
            _write_json(run_dir / DECISION_NAME, {"status": status, "reason": check.failure})
            self._record(state, self._row(state, status, None, reason=check.failure), proposer)
            return self._finish(state, status, None, check.failure, 0.0)
        outcome, result = self._execute(state)
        facts = self._facts(outcome, result)
        decision = decide(facts, best_bpb=best_bpb if best_bpb is not None else float("inf"),
                          threshold=noise.threshold if noise else self.config.loop.min_gain,
                          artifact_limit=self.ruleset.artifact_limit_bytes,
                          wallclock_seconds=self.config.tiers.local.wallclock_seconds,
                          lines_before=_code_lines(parent_source), lines_after=_code_lines(source))
        _write_json(run_dir / DECISION_NAME, decision.as_dict())
        promoted = "no"
        if decision.status == "keep" and result is not None and result.val_bpb is not None:
            promotion = decide_promotion(self.config, self.budget, self.rows(), val_bpb=result.val_bpb,
                                         artifact_bytes=result.artifact_bytes,
                                         baseline_mean=noise.mean if noise else None)
            write_promotion(run_dir, promotion)
            promoted = promotion.promoted
        row = self._row(state, decision.status, result, promoted=promoted, reason=decision.reason)
        self._record(state, row, proposer)
        return self._finish(state, decision.status, result, decision.reason, outcome.seconds, decision, promoted)

    def refresh_program(self) -> None:
        """Refresh every program.md section; the loop's own (best, history) are written last."""
        try:
            from pgolf.research.inject import inject_all

            inject_all(self.ws, self.config)
        except Exception as err:  # noqa: BLE001 - research is advisory: it must never stop the loop
            self.events.message(f"warning: program.md research sections not refreshed: {err}")
        rows = self.rows()
        update_program(self.ws.program_md, loop_sections(rows, self.noise(rows)))

    # -- recovery ----------------------------------------------------------------------------------

    def recover(self) -> str | None:
        """Finish what a killed pgolf left in flight; return a sentence saying what was done."""
        try:
            data = json.loads(self.inflight_path.read_text(encoding="utf-8"))
            state = InFlight(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as err:
            self.inflight_path.unlink(missing_ok=True)
            return f"ignored a damaged {INFLIGHT_NAME} ({err})"
        _stop_leftover_child(state, self.ws.run_dir(state.run_id))
        if self._git("rev-parse", "--abbrev-ref", "HEAD") != EXPLORE_BRANCH:
            self._git("checkout", "-q", EXPLORE_BRANCH)  # the resets below must move explore, never another branch
        recorded = {r.run_id: r for r in self.rows()}
        if state.run_id in recorded:
            # The row was written; only the git move (or less) was left to do.
            self._move_git(state, recorded[state.run_id].status)
            self._clear_inflight()
            self.refresh_program()
            return f"finished recording {state.run_id} ({recorded[state.run_id].status})"
        if state.phase == "proposing":
            status, reason = "aborted", "pgolf stopped while the proposer was working"
            head = git.head_commit(self.ws.root)
            if head != state.parent_commit:
                # Committed before inflight.json could say so: adopt the commit so that it is tagged.
                state.commit, reason = head, "pgolf stopped after committing the proposal, before running it"
        else:
            status, reason = "crash", "in flight when pgolf was killed; recorded by the next start"
        result = read_run_result(self.ws.run_dir(state.run_id)) if state.phase == "running" else None
        row = self._row(state, status, result, reason=reason)
        self.ledger.append(row)
        self._move_git(state, status)
        self._clear_inflight()
        self.refresh_program()
        return f"recorded the interrupted run {state.run_id} as {status}"


def _last_error_line(log_path: Path) -> str:
    """The last non-empty line of a log: usually the exception of a crashed script."""
    try:
        lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((line for line in reversed(lines) if line), "")
    return last[:200]


def _stop_leftover_child(state: InFlight, run_dir: Path) -> None:
    """Kill the training process a killed pgolf left behind, when it is still running in its folder."""
    pid = state.child_pid
    if not pid:
        return
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return  # gone, or no /proc to prove it is ours: never kill a stranger
    if cwd.resolve() == run_dir.resolve():
        kill_group(pid)
