"""Promotion execution: plan a remote run of a kept local experiment, check every gate, then
reserve → run → settle, and write the remote row (tier, parent_run, cost) to the ledger.

The decision to queue (`promoted=pending`) lives in `pgolf.loop.promotion`; this module spends money.
The worst case is reserved: the run's timeout plus the pod's start-up limit plus allowances for copying,
stopping and terminating. The run gets one deadline at the end of that span, which ends every phase
(the pod is terminated then, whatever it is doing), so the settlement (the provider's price × the actual
lifetime) stays within the reservation as long as the provider answers the termination in time.

A promotion under way has a file in `.pgolf/inflight/`, written before anything is reserved; if pgolf is
killed mid-run, the next start (a promotion, the queue, `sweep_at_start`) stops what is still running,
settles the money, writes a crash row and marks the parent promoted, so the queue never pays twice.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.clock import utc_now_iso
from pgolf.compute.base import Backend, LineCallback, RunOutcome, RunRequest
from pgolf.compute.early_abort import AbortPoint, plan_early_abort
from pgolf.compute.pods import (
    owner_state,
    owner_tags,
    pod_may_be_running,
    register_cleanup,
    unregister_cleanup,
)
from pgolf.compute.runpod import API_KEY_ENV, RunpodBackend, lifecycle_from_config
from pgolf.compute.ssh import STOP_SECONDS, RemoteLayout, SshBackend, SshTarget
from pgolf.config import PgolfConfig, RunpodTier, SshTier, secret
from pgolf.errors import BudgetRefused, PgolfError
from pgolf.ledger import LedgerRow, clean_text
from pgolf.logs import RunResult, read_run_result
from pgolf.loop.decision import Gate
from pgolf.loop.promotion import pending_promotions, remote_tier_name
from pgolf.workspace import Workspace

PLAN_NAME = "plan.json"
INFLIGHT_DIR = "inflight"
# Gates that may pass later (with time, or once the user fixes pgolf.toml or the environment): the row
# stays pending. The others judge the run itself and refuse it for good.
TRANSIENT_GATES = frozenset({"rate_limit", "confirmation", "remote_tier", "api_key"})
# Expected (not worst-case) seconds around training and evaluation: boot, staging, fetching.
_SETUP_SECONDS = 300.0
# Worst-case allowances inside the reservation: copying the commit, data and results (all within the
# run's deadline, which cuts them short), and the provider's answer to the termination (4 tries of
# 30 s with back-off), which comes after the deadline.
_COPY_ALLOWANCE_SECONDS = 300.0
_TERMINATE_SECONDS = 150.0
# Environment names that change how many processes or GPUs a run uses.
_GPU_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NPROC_PER_NODE",
                      "NPROC", "NUM_GPUS"})


@dataclass
class PromotionPlan:
    """What a promotion would do and cost, and every gate's verdict."""

    run_id: str
    remote_run_id: str
    commit: str
    tier: str | None
    gpus: int
    gpu_kind: str
    price_per_hour: float
    wallclock_seconds: float
    timeout_seconds: float
    worst_seconds: float  # what is reserved; the run's deadline is this long after it starts
    expected_seconds: float
    expected_usd: float
    reserved_usd: float
    available_usd: float
    budget_after_usd: float
    command: str
    env: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    early_abort: AbortPoint | None = None
    gates: list[Gate] = field(default_factory=list)

    @property
    def refusal(self) -> Gate | None:
        """The first gate that fails, or None when every gate passes."""
        return next((g for g in self.gates if not g.passed), None)

    @property
    def paid(self) -> bool:
        return self.price_per_hour > 0

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output and plan.json."""
        data = asdict(self)
        data["ok"] = self.refusal is None
        return data


@dataclass
class PromotionResult:
    """How a promotion ended: dry-run, refused, pending (a transient gate), or the remote row's status."""

    plan: PromotionPlan
    status: str
    reason: str = ""
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    row: LedgerRow | None = None
    outcome: RunOutcome | None = None

    @property
    def run_id(self) -> str:
        """The local run that was (or was to be) promoted."""
        return self.plan.run_id

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return {"run_id": self.run_id, "status": self.status, "reason": self.reason, "cost_usd": self.cost_usd,
                "saved_usd": self.saved_usd, "row": self.row.as_dict() if self.row else None,
                "plan": self.plan.as_dict()}


