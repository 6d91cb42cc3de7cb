"""Candidates: a proposal whose first run scored, judged by `pgolf.loop.judge` until it is kept or not.

The first run's ledger row says `replicate` while the judge wants more seeds (paired with the
incumbent's); when it decides, that row is rewritten in place to `keep` or `discard` with the numbers
(n, means, σ, test, p) in its description, and decision.json holds the whole verdict. The replicate
runs' rows (`replicate` for the candidate's seeds, `baseline` for the incumbent's) stay as they are: they
are measurements, and they improve the pooled σ.

Everything a candidate needs is in the ledger and git, so candidates left pending by a stop or a kill
are found again (`pending_candidates`) and resumed by the next start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pgolf.ledger import LedgerRow
from pgolf.loop.decision import Decision, Gate
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.judge import KeepPolicy, Verdict, judge
from pgolf.loop.lab import TIER, Lab, code_lines, write_json
from pgolf.loop.noise import pooled, samples_of
from pgolf.loop.promotion import decide_promotion, write_promotion
from pgolf.loop.proposers.base import Proposer
from pgolf.loop.refs import Refs
from pgolf.status import Status


@dataclass
class Candidate:
    """A proposal being judged: its first run's row and what the judge needs besides samples."""

    first_run: str
    commit: str
    parent_commit: str
    parent_run: str
    description: str
    k: int  # candidates that cleared the screening bar before this one (alpha spending)
    simpler: bool
    proposal_state: dict[str, Any] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)  # job keys still to finish
    failed: str = ""  # a replicate run that crashed: the candidate cannot be kept


REPLICATE_PREFIX = "replicate of "  # the description of a candidate's replicate run: "replicate of rNNNN, seed S"


def _first_runs(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    """Rows of proposals whose run scored (the rows a decision is written on)."""
    return [r for r in rows if r.tier == TIER and r.parent_run and not r.description.startswith(REPLICATE_PREFIX)
            and r.status in (Status.REPLICATE, Status.KEEP, Status.DISCARD)]


def screened_count(rows: Sequence[LedgerRow], before: str = "") -> int:
    """How many candidates cleared the screening bar before the run `before` (default: all so far).

    A first run cleared it when it was replicated: its row still says `replicate`, or a replicate run
    names it as its parent.
    """
    replicated = {r.parent_run for r in rows if r.description.startswith(REPLICATE_PREFIX)}
    ids = [r.run_id for r in _first_runs(rows) if r.status == Status.REPLICATE or r.run_id in replicated]
    return ids.index(before) if before in ids else len(ids)


def simpler_than(refs: Refs, commit: str, parent_commit: str) -> bool:
    """The candidate's script has fewer non-blank lines than its parent's."""
    return code_lines(refs.script(commit)) < code_lines(refs.script(parent_commit))


def verdict_for(policy: KeepPolicy, rows: Sequence[LedgerRow], candidate: Candidate, incumbent: str) -> Verdict:
    """The judge's verdict on every scored run of the candidate against every run of the incumbent."""
    return judge(samples_of(rows, candidate.commit), samples_of(rows, incumbent), pooled(rows), policy=policy,
                 candidates_tested=candidate.k, simpler=candidate.simpler)


def summary(verdict: Verdict) -> str:
    """The verdict's numbers in one line, for the ledger's description."""
    sigma = "-" if verdict.sigma is None else f"{verdict.sigma:.4f}"
    p = "-" if verdict.p_value is None else f"{verdict.p_value:.3g}"
    return (f"n={verdict.n} mean {verdict.candidate_mean:.4f} vs {verdict.incumbent_mean:.4f} "
            f"σ={sigma} {verdict.test} p={p} α={verdict.alpha:.3g}")


def pending_candidates(rows: Sequence[LedgerRow], refs: Refs) -> list[Candidate]:
    """Candidates whose first row still says `replicate` (a stop or a kill came before the decision)."""
    found = []
    by_id = {r.run_id: r for r in rows}
    for r in rows:
        if r.tier != TIER or r.status != Status.REPLICATE or r.description.startswith(REPLICATE_PREFIX):
            continue
        parent = by_id.get(r.parent_run)
        parent_commit = parent.commit if parent is not None else refs.best_commit()
        found.append(Candidate(first_run=r.run_id, commit=r.commit, parent_commit=parent_commit,
                               parent_run=r.parent_run, description=r.description,
                               k=screened_count(rows, r.run_id), simpler=simpler_than(refs, r.commit, parent_commit)))
    return found


def decision_of(verdict: Verdict, gates: tuple[Gate, ...] = ()) -> Decision:
    """The verdict as the loop's Decision (status, reason, gain, bar, and every number for decision.json)."""
    status = {"replicate": Status.REPLICATE, "keep": Status.KEEP, "discard": Status.DISCARD}[verdict.action]
    return Decision(status, verdict.reason, gain=verdict.gain, threshold=verdict.bar, gates=gates,
                    verdict=verdict.as_dict())


def conclude(lab: Lab, candidate: Candidate, proposer: Proposer | None) -> tuple[Verdict, ExperimentRecord | None]:
    """Judge the candidate again with every run so far. A `replicate` verdict names the seeds still to run;
    keep/discard rewrites its first row, moves git, tells the proposer and returns the decision's record."""
    refs = lab.refs
    with refs.lock:
        rows = lab.rows()
        verdict = verdict_for(lab.policy, rows, candidate, refs.best_commit())
        if candidate.failed:
            verdict = replace(verdict, action="discard", reason=f"{candidate.failed}; {verdict.reason}")
        if verdict.action == "replicate":
            return verdict, None
        decision = decision_of(verdict)
        folder = lab.ws.run(candidate.first_run)
        promoted = "no"
        if decision.status == Status.KEEP:
            # The promotion gate compares the replicated mean, never one draw.
            noise = lab.noise(rows)
            promotion = decide_promotion(lab.config, lab.budget, rows, val_bpb=verdict.candidate_mean,
                                         artifact_bytes=_artifact_bytes(rows, candidate),
                                         baseline_mean=noise.mean if noise else None)
            write_promotion(folder.path, promotion)
            promoted = promotion.promoted
        write_json(folder.decision, decision.as_dict())
        lab.ledger.update(candidate.first_run, status=decision.status, promoted=promoted,
                          description=f"{candidate.description} [{summary(verdict)}]")
        refs.settle(run_id=candidate.first_run, commit=candidate.commit, parent_commit=candidate.parent_commit,
                    status=decision.status)
        if proposer is not None and candidate.proposal_state:
            proposer.observe(candidate.proposal_state, decision.status, verdict.candidate_mean)
        lab.refresh_program()
    record = ExperimentRecord(run_id=candidate.first_run, kind="decision", status=decision.status,
                              description=candidate.description, commit=candidate.commit,
                              val_bpb=verdict.candidate_mean, reason=verdict.reason, gain=verdict.gain,
                              promoted=promoted, verdict=verdict.as_dict())
    lab.events.run_finished(record)
    return verdict, record


def _artifact_bytes(rows: Sequence[LedgerRow], candidate: Candidate) -> int | None:
    sizes = [r.artifact_bytes for r in rows if r.commit == candidate.commit and r.artifact_bytes is not None]
    return max(sizes) if sizes else None
