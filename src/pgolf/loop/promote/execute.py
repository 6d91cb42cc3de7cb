"""Promotion execution: reserve → run on the remote tier → settle → write the remote row.

The worst case is reserved: the run's timeout plus the pod's start-up limit plus allowances for copying,
stopping and terminating. The run gets one deadline at the end of that span, which ends every phase
(the pod is terminated then, whatever it is doing), so the settlement (the provider's price × the actual
lifetime) stays within the reservation as long as the provider answers the termination in time.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.compute.base import Backend, LineCallback, RunRequest
from pgolf.compute.pods import owner_tags, register_cleanup, unregister_cleanup
from pgolf.compute.runpod import RunpodBackend, lifecycle_from_config
from pgolf.compute.ssh import RemoteLayout, SshBackend
from pgolf.config import PgolfConfig, RunpodTier, SshTier
from pgolf.errors import BudgetRefused, PgolfError
from pgolf.logs import read_run_result
from pgolf.loop.decision import Gate
from pgolf.loop.outcome import hard_decision, run_facts
from pgolf.loop.promote.flight import InFlight, close_reservation, record, remote_row
from pgolf.loop.promote.plan import (
    TERMINATE_SECONDS,
    TRANSIENT_GATES,
    PromotionPlan,
    PromotionResult,
    parent_row,
    plan_promotion,
    remote_data,
    ssh_hosts,
    ssh_target,
    tier_settings,
)
from pgolf.loop.promote.recover import recover_promotions
from pgolf.loop.promotion import pending_promotions, remote_tier_name
from pgolf.status import Status
from pgolf.workspace import Workspace


def make_backend(ws: Workspace, config: PgolfConfig, plan: PromotionPlan,
                 budget: BudgetManager, host: str = "") -> Backend:
    """The backend of the plan's tier (on the SSH tier: `host`, a key of `ssh_hosts`), wired to this
    workspace's budget."""
    tier = tier_settings(config, plan.tier)
    _env, uploads = remote_data(ws, config, tier)
    if isinstance(tier, SshTier):
        return SshBackend(ssh_target(ws, tier, host), RemoteLayout(tier.remote_dir, uploads), tuple(tier.fetch))
    if isinstance(tier, RunpodTier):
        lifecycle = lifecycle_from_config(ws, config, budget, max_cost_per_hr=plan.price_per_hour)
        return RunpodBackend(ws, tier, lifecycle, data_uploads=uploads)
    raise PgolfError("no remote tier configured")


def _refuse(ws: Workspace, plan: PromotionPlan, gate: Gate) -> PromotionResult:
    transient = gate.name in TRANSIENT_GATES
    if not transient:
        ws.ledger().update_promoted(plan.run_id, "refused")
    return PromotionResult(plan, "pending" if transient else "refused", f"{gate.name}: {gate.detail}")


def _prepare_run_dir(ws: Workspace, plan: PromotionPlan) -> Path:
    folder = ws.run(plan.remote_run_id)
    folder.path.mkdir(parents=True, exist_ok=False)
    atomic_write_text(folder.plan, json.dumps(plan.as_dict(), indent=1, default=str) + "\n")
    parent_diff = ws.run(plan.run_id).diff
    if parent_diff.is_file():
        shutil.copyfile(parent_diff, folder.diff)
    return folder.path


def promote_run(ws: Workspace, config: PgolfConfig, run_id: str, *, yes: bool = False,
                dry_run: bool = False, backend: Backend | None = None, budget: BudgetManager | None = None,
                on_line: LineCallback | None = None, cancel: threading.Event | None = None,
                host: str = "") -> PromotionResult:
    """Plan, check the gates, reserve, run on the remote tier (on the SSH tier: `host`, default its own
    host), settle, and write the ledger rows.

    Setting `cancel` stops the remote run (recorded as aborted, "stopped by the user", with what it cost,
    as a local run is).
    """
    budget = budget or ws.budget(config)
    if not dry_run:
        for message in recover_promotions(ws, config, budget):
            if on_line is not None:
                on_line(f"pgolf: {message}")
    plan = plan_promotion(ws, config, run_id, yes=yes, budget=budget)
    if dry_run:
        return PromotionResult(plan, "dry-run", "nothing was spent")
    if plan.refusal is not None:
        return _refuse(ws, plan, plan.refusal)
    backend = backend or make_backend(ws, config, plan, budget, host)
    tier = tier_settings(config, plan.tier)
    flight = InFlight(plan.remote_run_id, run_id, plan.tier or "remote", plan.commit, time.time(),
                      plan.price_per_hour, owner=owner_tags("", plan.remote_run_id),
                      remote_run=SshBackend.remote_run_of(tier.remote_dir, plan.remote_run_id)
                      if isinstance(tier, SshTier) else "", host=host if isinstance(tier, SshTier) else "")
    flight.save(ws)  # before reserving: a kill from here on is recovered at the next start
    if plan.paid:
        try:
            flight.reservation_id = budget.reserve(plan.reserved_usd, gpus=plan.gpus, run_id=plan.remote_run_id,
                                                   description=f"promote {run_id} to {plan.tier}")
        except BudgetRefused:
            flight.remove(ws)
            # Another process took the money or the slot since the plan: judge again, with reasons.
            fresh = plan_promotion(ws, config, run_id, yes=yes, budget=budget)
            gate = fresh.refusal or Gate("budget", False, "refused by the budget")
            return _refuse(ws, fresh, gate)
        flight.save(ws)
    run_dir = _prepare_run_dir(ws, plan)
    # The pod's termination (after the deadline) is inside the reservation too.
    terminate = TERMINATE_SECONDS if plan.tier == "runpod" else 0.0
    request = RunRequest(
        run_id=plan.remote_run_id, workspace_root=ws.root, commit=plan.commit, command=plan.command,
        run_dir=run_dir, env=plan.env, wallclock_seconds=plan.wallclock_seconds,
        timeout_seconds=plan.timeout_seconds, gpus=plan.gpus, reservation_id=flight.reservation_id,
        cancel=cancel, deadline=flight.started_at + plan.worst_seconds - terminate,
    )
    return _execute(ws, config, plan, backend, request, budget, flight, on_line)