# -- the plan ------------------------------------------------------------------------------------


def _tier_settings(config: PgolfConfig, name: str | None) -> SshTier | RunpodTier | None:
    if name == "ssh":
        return config.tiers.ssh
    if name == "runpod":
        return config.tiers.runpod
    return None


def _gpus(tier: SshTier | RunpodTier | None) -> int:
    if isinstance(tier, SshTier):
        return tier.gpus
    return tier.gpu_count if isinstance(tier, RunpodTier) else 0


def _price_per_hour(config: PgolfConfig, tier: SshTier | RunpodTier | None, gpus: int) -> float:
    if isinstance(tier, SshTier):
        return tier.price_per_gpu_hour * gpus
    if isinstance(tier, RunpodTier):
        per_gpu = tier.price_per_gpu_hour
        return (config.budget.price_per_gpu_hour if per_gpu is None else per_gpu) * gpus
    return 0.0


def remote_data(ws: Workspace, config: PgolfConfig, tier: SshTier | RunpodTier | None
                ) -> tuple[dict[str, str], tuple[tuple[Path, str], ...]]:
    """DATA_PATH/TOKENIZER_PATH on the remote host, and the uploads when the tier syncs data.

    With a `data_dir` (an absolute path on the host), the challenge's layout below it is assumed
    (`datasets/<name>`, `tokenizers/<file>`). Without one, synced data goes to `<remote_dir>/data`
    (found from the run folder as `../data`), and unsynced paths of [data] are used as written.
    """
    dataset, tokenizer = config.data.dataset_dir, config.data.tokenizer_path
    data_dir = getattr(tier, "data_dir", None)
    sync = bool(getattr(tier, "sync_data", False))
    layout = (f"datasets/{Path(dataset).name}", f"tokenizers/{Path(tokenizer).name}")
    if data_dir:
        targets = [f"{data_dir.rstrip('/')}/{part}" for part in layout]
        seen = targets
    elif sync and tier is not None:
        targets = [f"{tier.remote_dir.rstrip('/')}/data/{part}" for part in layout]
        seen = [f"../data/{part}" for part in layout]  # the script runs in <remote_dir>/<run_id>
    else:
        targets = seen = [dataset, tokenizer]
    env = {"DATA_PATH": seen[0], "TOKENIZER_PATH": seen[1], "VOCAB_SIZE": str(config.data.vocab_size)}
    uploads: tuple[tuple[Path, str], ...] = ()
    if sync:
        uploads = ((ws.resolve(dataset), targets[0]), (ws.resolve(tokenizer), targets[1]))
    return env, uploads


def _parent_row(ws: Workspace, run_id: str) -> LedgerRow:
    rows = [r for r in ws.ledger().rows() if r.run_id == run_id]
    if not rows:
        raise PgolfError(f"no run {run_id!r} in {ws.results_tsv.name}")
    return rows[-1]


