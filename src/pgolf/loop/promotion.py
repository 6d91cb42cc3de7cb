"""The promotion decision: which kept local experiments are queued for the remote tier.

Only the decision and the queue live here (ledger `promoted=pending`, the gates' verdicts in the run
folder's promotion.json); `pgolf.loop.promote` executes the queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.config import PgolfConfig
from pgolf.fmt import fmt_bytes
from pgolf.ledger import LedgerRow
from pgolf.loop.decision import Gate
from pgolf.status import Status

PROMOTION_NAME = "promotion.json"
# Seconds a remote run is expected to hold its pod: training, evaluation, and set-up around them.
_REMOTE_OVERHEAD_SECONDS = 600.0


@dataclass
class PromotionDecision:
    """Whether the experiment is queued (`promoted` is the ledger value) and every gate's verdict."""

    promoted: str  # "no" | "pending"
    reason: str
    reference_bpb: float | None = None
    relative_gain: float | None = None
    gates: list[Gate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for promotion.json."""
        return asdict(self)


def remote_tier_name(config: PgolfConfig) -> str | None:
    """The configured remote tier, or None when only the local tier exists."""
    tiers = config.tiers
    if tiers.remote:
        return tiers.remote
    return "ssh" if tiers.ssh else "runpod" if tiers.runpod else None


def running_baseline(rows: Iterable[LedgerRow], baseline_mean: float | None) -> float | None:
    """The local score the next promotion must beat: the last promoted local run, else the baseline."""
    promoted = [r for r in rows if r.tier == "local" and r.status == Status.KEEP
                and r.promoted in ("pending", "yes") and r.val_bpb is not None]
    return promoted[-1].val_bpb if promoted else baseline_mean


def _estimated_cost(config: PgolfConfig, budget: BudgetManager) -> tuple[float, int]:
    ruleset = config.get_ruleset()
    seconds = (ruleset.train_seconds or 3600.0) + (ruleset.eval_seconds or 600.0) + _REMOTE_OVERHEAD_SECONDS
    gpus = ruleset.gpu_count
    return budget.cost(seconds, gpus), gpus


def decide_promotion(config: PgolfConfig, budget: BudgetManager, rows: Iterable[LedgerRow], *,
                     val_bpb: float, artifact_bytes: int | None,
                     baseline_mean: float | None) -> PromotionDecision:
    """Queue a kept experiment when a remote tier exists and it beats the running baseline enough."""
    remote = remote_tier_name(config)
    if remote is None:
        return PromotionDecision("no", "no remote tier configured")
    reference = running_baseline(rows, baseline_mean)
    if reference is None or reference <= 0:
        return PromotionDecision("no", "no local baseline to compare with")
    gain = (reference - val_bpb) / reference
    needed = config.loop.promotion_threshold
    limit = config.get_ruleset().artifact_limit_bytes
    estimate, gpus = _estimated_cost(config, budget)
    verdict = budget.can_submit(estimate)
    gates = [
        Gate("relative_gain", gain >= needed,
                      f"{gain:.2%} over {reference:.4f} (needs {needed:.2%})"),
        Gate("artifact_bytes", artifact_bytes is not None and artifact_bytes <= limit,
                      f"{fmt_bytes(artifact_bytes, 'unknown')} of {fmt_bytes(limit)}"),
        # The budget can change before the queue runs; the executor checks again and may wait.
        Gate("budget", verdict.ok, f"~${estimate:.2f} for {gpus} GPUs: {verdict.reason}"),
    ]
    if not (gates[0].passed and gates[1].passed):
        failed = next(g for g in gates if not g.passed)
        return PromotionDecision("no", f"{failed.name}: {failed.detail}", reference, gain, gates)
    return PromotionDecision("pending", f"queued for the {remote} tier", reference, gain, gates)


def write_promotion(run_dir: Path, decision: PromotionDecision) -> None:
    """Record the decision and the gates' verdicts in the run folder."""
    atomic_write_text(Path(run_dir) / PROMOTION_NAME, json.dumps(decision.as_dict(), indent=1) + "\n")


def pending_promotions(rows: Iterable[LedgerRow]) -> list[LedgerRow]:
    """Local rows waiting for the remote tier, oldest first."""
    return [r for r in rows if r.tier == "local" and r.promoted == "pending"]
