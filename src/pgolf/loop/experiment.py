"""The runs a slot executes: a baseline seed of a commit, and a proposal (propose → commit in the slot's
worktree → preflight → run → decide → record)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pgolf.atomic import atomic_write_text
from pgolf.logs import RunResult
from pgolf.loop.decision import Decision, decide
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.inflight import InFlight
from pgolf.loop.lab import TIER, Lab, code_lines, write_json
from pgolf.loop.noise import BASELINE_SEED, NoiseFloor
from pgolf.loop.outcome import hard_decision, ledger_row, run_facts, with_reason
from pgolf.loop.preflight import preflight
from pgolf.loop.promotion import decide_promotion, write_promotion
from pgolf.loop.proposers.base import Proposal, ProposalContext, Proposer
from pgolf.loop.slots import Slot
from pgolf.status import Status
from pgolf.workspace import TRAIN_SCRIPT


def _row(state: InFlight, status: str, result: RunResult | None, reason: str = "", promoted: str = "no"):
    return ledger_row(commit=state.commit, tier=TIER, status=status, result=result,
                      description=with_reason(state.description, status, reason), run_id=state.run_id,
                      parent_run=state.parent_run, seed=state.seed, source_item=state.source_item,
                      promoted=promoted)


def run_baseline(lab: Lab, slot: Slot, seed: int, commit: str | None = None) -> ExperimentRecord:
    """One run of an unchanged commit (default: the best) with `seed`: a noise-floor point."""
    commit = commit or lab.refs.best_commit()
    state = InFlight(run_id=lab.next_run_id(), kind="baseline", commit=commit, parent_commit=commit,
                     parent_run="", seed=seed, description=f"baseline, seed {seed}", pgolf_pid=os.getpid(),
                     slot=slot.index)
    lab.save(state)
    outcome, result = lab.execute(state, slot)
    failed, _gates = hard_decision(run_facts(outcome, result), artifact_limit=lab.ruleset.artifact_limit_bytes,
                                   wallclock_seconds=None)
    # A baseline is recorded whatever its size: it measures noise, it is not a candidate.
    if failed and failed.status == Status.OVERSIZE:
        failed = None
    status, reason = (failed.status, failed.reason) if failed else (Status.BASELINE, "")
    lab.record(state, _row(state, status, result, reason), None, {"status": status, "reason": reason})
    return lab.finish(state, status, result, reason, outcome.seconds)


def run_proposal(lab: Lab, slot: Slot, proposer: Proposer, others: Sequence[str] = ()) -> ExperimentRecord:
    """Ask the proposer for a change in the slot's worktree, commit it, preflight it, run it, decide, record."""
    with lab.refs.lock:
        rows = lab.rows()
        noise = lab.noise(rows)
        best_bpb, best_run = lab.best(rows, noise)
        best_commit = lab.refs.best_commit()
    run_id = lab.next_run_id()
    folder = lab.folder(run_id)
    worktree = lab.refs.slot_worktree(slot.index, best_commit)
    state = InFlight(run_id=run_id, kind="experiment", commit=best_commit, parent_commit=best_commit,
                     parent_run=best_run, seed=BASELINE_SEED, description=f"{proposer.kind} proposal",
                     proposer=proposer.kind, phase="proposing", pgolf_pid=os.getpid(), slot=slot.index)
    lab.save(state)
    ctx = ProposalContext(ws=lab.ws, config=lab.config, rows=rows, noise=noise, best_bpb=best_bpb,
                          best_commit=best_commit, run_dir=folder.path, budget=lab.budget, cancel=lab.cancel,
                          worktree=worktree, slot=slot.index, others=list(others))
    lab.events.message(f"{run_id}: asking the {proposer.kind} proposer for a change ({slot.label})")
    try:
        proposal = proposer.propose(ctx)
    except BaseException:
        state.clear(lab.ws)
        lab.drop_folder(run_id)  # nothing was recorded for this id; an empty folder would only confuse
        raise
    state.description, state.source_item = proposal.description, proposal.source_item
    state.proposal_state = proposal.state
    if lab.cancel.is_set():
        return _no_run(lab, state, proposal, Status.ABORTED, "stopped by the user during the proposal", proposer)
    if proposal.rejected:
        return _no_run(lab, state, proposal, Status.REJECTED, proposal.rejected, proposer)
    if not proposal.changed:
        return _no_run(lab, state, proposal, Status.SKIPPED, "no change to run", proposer, best_bpb)
    return _run_change(lab, slot, state, proposer, ctx)