def _remote_run_id(ws: Workspace, parent: str, tier: str) -> str:
    base = f"{parent}-{tier}"
    candidate, n = base, 1
    while ws.run_dir(candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def _budget_gates(budget: BudgetManager, paid: bool, reserved_usd: float) -> list[Gate]:
    if not paid:
        return [Gate("reserve", True, "not a paid run (price 0)"),
                Gate("rate_limit", True, "not a paid run (price 0)")]
    st = budget.status()
    now = budget.clock()
    left = st.available_usd - reserved_usd
    reserve = Gate(
        "reserve", left >= st.reserve_usd,
        f"${reserved_usd:.2f} reserved leaves ${left:.2f} of ${st.available_usd:.2f} available "
        f"(reserve floor ${st.reserve_usd:.2f})")
    if st.next_paid_allowed_at is not None and now < st.next_paid_allowed_at:
        wait = (st.next_paid_allowed_at - now) / 60.0
        rate = Gate("rate_limit", False, f"one paid run per "
                             f"{budget.settings.min_seconds_between_paid_runs:.0f} s; next in {wait:.1f} min")
    else:
        rate = Gate("rate_limit", True, "no paid run started within the limit")
    return [reserve, rate]


def _env_warnings(defaults: dict[str, str], overrides: dict[str, str], gpus: int, track_gpus: int,
                  gpu_kind: str) -> list[str]:
    warnings = [f"[tiers] env overrides {k}={overrides[k]!r} (pgolf would set {defaults[k]!r})"
                for k in sorted(overrides) if k in defaults and overrides[k] != defaults[k]]
    warnings += [f"[tiers] env sets {k}={overrides[k]!r}, which changes the GPU/process count"
                 for k in sorted(overrides) if k.upper() in _GPU_ENV]
    if gpus != track_gpus:
        warnings.append(f"{gpus} GPU(s); the track's record runs use {track_gpus}×{gpu_kind}")
    return warnings


def plan_promotion(ws: Workspace, config: PgolfConfig, run_id: str, *, yes: bool = False,
                   budget: BudgetManager | None = None) -> PromotionPlan:
    """The plan for promoting `run_id`: tier, GPUs, cost, budget after, each gate's verdict."""
    budget = budget or ws.budget(config)
    parent = _parent_row(ws, run_id)
    ruleset = config.get_ruleset()
    tier_name = remote_tier_name(config)
    tier = _tier_settings(config, tier_name)
    gpus = _gpus(tier)
    price = _price_per_hour(config, tier, gpus)
    timeout = tier.timeout_seconds if tier else 0.0
    wallclock = ruleset.train_seconds or timeout
    expected_seconds = wallclock + (ruleset.eval_seconds or 0.0) + _SETUP_SECONDS
    worst_seconds = timeout + _COPY_ALLOWANCE_SECONDS + STOP_SECONDS
    if isinstance(tier, RunpodTier):
        worst_seconds += tier.ready_timeout_seconds + _TERMINATE_SECONDS
    rows = ws.ledger().rows()
    abort = plan_early_abort(ws.runs_dir, rows, tier_name, config.tiers.early_abort) if tier_name else None
    data_env, _uploads = remote_data(ws, config, tier)
    defaults = {**data_env, "MAX_WALLCLOCK_SECONDS": f"{wallclock:g}",
                **({"SEED": str(parent.seed)} if parent.seed is not None else {}),
                **(abort.env() if abort else {})}
    overrides = dict(tier.env) if tier else {}
    reserved = price * worst_seconds / 3600.0
    available = budget.status().available_usd
    command = tier.command.replace("{gpus}", str(gpus)) if tier else ""
    gpu_kind = tier.gpu_type if isinstance(tier, RunpodTier) else ruleset.gpu_kind
    limit = ruleset.artifact_limit_bytes
    gates = [
        Gate("remote_tier", tier is not None,
                      f"[tiers.{tier_name}]" if tier else "no [tiers.ssh] or [tiers.runpod] in pgolf.toml"),
        Gate("parent", parent.tier == "local" and parent.status in ("keep", "baseline")
                      and bool(parent.commit),
                      f"{parent.tier} run, status {parent.status}, commit {parent.commit[:8] or '-'}"),
        Gate("artifact_bytes", parent.artifact_bytes is not None and parent.artifact_bytes <= limit,
                      f"{parent.artifact_bytes if parent.artifact_bytes is not None else 'unknown'} "
                      f"of {limit:,}"),
    ]
    if isinstance(tier, RunpodTier):
        has_key = bool(secret(API_KEY_ENV, ws.root))
        gates.append(Gate("api_key", has_key, f"{API_KEY_ENV} is set" if has_key
                                   else f"{API_KEY_ENV} is not set"))
    gates += _budget_gates(budget, price > 0, reserved)
    confirmed = yes or config.budget.auto_confirm or gpus < config.budget.confirm_min_gpus
    gates.append(Gate(
        "confirmation", confirmed,
        f"{gpus} GPU(s) < {config.budget.confirm_min_gpus}" if gpus < config.budget.confirm_min_gpus
        else "confirmed (--yes or budget.auto_confirm)" if confirmed
        else f"{gpus} GPUs need --yes (or budget.auto_confirm = true)"))
    return PromotionPlan(
        run_id=run_id, remote_run_id=_remote_run_id(ws, run_id, tier_name or "remote"),
        commit=parent.commit, tier=tier_name, gpus=gpus, gpu_kind=gpu_kind, price_per_hour=price,
        wallclock_seconds=wallclock, timeout_seconds=timeout, worst_seconds=worst_seconds,
        expected_seconds=expected_seconds,
        expected_usd=price * expected_seconds / 3600.0, reserved_usd=reserved, available_usd=available,
        budget_after_usd=available - reserved, command=command, env={**defaults, **overrides},
        overrides=overrides, warnings=_env_warnings(defaults, overrides, gpus, ruleset.gpu_count, gpu_kind),
        early_abort=abort, gates=gates,
    )


# -- execution ---------------------------------------------------------------------------------


def _ssh_target(ws: Workspace, tier: SshTier) -> SshTarget:
    return SshTarget(host=tier.host, user=tier.user, port=tier.port,
                     identity_file=ws.resolve(tier.identity_file) if tier.identity_file else None,
                     known_hosts=ws.state_dir / "known_hosts")


def make_backend(ws: Workspace, config: PgolfConfig, plan: PromotionPlan,
                 budget: BudgetManager) -> Backend:
    """The backend of the plan's tier, wired to this workspace's budget."""
    tier = _tier_settings(config, plan.tier)
    _env, uploads = remote_data(ws, config, tier)
    if isinstance(tier, SshTier):
        return SshBackend(_ssh_target(ws, tier), RemoteLayout(tier.remote_dir, uploads), tuple(tier.fetch))
    if isinstance(tier, RunpodTier):
        lifecycle = lifecycle_from_config(ws, config, budget, max_cost_per_hr=plan.price_per_hour)
        return RunpodBackend(ws, tier, lifecycle, data_uploads=uploads)
    raise PgolfError("no remote tier configured")


@dataclass
class InFlight:
    """A promotion under way: what the next start needs to stop, settle and record it after a kill."""

    remote_run_id: str
    run_id: str
    tier: str
    commit: str
    started_at: float
    price_per_hour: float
    remote_run: str = ""  # the SSH tier's run folder on the host
    reservation_id: str = ""
    owner: dict[str, str] = field(default_factory=dict)
    stopped_at: float | None = None  # set by a signal handler once it stopped the remote run

    @staticmethod
    def folder(ws: Workspace) -> Path:
        return ws.state_dir / INFLIGHT_DIR

    def path(self, ws: Workspace) -> Path:
        return self.folder(ws) / f"{self.remote_run_id}.json"

    def save(self, ws: Workspace) -> None:
        """Write the file atomically (no lock: a signal handler calls this)."""
        self.folder(ws).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(ws), json.dumps(asdict(self), indent=1) + "\n")

    def remove(self, ws: Workspace) -> None:
        self.path(ws).unlink(missing_ok=True)


