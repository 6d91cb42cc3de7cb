"""Promotions a killed pgolf left: stop the remote run, settle, record a crash, mark the parent."""

from __future__ import annotations

import subprocess
import time

from pgolf.budget import BudgetManager
from pgolf.compute.pods import owner_state
from pgolf.compute.runpod import API_KEY_ENV, lifecycle_from_config
from pgolf.compute.ssh import RemoteLayout, SshBackend
from pgolf.config import PgolfConfig, secret
from pgolf.errors import PgolfError
from pgolf.loop.promote.flight import InFlight, close_reservation, in_flight, record, remote_row
from pgolf.loop.promote.plan import parent_row, ssh_target
from pgolf.status import Status
from pgolf.workspace import Workspace


def recover_promotions(ws: Workspace, config: PgolfConfig, budget: BudgetManager | None = None) -> list[str]:
    """Finish promotions whose pgolf process died mid-run: stop the remote run, settle, record a crash,
    mark the parent promoted. Returns what was done or could not be done (then retried next start)."""
    flights = [f for f in in_flight(ws) if owner_state(f.owner) == "gone"]
    if not flights:
        return []
    budget = budget or ws.budget(config)
    messages = []
    for flight in flights:
        try:
            messages.append(_recover(ws, config, budget, flight))
        except PgolfError as err:
            messages.append(f"promotion {flight.remote_run_id} left by a killed pgolf: {err}; "
                            "will retry at the next start")
    return messages


def _recover(ws: Workspace, config: PgolfConfig, budget: BudgetManager, flight: InFlight) -> str:
    if flight.tier == "ssh":
        tier = config.tiers.ssh
        if tier is None:
            raise PgolfError("no [tiers.ssh] in pgolf.toml to reach its host")
        try:
            target = ssh_target(ws, tier, flight.host)
            reached = SshBackend(target, RemoteLayout(tier.remote_dir)).kill_remote(flight.remote_run)
        except (OSError, subprocess.SubprocessError) as err:
            raise PgolfError(f"could not stop it on {target.host}: {err}") from None
        if not reached:
            raise PgolfError(f"could not reach {target.host} to stop it")
        stopped = flight.stopped_at or time.time()
        seconds = max(stopped - flight.started_at, 0.0)
        cost, note = close_reservation(ws, budget, flight, flight.price_per_hour * seconds / 3600.0, seconds)
    else:
        swept = lifecycle_from_config(ws, config, budget).sweep_orphans()
        problems = [s.problem for s in swept if s.problem]
        if problems:
            raise PgolfError("; ".join(problems))
        cost, note = close_reservation(ws, budget, flight, None, 0.0)
        if note:
            raise PgolfError(note)
    parent = parent_row(ws, flight.run_id)
    record(ws, flight, remote_row(flight, parent, Status.CRASH, "pgolf was killed during the run", cost, None))
    return (f"promotion {flight.remote_run_id} of {flight.run_id} was left by a killed pgolf: stopped, "
            f"cost ${cost:.2f}, recorded as crash")


def sweep_at_start(ws: Workspace, config: PgolfConfig) -> list[str]:
    """At a start: recover killed promotions and terminate this workspace's orphaned pods.

    Never raises for a remote problem: each one is a line in the returned messages.
    """
    try:
        messages = recover_promotions(ws, config)
        if config.tiers.runpod is not None and secret(API_KEY_ENV, ws.root):
            for pod in lifecycle_from_config(ws, config, ws.budget(config)).sweep_orphans():
                messages.append(f"orphaned pod {pod.id or pod.name} (run {pod.run_id or '-'}): "
                                + (pod.problem or f"{pod.outcome}, ${pod.cost_usd:.2f}"))
    except PgolfError as err:
        return [f"sweep at start: {err}"]
    return messages
