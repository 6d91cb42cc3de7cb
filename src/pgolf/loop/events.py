"""What the loop reports: one record per finished run, and the display protocol it reports through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pgolf.loop.breaker import ProposerFailure


@dataclass
class ExperimentRecord:
    """How one run ended, as the loop reports it."""

    run_id: str
    kind: str  # baseline | experiment | replicate
    status: str
    description: str
    commit: str
    val_bpb: float | None = None
    reason: str = ""
    gain: float | None = None
    promoted: str = "no"
    seconds: float = 0.0
    slot: int = 0
    verdict: dict[str, Any] = field(default_factory=dict)  # the judge's numbers (n, means, sigma, test, p)
    failure: ProposerFailure | None = None  # the proposer failed: nothing ran, not an experiment done


class LoopEvents(Protocol):
    """What the loop tells its display; every method may be a no-op. Slots call it from their threads."""

    def message(self, text: str) -> None: ...
    def run_started(self, run_id: str, kind: str, description: str, info: dict[str, Any]) -> None: ...
    def run_line(self, run_id: str, text: str) -> None: ...
    def run_finished(self, record: ExperimentRecord) -> None: ...


class QuietEvents:
    """A display that shows nothing (library use, tests)."""

    def message(self, text: str) -> None:
        pass

    def run_started(self, run_id: str, kind: str, description: str, info: dict[str, Any]) -> None:
        pass

    def run_line(self, run_id: str, text: str) -> None:
        pass

    def run_finished(self, record: ExperimentRecord) -> None:
        pass
