"""What every proposer receives and returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pgolf.budget import BudgetManager
from pgolf.config import PgolfConfig
from pgolf.ledger import LedgerRow
from pgolf.loop.noise import NoiseFloor
from pgolf.workspace import TRAIN_SCRIPT, Workspace


@dataclass
class ProposalContext:
    """The state a proposer may read; it edits `script` (train_gpt.py in its slot's worktree) and nothing else."""

    ws: Workspace
    config: PgolfConfig
    rows: list[LedgerRow]
    noise: NoiseFloor | None
    best_bpb: float | None
    best_commit: str
    run_dir: Path  # for the proposer's own files (agent.log, llm_reply.txt)
    budget: BudgetManager
    cancel: threading.Event = field(default_factory=threading.Event)
    worktree: Path | None = None  # the slot's git worktree (None: the workspace itself)
    slot: int = 1
    others: list[str] = field(default_factory=list)  # what the other slots are running now

    @property
    def root(self) -> Path:
        """The checkout the proposer works in."""
        return self.worktree or self.ws.root

    @property
    def script(self) -> Path:
        """The train_gpt.py to edit."""
        return self.root / TRAIN_SCRIPT


@dataclass
class Proposal:
    """A change made to the working tree, or why there is none.

    `rejected` set: the proposal was invalid (recorded as rejected). `changed` false: nothing changed
    (recorded as skipped). `state` is what the proposer needs back in `observe`, persisted across crashes.
    """

    description: str
    changed: bool = True
    rejected: str = ""
    source_item: str = ""
    state: dict[str, Any] = field(default_factory=dict)


class Proposer(Protocol):
    """Makes one change per call and learns from its outcome."""

    kind: str

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Edit train_gpt.py in the working tree and describe the change."""
        ...

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        """The experiment that `state` came from ended with this ledger status and score."""
        ...
