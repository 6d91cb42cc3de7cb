"""A finished run, any tier: its facts, its hard-gate decision, and its ledger row.

The local loop and the remote promotion both call these, so exit codes, result statuses, memory
rounding and which statuses keep a score mean the same on every tier.
"""

from __future__ import annotations

from pathlib import Path

from pgolf import status as st
from pgolf.clock import utc_now_iso
from pgolf.compute.base import RunOutcome
from pgolf.ledger import LedgerRow, clean_text
from pgolf.logs import RunResult
from pgolf.loop.decision import Decision, Gate, RunFacts, gate_failure

EARLY_ABORT_EXIT = 3  # train_gpt.py's exit code for its own early abort


def run_facts(outcome: RunOutcome, result: RunResult | None) -> RunFacts:
    """What a run's outcome and result say, in the decision's terms."""
    reason = outcome.error
    if result is not None and result.reason:
        reason = result.reason
    code = outcome.returncode
    if result is None or result.status == "incomplete":
        # No result.json status: the log decides, and the exit code says whether the script aborted.
        status = "ok" if result is not None and result.complete else "crashed"
        if code == EARLY_ABORT_EXIT:
            status = "aborted"
    else:
        status = result.status
    if code not in (0, None, EARLY_ABORT_EXIT) and status == "ok":
        status = "crashed"  # a score was printed, then the script died (e.g. during export)
    if not reason and status == "crashed":
        reason = last_error_line(outcome.log_path)
    return RunFacts(
        returncode=code, timed_out=outcome.timed_out, interrupted=outcome.interrupted,
        result_status=status, val_bpb=result.val_bpb if result else None,
        artifact_bytes=result.artifact_bytes if result else None,
        train_seconds=result.train_seconds if result else None, reason=reason,
        step_seconds=result.step_avg_ms / 1000 if result and result.step_avg_ms else None,
        wallclock_cut=_wallclock_line(outcome.log_path),
    )


def hard_decision(facts: RunFacts, *, artifact_limit: int, wallclock_seconds: float | None,
                  step_limited: bool = False) -> tuple[Decision | None, tuple[Gate, ...]]:
    """The failing hard gate (crash, timeout, aborted, oversize), or None for a scored run within them."""
    return gate_failure(facts, artifact_limit=artifact_limit, wallclock_seconds=wallclock_seconds,
                        step_limited=step_limited)


def _wallclock_line(log_path: Path) -> str:
    """The `stopping_early: wallclock_cap …` line of a log, or ""."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            return next((line.strip() for line in fh if line.startswith("stopping_early: wallclock_cap")), "")
    except OSError:
        return ""


def ledger_row(*, commit: str, tier: str, status: str, result: RunResult | None, description: str,
               run_id: str, parent_run: str = "", seed: int | None = None, source_item: str = "",
               promoted: str = "no", cost_usd: float = 0.0) -> LedgerRow:
    """The ledger row of a finished run; val_bpb only where it is a complete measurement."""
    memory = round(result.peak_memory_mb / 1024.0, 3) if result and result.peak_memory_mb is not None else None
    if result is not None and result.seed is not None and seed is None:
        seed = result.seed
    return LedgerRow(
        commit=commit, tier=tier, val_bpb=result.val_bpb if result and status in st.MEASURED else None,
        artifact_bytes=result.artifact_bytes if result else None, memory_gb=memory, status=status,
        promoted=promoted, cost_usd=round(cost_usd, 4), description=clean_text(description),
        source_item=source_item, run_id=run_id, parent_run=parent_run, seed=seed,
        steps=result.steps if result else None, train_seconds=result.train_seconds if result else None,
        finished_at=utc_now_iso(),
    )


def with_reason(description: str, status: str, reason: str) -> str:
    """Why a run failed belongs in its row; why a measured run was kept or not is in decision.json."""
    return description + (f" ({reason})" if reason and status in st.EXPLAINED_IN_ROW else "")


def last_error_line(log_path: Path) -> str:
    """The last non-empty line of a log: usually the exception of a crashed script."""
    try:
        lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((line for line in reversed(lines) if line), "")
    return last[:200]
