"""Hard gates and the Decision a run ends with: pure functions of a run's result (the keep/discard
rule of a scored run is the judge's, `pgolf.loop.judge`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pgolf.status import Status

# A script checks MAX_WALLCLOCK_SECONDS between steps, so it may overrun by the step in flight (allowed
# in full) plus timer jitter (this fraction).
_TRAIN_TIME_SLACK = 1.02


@dataclass(frozen=True)
class RunFacts:
    """What the lifecycle learned from one run, in the terms the decision needs."""

    returncode: int | None
    timed_out: bool
    interrupted: bool
    result_status: str | None  # "ok", "aborted", "crashed", or None when nothing was readable
    val_bpb: float | None
    artifact_bytes: int | None
    train_seconds: float | None
    step_seconds: float | None = None  # average step time, the overrun a wallclock stop may show
    reason: str = ""
    wallclock_cut: str = ""  # the script's `stopping_early: wallclock_cap` line, when it printed one


@dataclass(frozen=True)
class Gate:
    """One gate's verdict with its evidence: a hard gate of a run, or a check a promotion must pass."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    """The ledger status of an experiment and why."""

    status: str  # a Status: keep | discard | replicate | crash | oversize | timeout | aborted
    reason: str
    gain: float | None = None
    threshold: float | None = None
    gates: tuple[Gate, ...] = ()
    # The statistics of a judged keep/discard/replicate (the judge's Verdict.as_dict()).
    verdict: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for decision.json."""
        return asdict(self)


def hard_gates(facts: RunFacts, *, artifact_limit: int, wallclock_seconds: float) -> tuple[Gate, ...]:
    """Artifact bytes under the ruleset's limit; training time within the tier's wallclock."""
    if facts.artifact_bytes is None:
        size = Gate("artifact_bytes", False, "the run reported no artifact size")
    else:
        ok = facts.artifact_bytes <= artifact_limit
        size = Gate("artifact_bytes", ok, f"{facts.artifact_bytes:,} {'<=' if ok else '>'} {artifact_limit:,}")
    if facts.train_seconds is None:
        time = Gate("train_seconds", True, "not reported")
    else:
        limit = wallclock_seconds * _TRAIN_TIME_SLACK + (facts.step_seconds or 0.0)
        ok = facts.train_seconds <= limit
        time = Gate("train_seconds", ok, f"{facts.train_seconds:.1f} s {'<=' if ok else '>'} {limit:.1f} s")
    return size, time


def run_failure(facts: RunFacts) -> Decision | None:
    """The status of a run that produced no usable score, or None when it did."""
    if facts.interrupted:
        return Decision(Status.ABORTED, "stopped by the user")
    if facts.timed_out:
        return Decision(Status.TIMEOUT, "killed at the tier's hard timeout")
    if facts.result_status == "aborted":
        return Decision(Status.ABORTED, facts.reason or "the script aborted early")
    if facts.result_status != "ok" or facts.val_bpb is None:
        code = "no exit code" if facts.returncode is None else f"exit code {facts.returncode}"
        return Decision(Status.CRASH, facts.reason or f"no score ({code})")
    return None


def gate_failure(facts: RunFacts, *, artifact_limit: int, wallclock_seconds: float | None,
                 step_limited: bool = False) -> tuple[Decision | None, tuple[Gate, ...]]:
    """The hard gates, in order (no score, a wallclock cut of a step-limited run, artifact size, training
    time): the failing decision or None, and the gates' verdicts. `wallclock_seconds` None skips the time
    gate (a remote tier judges its own)."""
    failed = run_failure(facts)
    if failed:
        return failed, ()
    if step_limited and facts.wallclock_cut:
        return Decision(Status.CRASH, f"the wallclock cap cut this step-limited run ({facts.wallclock_cut}); "
                                      "its score would not be comparable"), ()
    gates = hard_gates(facts, artifact_limit=artifact_limit, wallclock_seconds=wallclock_seconds or 0.0)
    if wallclock_seconds is None:
        gates = gates[:1]
    if not gates[0].passed:
        return Decision(Status.OVERSIZE, f"artifact {gates[0].detail}", gates=gates), gates
    if len(gates) > 1 and not gates[1].passed:
        return Decision(Status.TIMEOUT, f"training time {gates[1].detail}", gates=gates), gates
    return None, gates
