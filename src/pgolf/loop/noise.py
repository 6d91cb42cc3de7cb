"""The noise floor: how much val_bpb moves between seeds of the unchanged script."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from pgolf.ledger import LedgerRow
from pgolf.status import Status

BASELINE_SEED = 1337  # the challenge's default SEED; experiments reuse it so comparisons are paired


@dataclass(frozen=True)
class NoiseFloor:
    """Baseline runs of one commit: their mean, spread, and the gain an experiment must beat."""

    commit: str
    scores: tuple[float, ...]
    mean: float
    sigma: float
    threshold: float  # max(sigma_multiplier * sigma, min_gain)

    @property
    def runs(self) -> int:
        return len(self.scores)


def baseline_seeds(count: int) -> list[int]:
    """The seeds of the noise-floor runs: the challenge default first, then the next ones."""
    return [BASELINE_SEED + i for i in range(count)]


def baseline_rows(rows: Iterable[LedgerRow], tier: str = "local") -> list[LedgerRow]:
    """The scored baseline rows of a tier, oldest first."""
    return [r for r in rows if r.status == Status.BASELINE and r.tier == tier and r.val_bpb is not None]


def noise_floor(rows: Iterable[LedgerRow], *, sigma_multiplier: float, min_gain: float,
                tier: str = "local") -> NoiseFloor | None:
    """The floor from the most recent baseline commit's runs; None until two of them scored."""
    base = baseline_rows(rows, tier)
    if not base:
        return None
    commit = base[-1].commit
    scores = tuple(r.val_bpb for r in base if r.commit == commit)  # type: ignore[misc]
    if len(scores) < 2:
        return None
    sigma = statistics.stdev(scores)
    return NoiseFloor(commit, scores, statistics.fmean(scores), sigma,
                      max(sigma_multiplier * sigma, min_gain))