def _in_flight(ws: Workspace) -> list[InFlight]:
    folder = InFlight.folder(ws)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            found.append(InFlight(**json.loads(path.read_text(encoding="utf-8"))))
    return found


def _entry_of(budget: BudgetManager, flight: InFlight) -> tuple[str, str, float]:
    """(reservation id, state, settled $) of the flight's reservation; found by run id when a kill
    came between reserving and writing the id down."""
    entries = budget.history()
    entry = next((e for e in entries if e.id == flight.reservation_id), None) if flight.reservation_id else \
        next((e for e in entries if e.run_id == flight.remote_run_id and e.kind == "run"), None)
    if entry is None:
        return "", "", 0.0
    return entry.id, entry.state, entry.actual_usd or 0.0


def _close_reservation(ws: Workspace, budget: BudgetManager, flight: InFlight, own_cost: float | None,
                       seconds: float) -> tuple[float, str]:
    """Settle or release what is still reserved; (the run's cost as the budget holds it, a note).

    `own_cost` is the SSH tier's price × time; a pod's cost is settled by its lifecycle. A reservation
    that a pod without a recorded termination points to is never released: it stays for the sweep.
    """
    reservation, state, _cost = _entry_of(budget, flight)
    if not reservation:
        return own_cost or 0.0, ""
    if state == "reserved":
        if pod_may_be_running(ws, reservation):
            return 0.0, "the pod may still be running: `pgolf compute pods sweep` settles its cost"
        if own_cost:
            budget.settle(reservation, own_cost, seconds=seconds)
        else:
            budget.release(reservation, "nothing was spent")
    _id, state, cost = _entry_of(budget, flight)
    return (cost if state == "settled" else 0.0), ""


