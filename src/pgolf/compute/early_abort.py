"""Early abort: stop a remote run whose val_bpb at a checkpoint is worse than the best remote run's.

The reference is the `curve` ([{step, val_bpb}]) in the result.json of the best remote run of the tier.
The training script receives one checkpoint through EARLY_ABORT_STEP / EARLY_ABORT_BPB and exits with
status `aborted` when its val_bpb at that step is above the threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pgolf.config import EarlyAbortConfig
from pgolf.ledger import LedgerRow, best_by_tier
from pgolf.logs import read_run_result


@dataclass(frozen=True)
class AbortPoint:
    """Abort when val_bpb at `step` exceeds `threshold_bpb` (the reference's value plus a margin)."""

    step: int
    threshold_bpb: float
    reference_bpb: float
    reference_run: str

    def env(self) -> dict[str, str]:
        """The environment variables the training script reads."""
        return {"EARLY_ABORT_STEP": str(self.step), "EARLY_ABORT_BPB": f"{self.threshold_bpb:.6f}"}


def read_curve(run_dir: Path) -> list[tuple[int, float]]:
    """The (step, val_bpb) points of a run (result.json, else its log), sorted; [] when none."""
    result = read_run_result(run_dir)
    return sorted(result.curve) if result is not None else []


def choose_point(curve: list[tuple[int, float]], settings: EarlyAbortConfig,
                 reference_run: str = "") -> AbortPoint | None:
    """The first curve point at or after `at_fraction` of the reference run's last step."""
    usable = [(s, b) for s, b in curve if s > 0]
    if not usable:
        return None
    target = settings.at_fraction * usable[-1][0]
    step, bpb = next((s, b) for s, b in usable if s >= target)
    if step == usable[-1][0]:
        return None  # checking at the very end saves nothing
    return AbortPoint(step, bpb + settings.margin_bpb, bpb, reference_run)


def plan_early_abort(runs_dir: Path, rows: Iterable[LedgerRow], tier: str,
                     settings: EarlyAbortConfig) -> AbortPoint | None:
    """The checkpoint for the next run on `tier`, from the tier's best run; None when there is none."""
    if not settings.enabled:
        return None
    best = best_by_tier(rows).get(tier)
    if best is None or not best.run_id:
        return None
    return choose_point(read_curve(runs_dir / best.run_id), settings, best.run_id)
