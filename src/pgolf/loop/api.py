"""The engine's entry point for one proposal from outside the loop (the MCP server, scripts).

    run_proposal(ws, config=None, *, description, diff=None, seeds=None, events=None) -> ExperimentRecord

runs ONE change through the same scheduler, slots, preflight, hard gates, replicated judgement, ledger
and git moves as `pgolf run` (it is `run_loop` with one given proposal), under the workspace's run
lock, and returns its final record: the `decision` record once the judge decided after replicates, or
the first run's record (discard at screening, crash, oversize, rejected, …). With `diff=None` the change
is the workspace's own uncommitted train_gpt.py (an agent edited it in place): its text is taken,
the file is restored, and the text is proposed. `seeds`: the first run's seed (`seeds[0]`); the judge
chooses the replicate seeds, paired with the incumbent's.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgolf import git
from pgolf.config import PgolfConfig
from pgolf.errors import PgolfError
from pgolf.loop.events import ExperimentRecord, LoopEvents
from pgolf.loop.proposers.given import GivenProposer
from pgolf.loop.supervisor import run_loop
from pgolf.workspace import TRAIN_SCRIPT, Workspace


def run_proposal(ws: Workspace, config: PgolfConfig | None = None, *, description: str, diff: str | None = None,
                 seeds: Sequence[int] | None = None, events: LoopEvents | None = None) -> ExperimentRecord:
    """Run one proposal end to end (noise floor first if it is missing) and return its final record."""
    if diff is None:
        script = ws.train_script.read_text(encoding="utf-8")
        git.git(ws.root, "checkout", "-q", "--", TRAIN_SCRIPT)  # the loop starts from the committed best
        proposer = GivenProposer(description, script=script)
    else:
        proposer = GivenProposer(description, diff=diff)
    summary = run_loop(ws, experiments=1, proposer=proposer, events=events, config=config,
                       first_seed=seeds[0] if seeds else None)
    runs = [r for r in summary.records if r.kind == "experiment"]
    if not runs:
        raise PgolfError(f"the proposal was not run: {summary.stop_reason}")
    decided = [r for r in summary.records if r.kind == "decision" and r.run_id == runs[0].run_id]
    return decided[-1] if decided else runs[0]