def _status(outcome: RunOutcome, result: RunResult | None, limit: int) -> tuple[str, str]:
    """The remote row's status and a note on why."""
    if outcome.timed_out:
        return "timeout", outcome.error
    if result is not None and result.status == "aborted":
        return "aborted", result.reason or "early abort"
    if result is None or result.status != "ok" or result.val_bpb is None:
        reason = outcome.error or (result.reason if result else "") or f"exit {outcome.returncode}"
        return "crash", reason
    if result.artifact_bytes is not None and result.artifact_bytes > limit:
        return "oversize", f"artifact {result.artifact_bytes:,} > {limit:,} bytes"
    return "keep", ""


def _remote_row(flight: InFlight, parent: LedgerRow, status: str, note: str, cost: float,
                result: RunResult | None) -> LedgerRow:
    scored = status in ("keep", "oversize") and result is not None
    description = f"{parent.description} [{flight.tier} run of {flight.run_id}]"
    if note:
        description += f" ({note})"
    return LedgerRow(
        commit=flight.commit, tier=flight.tier,
        val_bpb=result.val_bpb if scored and result else None,
        artifact_bytes=result.artifact_bytes if result else None,
        memory_gb=round(result.peak_memory_mb / 1024.0, 2) if result and result.peak_memory_mb else None,
        status=status, promoted="", cost_usd=round(cost, 4), description=clean_text(description),
        source_item=parent.source_item, run_id=flight.remote_run_id, parent_run=flight.run_id,
        seed=result.seed if result and result.seed is not None else parent.seed,
        steps=result.steps if result else None,
        train_seconds=result.train_seconds if result else None,
        finished_at=utc_now_iso(),
    )


def _record(ws: Workspace, flight: InFlight, row: LedgerRow) -> None:
    """The remote row first, then the parent's promoted=yes, then the in-flight file goes."""
    ws.ledger().append(row)
    ws.ledger().update_promoted(flight.run_id, "yes")
    flight.remove(ws)


def _refuse(ws: Workspace, plan: PromotionPlan, gate: Gate) -> PromotionResult:
    transient = gate.name in TRANSIENT_GATES
    if not transient:
        ws.ledger().update_promoted(plan.run_id, "refused")
    return PromotionResult(plan, "pending" if transient else "refused", f"{gate.name}: {gate.detail}")


def _prepare_run_dir(ws: Workspace, plan: PromotionPlan) -> Path:
    run_dir = ws.run_dir(plan.remote_run_id)
    run_dir.mkdir(parents=True, exist_ok=False)
    atomic_write_text(run_dir / PLAN_NAME, json.dumps(plan.as_dict(), indent=1, default=str) + "\n")
    parent_diff = ws.run_dir(plan.run_id) / "diff.patch"
    if parent_diff.is_file():
        shutil.copyfile(parent_diff, run_dir / "diff.patch")
    return run_dir