def _execute(ws: Workspace, config: PgolfConfig, plan: PromotionPlan, backend: Backend, request: RunRequest,
             budget: BudgetManager, flight: InFlight, on_line: LineCallback | None) -> PromotionResult:
    parent = parent_row(ws, plan.run_id)
    # The SSH tier's money is pgolf's price × time; a pod's is settled by its lifecycle on termination.
    own_cost = plan.tier == "ssh"

    def stopped_by_signal() -> None:
        # Only a file write here: the budget's and the ledger's locks may be held by the interrupted
        # code. Settling and recording follow in normal code, or at the next start.
        flight.stopped_at = time.time()
        flight.save(ws)

    token = register_cleanup(stopped_by_signal)
    try:
        outcome = backend.run(request, on_line)
    except BaseException as err:
        unregister_cleanup(token)
        seconds = time.time() - flight.started_at
        cost, note = close_reservation(ws, budget, flight, plan.price_per_hour * seconds / 3600.0
                                        if own_cost else None, seconds)
        reason = "pgolf was interrupted" if isinstance(err, KeyboardInterrupt) else f"pgolf failed: {err}"
        record(ws, flight, remote_row(flight, parent, Status.CRASH, "; ".join(filter(None, [reason, note])),
                                        cost, None))
        raise
    unregister_cleanup(token)
    own = plan.price_per_hour * outcome.seconds / 3600.0 if own_cost else None
    cost, money_note = close_reservation(ws, budget, flight, own, outcome.seconds)
    outcome.cost_usd = cost
    result = read_run_result(request.run_dir)
    failed, _gates = hard_decision(run_facts(outcome, result),
                                   artifact_limit=config.get_ruleset().artifact_limit_bytes, wallclock_seconds=None)
    # A remote run that scored within the limit is a keep: it measured the kept local run on that tier.
    status, note = (failed.status, failed.reason) if failed else (Status.KEEP, "")
    saved = max(plan.expected_usd - cost, 0.0) if status == Status.ABORTED else 0.0
    if status == Status.ABORTED:
        note = f"{note}; saved ~${saved:.2f}"
    note = "; ".join(filter(None, [note, money_note]))
    row = remote_row(flight, parent, status, note, cost, result)
    record(ws, flight, row)  # the row is written before anything else changes
    return PromotionResult(plan, status, note, cost, saved, row, outcome)


def promotion_workers(config: PgolfConfig) -> list[str]:
    """One entry per promotion that may run at once: the RunPod tier's max_pods, or each SSH host's key
    once per slot (its own host and `hosts`); else one."""
    tier = tier_settings(config, remote_tier_name(config))
    if isinstance(tier, RunpodTier):
        return [""] * tier.max_pods
    if isinstance(tier, SshTier):
        return [key for key, host in ssh_hosts(tier) for _ in range(host.slots)]
    return [""]


def run_promotion_queue(ws: Workspace, config: PgolfConfig, *, yes: bool = False,
                        on_line: LineCallback | None = None,
                        cancel: threading.Event | None = None) -> list[PromotionResult]:
    """Promote every pending local row, oldest first, on up to `promotion_workers` workers at once; start
    nothing new after a transient refusal or once `cancel` is set (a promotion under way is stopped by it
    too). Every worker reserves before it starts, and the budget serialises reservations, so concurrent
    workers can never spend past the credits."""
    todo = list(pending_promotions(ws.ledger().rows()))
    results: list[PromotionResult] = []
    lock, halt = threading.Lock(), threading.Event()

    def worker(host: str) -> None:
        while True:
            with lock:
                if not todo or halt.is_set() or (cancel is not None and cancel.is_set()):
                    return
                row = todo.pop(0)
            result = promote_run(ws, config, row.run_id, yes=yes, on_line=on_line, cancel=cancel, host=host)
            with lock:
                results.append(result)
            if result.status == "pending":  # rate limit, confirmation or configuration: later rows would wait too
                halt.set()

    hosts = promotion_workers(config)[:max(len(todo), 1)]
    if len(hosts) == 1:
        worker(hosts[0])
        return results
    threads = [threading.Thread(target=worker, args=(host,), name=f"pgolf-promote-{i}", daemon=True)
               for i, host in enumerate(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
