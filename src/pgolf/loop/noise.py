"""The noise floor from the ledger: the incumbent's runs, σ pooled over every group of repeated runs,
and the screening bar a first run must beat.

A group is every scored local run of one commit (baseline seeds of the best, a candidate's replicates,
the incumbent's paired seeds), so σ improves as replicated decisions accumulate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pgolf.ledger import LedgerRow
from pgolf.loop.judge import Sample, Sigma, pooled_sigma
from pgolf.status import HAS_SCORE, Status

BASELINE_SEED = 1337  # the challenge's default SEED; experiments reuse it so comparisons are paired
TIER = "local"


@dataclass(frozen=True)
class NoiseFloor:
    """The incumbent's runs, their mean, the pooled σ of one run, and the screening bar."""

    commit: str
    scores: tuple[float, ...]
    mean: float
    sigma: float
    threshold: float  # the gain a first run must beat to be replicated: max(screen_sigmas·σ·√(1+1/n), min_gain)
    dof: int = 0
    groups: int = 0

    @property
    def runs(self) -> int:
        return len(self.scores)


def baseline_seeds(count: int) -> list[int]:
    """The seeds of the noise-floor runs: the challenge default first, then the next ones."""
    return [BASELINE_SEED + i for i in range(count)]


def baseline_rows(rows: Iterable[LedgerRow], tier: str = TIER) -> list[LedgerRow]:
    """The scored baseline rows of a tier, oldest first."""
    return [r for r in rows if r.status == Status.BASELINE and r.tier == tier and r.val_bpb is not None]


def _scored(rows: Iterable[LedgerRow]) -> list[LedgerRow]:
    # A discarded commit's runs still measure the noise; only complete local measurements count.
    return [r for r in rows if r.tier == TIER and r.status in HAS_SCORE and r.val_bpb is not None]


def samples_of(rows: Iterable[LedgerRow], commit: str) -> list[Sample]:
    """Every scored local run of `commit`, as the judge's samples (oldest first)."""
    return [Sample(r.seed if r.seed is not None else BASELINE_SEED, r.val_bpb)  # type: ignore[arg-type]
            for r in _scored(rows) if r.commit == commit]


def pooled(rows: Iterable[LedgerRow]) -> Sigma | None:
    """σ of one run, pooled over every commit with two or more scored local runs."""
    groups: dict[str, list[float]] = {}
    for r in _scored(rows):
        groups.setdefault(r.commit, []).append(r.val_bpb)  # type: ignore[arg-type]
    return pooled_sigma(groups.values())


def incumbent_commit(rows: Sequence[LedgerRow]) -> str:
    """The best commit as the ledger knows it: the last local keep, else the last baseline commit."""
    for r in reversed(rows):
        if r.tier == TIER and r.status in (Status.KEEP, Status.BASELINE):
            return r.commit
    return ""


def noise_floor(rows: Sequence[LedgerRow], *, min_gain: float, screen_sigmas: float,
                commit: str | None = None) -> NoiseFloor | None:
    """The floor at the incumbent (`commit`, default: the ledger's); None until σ can be estimated."""
    rows = list(rows)
    commit = commit or incumbent_commit(rows)
    scores = tuple(s.val_bpb for s in samples_of(rows, commit))
    sigma = pooled(rows)
    if not scores or sigma is None:
        return None
    bar = max(screen_sigmas * sigma.value * math.sqrt(1 + 1 / len(scores)), min_gain)
    return NoiseFloor(commit, scores, math.fsum(scores) / len(scores), sigma.value, bar, sigma.dof, sigma.groups)
