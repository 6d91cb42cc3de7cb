"""A proposal handed over whole: a unified diff, or the text of train_gpt.py (an agent's own edit).

What `pgolf.loop.api.run_proposal` runs, so a change from the MCP server goes through the same
scheduler, checks and judgement as one from `pgolf run`.
"""

from __future__ import annotations

from typing import Any

from pgolf.loop.proposers.base import Proposal, ProposalContext, apply_diff


class GivenProposer:
    """Proposes one given change, once."""

    kind = "given"

    def __init__(self, description: str, *, diff: str | None = None, script: str | None = None) -> None:
        if (diff is None) == (script is None):
            raise ValueError("give exactly one of diff and script")
        self.description = description
        self.diff = diff
        self.script = script

    def propose(self, ctx: ProposalContext) -> Proposal:
        if self.diff is not None:
            return apply_diff(ctx, self.diff, self.description)
        if ctx.script.read_text(encoding="utf-8") == self.script:
            return Proposal(self.description + " (no change to the script)", changed=False)
        ctx.script.write_text(self.script or "", encoding="utf-8")
        return Proposal(self.description)

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        """Nothing to learn: the caller gets the record."""
