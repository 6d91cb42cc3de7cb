"""The runs a slot executes: a baseline seed of a commit, and a proposal (propose → commit in the slot's
worktree → preflight → run → decide → record)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pgolf.atomic import atomic_write_text
from pgolf.logs import RunResult
from pgolf.loop.breaker import ProposerFailure
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.inflight import InFlight
from pgolf.loop.judging import REPLICATE_PREFIX, Candidate, decision_of, screened_count, verdict_for
from pgolf.loop.lab import TIER, Lab, code_lines, write_json
from pgolf.loop.outcome import hard_decision, ledger_row, run_facts, with_reason
from pgolf.loop.preflight import preflight
from pgolf.loop.proposers.base import Proposal, ProposalContext, Proposer
from pgolf.loop.setup_check import never_stepped, setup_failure
from pgolf.loop.slots import Slot
from pgolf.status import Status


def _row(state: InFlight, status: str, result: RunResult | None, reason: str = "", promoted: str = "no"):
    return ledger_row(commit=state.commit, tier=TIER, status=status, result=result,
                      description=with_reason(state.description, status, reason), run_id=state.run_id,
                      parent_run=state.parent_run, seed=state.seed, source_item=state.source_item,
                      promoted=promoted)


def run_baseline(lab: Lab, slot: Slot, seed: int, commit: str | None = None, paired_with: str = "") -> ExperimentRecord:
    """One run of an unchanged commit (default: the best) with `seed`: a noise-floor point, or the
    incumbent's side of a candidate's paired seed (`paired_with` names the candidate's first run)."""
    commit = commit or lab.refs.best_commit()
    description = f"baseline, seed {seed}" + (f" (paired with {paired_with})" if paired_with else "")
    state = InFlight(run_id=lab.next_run_id(), kind="baseline", commit=commit, parent_commit=commit,
                     parent_run=paired_with, seed=seed, description=description, pgolf_pid=os.getpid(),
                     slot=slot.index, candidate=paired_with)
    # A baseline is recorded whatever its size: it measures noise, it is not a candidate.
    return _measure(lab, slot, state, Status.BASELINE, oversize_ok=True)


def run_replicate(lab: Lab, slot: Slot, first_run: str, commit: str, seed: int) -> ExperimentRecord:
    """One more seed of a candidate (its first run is `first_run`), for the judge's paired test."""
    state = InFlight(run_id=lab.next_run_id(), kind="replicate", commit=commit, parent_commit=commit,
                     parent_run=first_run, seed=seed, description=f"{REPLICATE_PREFIX}{first_run}, seed {seed}",
                     pgolf_pid=os.getpid(), slot=slot.index, candidate=first_run)
    return _measure(lab, slot, state, Status.REPLICATE, oversize_ok=False)


def _measure(lab: Lab, slot: Slot, state: InFlight, scored: str, *, oversize_ok: bool) -> ExperimentRecord:
    """Run an already committed script once and record the measurement (or the hard gate it failed)."""
    lab.save(state)
    outcome, result = lab.execute(state, slot)
    failed, _gates = hard_decision(run_facts(outcome, result), artifact_limit=lab.ruleset.artifact_limit_bytes,
                                   wallclock_seconds=lab.config.tiers.local.wallclock_seconds,
                                  step_limited=lab.config.tiers.local.step_limited)
    noise_point = state.kind == "baseline" and not state.candidate
    if noise_point and failed and failed.status in (Status.CRASH, Status.TIMEOUT) \
            and never_stepped(outcome.log_path, result):
        state.clear(lab.ws)  # the script cannot start here: a setup error, never a noise-floor row
        raise setup_failure(state.run_id, outcome.log_path, failed.reason)
    if failed and failed.status == Status.OVERSIZE and oversize_ok:
        failed = None
    status, reason = (failed.status, failed.reason) if failed else (scored, "")
    lab.record(state, _row(state, status, result, reason), None, {"status": status, "reason": reason})
    return lab.finish(state, status, result, reason, outcome.seconds)


Screened = tuple[ExperimentRecord, Candidate | None]  # the first run's record, and the candidate to replicate


def run_proposal(lab: Lab, slot: Slot, proposer: Proposer, others: Sequence[str] = ()) -> Screened:
    """Ask the proposer for a change in the slot's worktree, commit it, preflight it, run it, screen it."""
    with lab.refs.lock:
        rows = lab.rows()
        noise = lab.noise(rows)
        best_bpb, best_run = lab.best(rows, noise)
        best_commit = lab.refs.best_commit()
    run_id = lab.next_run_id()
    folder = lab.folder(run_id)
    worktree = lab.refs.slot_worktree(slot.index, best_commit)
    state = InFlight(run_id=run_id, kind="experiment", commit=best_commit, parent_commit=best_commit,
                     parent_run=best_run, seed=lab.first_seed, description=f"{proposer.kind} proposal",
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
        return _no_run(lab, state, proposal, Status.ABORTED, "stopped by the user during the proposal", proposer), None
    if proposal.rejected:
        return _no_run(lab, state, proposal, Status.REJECTED, proposal.rejected, proposer), None
    if proposal.failure is not None:
        return _no_run(lab, state, proposal, Status.SKIPPED, proposal.description, proposer,
                       failure=proposal.failure), None
    if not proposal.changed:
        return _no_run(lab, state, proposal, Status.SKIPPED, "no change to run", proposer, best_bpb), None
    return _run_change(lab, slot, state, proposer, ctx)


def _no_run(lab: Lab, state: InFlight, proposal: Proposal, status: str, reason: str, proposer: Proposer,
            score: float | None = None, failure: ProposerFailure | None = None) -> ExperimentRecord:
    """Record a proposal that is not run (rejected, skipped, aborted) against the best commit."""
    row = _row(state, status, None, reason)
    decision: dict[str, object] = {"status": status, "reason": reason}
    if failure is not None:
        decision["proposer_failure"] = failure.as_dict()  # exit code and stderr tail, for `pgolf show`
    write_json(lab.folder(state.run_id).decision, decision)
    with lab.refs.lock:
        lab.ledger.append(row)
        if state.proposal_state:
            proposer.observe(state.proposal_state, status, score)
        state.clear(lab.ws)
        lab.refresh_program()
    return lab.finish(state, status, None, reason, 0.0, failure=failure)


def _run_change(lab: Lab, slot: Slot, state: InFlight, proposer: Proposer, ctx: ProposalContext) -> Screened:
    refs, folder = lab.refs, lab.folder(state.run_id)
    parent_source = refs.script(state.parent_commit)
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
        return lab.finish(state, status, None, check.failure, 0.0), None
    outcome, result = lab.execute(state, slot)
    failed, gates = hard_decision(run_facts(outcome, result), artifact_limit=lab.ruleset.artifact_limit_bytes,
                                  wallclock_seconds=lab.config.tiers.local.wallclock_seconds,
                                  step_limited=lab.config.tiers.local.step_limited)
    if failed is not None:
        lab.record(state, _row(state, failed.status, result, failed.reason), proposer, failed.as_dict())
        return lab.finish(state, failed.status, result, failed.reason, outcome.seconds), None
    # Screening: the first run against the best at the end of the run (another slot may have moved it).
    candidate = Candidate(first_run=state.run_id, commit=state.commit, parent_commit=state.parent_commit,
                          parent_run=state.parent_run, description=state.description, k=0,
                          simpler=code_lines(source) < code_lines(parent_source),
                          proposal_state=state.proposal_state)
    with refs.lock:
        rows = lab.rows() + [_row(state, Status.REPLICATE, result)]  # this run, as the judge will see it
        candidate.k = screened_count(rows[:-1])
        verdict = verdict_for(lab.policy, rows, candidate, refs.best_commit())
    decision = decision_of(verdict, gates)
    if verdict.action == "replicate":
        # The proposer hears the outcome once the candidate is judged (search: its trial stays pending).
        lab.record(state, _row(state, Status.REPLICATE, result), None, decision.as_dict())
    else:
        lab.record(state, _row(state, decision.status, result, decision.reason), proposer, decision.as_dict())
    record = lab.finish(state, decision.status, result, decision.reason, outcome.seconds, decision.gain,
                        verdict=decision.verdict)
    return record, candidate if verdict.action == "replicate" else None