def _no_run(lab: Lab, state: InFlight, proposal: Proposal, status: str, reason: str, proposer: Proposer,
            score: float | None = None) -> ExperimentRecord:
    """Record a proposal that is not run (rejected, skipped, aborted) against the best commit."""
    row = _row(state, status, None, reason)
    write_json(lab.folder(state.run_id).decision, {"status": status, "reason": reason})
    with lab.refs.lock:
        lab.ledger.append(row)
        lab.refs.reset_explore()
        if state.proposal_state:
            proposer.observe(state.proposal_state, status, score)
        state.clear(lab.ws)
        lab.refresh_program()
    return lab.finish(state, status, None, reason, 0.0)


def _run_change(lab: Lab, slot: Slot, state: InFlight, proposer: Proposer, ctx: ProposalContext) -> ExperimentRecord:
    refs, folder = lab.refs, lab.folder(state.run_id)
    parent_source = refs.git("show", f"{state.parent_commit}:{TRAIN_SCRIPT}")
    state.commit = refs.commit_slot(ctx.worktree, f"{state.run_id}: {state.description}")
    state.phase = "running"
    lab.save(state)
    atomic_write_text(folder.diff, refs.git("diff", state.parent_commit, state.commit) + "\n")
    source = ctx.script.read_text(encoding="utf-8")
    env = lab.run_env(state.seed, slot)
    check = preflight(source, artifact_limit=lab.ruleset.artifact_limit_bytes,
                      margin_bytes=lab.config.loop.artifact_margin_bytes, env=env,
                      parent_source=parent_source, parent_model_bytes=lab.parent_model_bytes(state.parent_run))
    write_json(folder.preflight, check.as_dict())
    if not check.ok:
        status = Status.OVERSIZE if check.oversize else Status.CRASH
        lab.record(state, _row(state, status, None, check.failure), proposer,
                   {"status": status, "reason": check.failure})
        return lab.finish(state, status, None, check.failure, 0.0)
    outcome, result = lab.execute(state, slot)
    with refs.lock:  # judged against the best at the end of the run: another slot may have moved it
        rows = lab.rows()
        noise = lab.noise(rows)
        best_bpb, _best_run = lab.best(rows, noise)
    decision = _decide(lab, run_facts(outcome, result), best_bpb, noise, parent_source, source)
    promoted = "no"
    if decision.status == Status.KEEP and result is not None and result.val_bpb is not None:
        promotion = decide_promotion(lab.config, lab.budget, rows, val_bpb=result.val_bpb,
                                     artifact_bytes=result.artifact_bytes, baseline_mean=noise.mean if noise else None)
        write_promotion(folder.path, promotion)
        promoted = promotion.promoted
    lab.record(state, _row(state, decision.status, result, decision.reason, promoted), proposer, decision.as_dict())
    return lab.finish(state, decision.status, result, decision.reason, outcome.seconds, decision.gain, promoted,
                      decision.verdict)


def _decide(lab: Lab, facts, best_bpb: float | None, noise: NoiseFloor | None, parent_source: str,
            source: str) -> Decision:
    return decide(facts, best_bpb=best_bpb if best_bpb is not None else float("inf"),
                  threshold=noise.threshold if noise else lab.config.loop.min_gain,
                  artifact_limit=lab.ruleset.artifact_limit_bytes,
                  wallclock_seconds=lab.config.tiers.local.wallclock_seconds,
                  lines_before=code_lines(parent_source), lines_after=code_lines(source))
