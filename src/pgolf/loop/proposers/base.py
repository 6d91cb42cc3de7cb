"""What every proposer receives and returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.config import PgolfConfig
from pgolf.ledger import LedgerRow
from pgolf.loop.breaker import ProposerFailure
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
    (recorded as skipped). `failure` set: the proposer itself failed (also nothing to run; counted by the
    breaker, not as an experiment). `state` is what the proposer needs back in `observe`, persisted across
    crashes.
    """

    description: str
    changed: bool = True
    rejected: str = ""
    source_item: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    failure: ProposerFailure | None = None


class Proposer(Protocol):
    """Makes one change per call and learns from its outcome."""

    kind: str

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Edit train_gpt.py in the working tree and describe the change."""
        ...

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        """The experiment that `state` came from ended with this ledger status and score."""
        ...


PROPOSED_PATCH = "proposed.patch"


def _forbidden_change(root: Path, patch: Path) -> str:
    """Why `git apply` of the patch would do more than edit train_gpt.py's content; "" when it would not.

    git's own reading of the patch is asked, so renames, copies, new or deleted files and mode changes
    (which carry no ---/+++ lines of their own) are seen as well.
    """
    listing = git.git(root, "apply", "--numstat", "--summary", "--recount", str(patch))
    summary = [line.strip() for line in listing.splitlines() if line.startswith(" ")]
    if summary:
        return f"the diff would {'; '.join(summary)}; only the content of {TRAIN_SCRIPT} may change"
    others = sorted({line.split("\t", 2)[-1] for line in listing.splitlines() if line} - {TRAIN_SCRIPT})
    return f"the diff touches {', '.join(others)}; only {TRAIN_SCRIPT} may change" if others else ""


def apply_diff(ctx: ProposalContext, diff: str, description: str) -> Proposal:
    """Check a unified diff (train_gpt.py's content only, applies cleanly) and apply it in the proposer's
    checkout; the proposal, or why it is rejected (kept in the run folder as proposed.patch)."""
    patch = ctx.run_dir / PROPOSED_PATCH
    atomic_write_text(patch, diff if diff.endswith("\n") else diff + "\n")
    try:
        forbidden = _forbidden_change(ctx.root, patch)
        if not forbidden:
            git.git(ctx.root, "apply", "--check", "--recount", str(patch))
    except git.GitError as err:
        return Proposal(description, rejected=f"the diff does not apply: {err}")
    if forbidden:
        return Proposal(description, rejected=forbidden)
    git.git(ctx.root, "apply", "--recount", str(patch))
    if not git.git(ctx.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
        return Proposal(description + " (the diff changes nothing)", changed=False)
    return Proposal(description)