def promote_run(ws: Workspace, config: PgolfConfig, run_id: str, *, yes: bool = False,
                dry_run: bool = False, backend: Backend | None = None, budget: BudgetManager | None = None,
                on_line: LineCallback | None = None, cancel: threading.Event | None = None) -> PromotionResult:
    """Plan, check the gates, reserve, run on the remote tier, settle, and write the ledger rows.

    Setting `cancel` stops the remote run (recorded as crashed, "interrupted", with what it cost).
    """
    budget = budget or ws.budget(config)
    if not dry_run:
        for message in recover_promotions(ws, config, budget):
            if on_line is not None:
                on_line(f"pgolf: {message}")
    plan = plan_promotion(ws, config, run_id, yes=yes, budget=budget)
    if dry_run:
        return PromotionResult(plan, "dry-run", "nothing was spent")
    if plan.refusal is not None:
        return _refuse(ws, plan, plan.refusal)
    backend = backend or make_backend(ws, config, plan, budget)
    tier = _tier_settings(config, plan.tier)
    flight = InFlight(plan.remote_run_id, run_id, plan.tier or "remote", plan.commit, time.time(),
                      plan.price_per_hour, owner=owner_tags("", plan.remote_run_id),
                      remote_run=SshBackend.remote_run_of(tier.remote_dir, plan.remote_run_id)
                      if isinstance(tier, SshTier) else "")
    flight.save(ws)  # before reserving: a kill from here on is recovered at the next start
    if plan.paid:
        try:
            flight.reservation_id = budget.reserve(plan.reserved_usd, gpus=plan.gpus, run_id=plan.remote_run_id,
                                                   description=f"promote {run_id} to {plan.tier}")
        except BudgetRefused:
            flight.remove(ws)
            # Another process took the money or the slot since the plan: judge again, with reasons.
            fresh = plan_promotion(ws, config, run_id, yes=yes, budget=budget)
            gate = fresh.refusal or Gate("budget", False, "refused by the budget")
            return _refuse(ws, fresh, gate)
        flight.save(ws)
    run_dir = _prepare_run_dir(ws, plan)
    # The pod's termination (after the deadline) is inside the reservation too.
    terminate = _TERMINATE_SECONDS if plan.tier == "runpod" else 0.0
    request = RunRequest(
        run_id=plan.remote_run_id, workspace_root=ws.root, commit=plan.commit, command=plan.command,
        run_dir=run_dir, env=plan.env, wallclock_seconds=plan.wallclock_seconds,
        timeout_seconds=plan.timeout_seconds, gpus=plan.gpus, reservation_id=flight.reservation_id,
        cancel=cancel, deadline=flight.started_at + plan.worst_seconds - terminate,
    )
    return _execute(ws, config, plan, backend, request, budget, flight, on_line)


def _execute(ws: Workspace, config: PgolfConfig, plan: PromotionPlan, backend: Backend, request: RunRequest,
             budget: BudgetManager, flight: InFlight, on_line: LineCallback | None) -> PromotionResult:
    parent = _parent_row(ws, plan.run_id)
    # The SSH tier's money is pgolf's price × time; a pod's is settled by its lifecycle on termination.
    own_cost = plan.tier == "ssh"

    def stopped_by_signal() -> None:
        # Only a file write here: the budget's and the ledger's locks may be held by the interrupted
        # code. Settling and recording follow in normal code, or at the next start.
        flight.stopped_at = time.time()
        flight.save(ws)

    token = register_cleanup(stopped_by_signal)
    try:
        outcome = backend.run(request, on_line)
    except BaseException as err:
        unregister_cleanup(token)
        seconds = time.time() - flight.started_at
        cost, note = _close_reservation(ws, budget, flight, plan.price_per_hour * seconds / 3600.0
                                        if own_cost else None, seconds)
        reason = "pgolf was interrupted" if isinstance(err, KeyboardInterrupt) else f"pgolf failed: {err}"
        _record(ws, flight, _remote_row(flight, parent, "crash", "; ".join(filter(None, [reason, note])),
                                        cost, None))
        raise
    unregister_cleanup(token)
    own = plan.price_per_hour * outcome.seconds / 3600.0 if own_cost else None
    cost, money_note = _close_reservation(ws, budget, flight, own, outcome.seconds)
    outcome.cost_usd = cost
    result = read_run_result(request.run_dir)
    status, note = _status(outcome, result, config.get_ruleset().artifact_limit_bytes)
    saved = max(plan.expected_usd - cost, 0.0) if status == "aborted" else 0.0
    if status == "aborted":
        note = f"{note}; saved ~${saved:.2f}"
    note = "; ".join(filter(None, [note, money_note]))
    row = _remote_row(flight, parent, status, note, cost, result)
    _record(ws, flight, row)  # the row is written before anything else changes
    return PromotionResult(plan, status, note, cost, saved, row, outcome)


