"""After a kill: finish every local run a dead pgolf left in flight, whatever its slot or phase.

A recorded run only needs its git move; an unrecorded one is recorded as `crash` (or `aborted` if its
proposer was still working), tagged and reverted. First, whatever the run started is ended: its
launcher's process tree and any process still working in its run folder.
"""

from __future__ import annotations

from pgolf import git
from pgolf.compute.local import stop_leftovers
from pgolf.logs import read_run_result
from pgolf.loop.inflight import InFlight, load_all
from pgolf.loop.lab import TIER, Lab
from pgolf.loop.outcome import ledger_row, with_reason
from pgolf.status import Status


def recover(lab: Lab) -> list[str]:
    """Finish what a killed pgolf left in flight; one sentence per run (or damaged file)."""
    states, said = load_all(lab.ws)
    if not states:
        return said
    for state in states:
        stop_leftovers(lab.ws.run(state.run_id).path, state.child_pid)
    recorded = {r.run_id: r for r in lab.rows()}
    for state in states:
        said.append(_recover_one(lab, state, recorded.get(state.run_id)))
    lab.refresh_program()
    return said


def _recover_one(lab: Lab, state: InFlight, row) -> str:
    refs = lab.refs
    if row is not None:
        # The row was written; only the git move (or less) was left to do.
        refs.settle(run_id=state.run_id, commit=state.commit, parent_commit=state.parent_commit, status=row.status)
        state.clear(lab.ws)
        return f"finished recording {state.run_id} ({row.status})"
    if state.phase == "proposing":
        status, reason = Status.ABORTED, "pgolf stopped while the proposer was working"
        worktree = lab.ws.slot(state.slot)
        head = git.head_commit(worktree) if state.slot and (worktree / ".git").exists() else state.parent_commit
        if head != state.parent_commit:
            # Committed before the in-flight file could say so: adopt the commit so that it is tagged.
            state.commit, reason = head, "pgolf stopped after committing the proposal, before running it"
    else:
        status, reason = Status.CRASH, "in flight when pgolf was killed; recorded by the next start"
    result = read_run_result(lab.ws.run(state.run_id).path) if state.phase == "running" else None
    lab.ledger.append(ledger_row(commit=state.commit, tier=TIER, status=status, result=result,
                                 description=with_reason(state.description, status, reason), run_id=state.run_id,
                                 parent_run=state.parent_run, seed=state.seed, source_item=state.source_item))
    refs.settle(run_id=state.run_id, commit=state.commit, parent_commit=state.parent_commit, status=status)
    state.clear(lab.ws)
    return f"recorded the interrupted run {state.run_id} as {status}"