# -- recovery after a kill -----------------------------------------------------------------------


def recover_promotions(ws: Workspace, config: PgolfConfig, budget: BudgetManager | None = None) -> list[str]:
    """Finish promotions whose pgolf process died mid-run: stop the remote run, settle, record a crash,
    mark the parent promoted. Returns what was done or could not be done (then retried next start)."""
    flights = [f for f in _in_flight(ws) if owner_state(f.owner) == "gone"]
    if not flights:
        return []
    budget = budget or ws.budget(config)
    messages = []
    for flight in flights:
        try:
            messages.append(_recover(ws, config, budget, flight))
        except PgolfError as err:
            messages.append(f"promotion {flight.remote_run_id} left by a killed pgolf: {err}; "
                            "will retry at the next start")
    return messages


def _recover(ws: Workspace, config: PgolfConfig, budget: BudgetManager, flight: InFlight) -> str:
    if flight.tier == "ssh":
        tier = config.tiers.ssh
        if tier is None:
            raise PgolfError("no [tiers.ssh] in pgolf.toml to reach its host")
        try:
            reached = SshBackend(_ssh_target(ws, tier), RemoteLayout(tier.remote_dir)).kill_remote(flight.remote_run)
        except (OSError, subprocess.SubprocessError) as err:
            raise PgolfError(f"could not stop it on {tier.host}: {err}") from None
        if not reached:
            raise PgolfError(f"could not reach {tier.host} to stop it")
        stopped = flight.stopped_at or time.time()
        seconds = max(stopped - flight.started_at, 0.0)
        cost, note = _close_reservation(ws, budget, flight, flight.price_per_hour * seconds / 3600.0, seconds)
    else:
        swept = lifecycle_from_config(ws, config, budget).sweep_orphans()
        problems = [s.problem for s in swept if s.problem]
        if problems:
            raise PgolfError("; ".join(problems))
        cost, note = _close_reservation(ws, budget, flight, None, 0.0)
        if note:
            raise PgolfError(note)
    parent = _parent_row(ws, flight.run_id)
    _record(ws, flight, _remote_row(flight, parent, "crash", "pgolf was killed during the run", cost, None))
    return (f"promotion {flight.remote_run_id} of {flight.run_id} was left by a killed pgolf: stopped, "
            f"cost ${cost:.2f}, recorded as crash")


def sweep_at_start(ws: Workspace, config: PgolfConfig) -> list[str]:
    """At a start: recover killed promotions and terminate this workspace's orphaned pods.

    Never raises for a remote problem: each one is a line in the returned messages.
    """
    try:
        messages = recover_promotions(ws, config)
        if config.tiers.runpod is not None and secret(API_KEY_ENV, ws.root):
            for pod in lifecycle_from_config(ws, config, ws.budget(config)).sweep_orphans():
                messages.append(f"orphaned pod {pod.id or pod.name} (run {pod.run_id or '-'}): "
                                + (pod.problem or f"{pod.outcome}, ${pod.cost_usd:.2f}"))
    except PgolfError as err:
        return [f"sweep at start: {err}"]
    return messages


def run_promotion_queue(ws: Workspace, config: PgolfConfig, *, yes: bool = False,
                        on_line: LineCallback | None = None,
                        cancel: threading.Event | None = None) -> list[PromotionResult]:
    """Promote every pending local row, oldest first; stop at the first transient refusal, and start
    nothing new once `cancel` is set (a promotion under way is stopped by it too)."""
    results: list[PromotionResult] = []
    for row in pending_promotions(ws.ledger().rows()):
        if cancel is not None and cancel.is_set():
            break
        result = promote_run(ws, config, row.run_id, yes=yes, on_line=on_line, cancel=cancel)
        results.append(result)
        if result.status == "pending":  # rate limit, confirmation or configuration: later rows would wait too
            break
    return results
