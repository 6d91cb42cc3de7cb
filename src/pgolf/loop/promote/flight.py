"""One promotion under way: its `.pgolf/inflight/<run>.json`, its money, and its ledger rows.

The file is written before anything is reserved, so a killed pgolf's promotion is found, stopped,
settled and recorded by the next start (`pgolf.loop.promote.recover`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.compute.pods import pod_may_be_running
from pgolf.ledger import LedgerRow
from pgolf.logs import RunResult
from pgolf.loop.outcome import ledger_row
from pgolf.workspace import Workspace


@dataclass
class InFlight:
    """A promotion under way: what the next start needs to stop, settle and record it after a kill."""

    remote_run_id: str
    run_id: str
    tier: str
    commit: str
    started_at: float
    price_per_hour: float
    remote_run: str = ""  # the SSH tier's run folder on the host
    reservation_id: str = ""
    owner: dict[str, str] = field(default_factory=dict)
    stopped_at: float | None = None  # set by a signal handler once it stopped the remote run
    host: str = ""  # the SSH tier's host it runs on (a key of plan.ssh_hosts; "" = the tier's own)

    @staticmethod
    def folder(ws: Workspace) -> Path:
        return ws.promotions_dir

    def path(self, ws: Workspace) -> Path:
        return self.folder(ws) / f"{self.remote_run_id}.json"

    def save(self, ws: Workspace) -> None:
        """Write the file atomically (no lock: a signal handler calls this)."""
        self.folder(ws).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(ws), json.dumps(asdict(self), indent=1) + "\n")

    def remove(self, ws: Workspace) -> None:
        self.path(ws).unlink(missing_ok=True)


def in_flight(ws: Workspace) -> list[InFlight]:
    folder = InFlight.folder(ws)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if (data := statefile.load_json(path, missing=None)) is not None:  # None: removed since the listing
            found.append(statefile.from_record(InFlight, data, str(path)))
    return found


def entry_of(budget: BudgetManager, flight: InFlight) -> tuple[str, str, float]:
    """(reservation id, state, settled $) of the flight's reservation; found by run id when a kill
    came between reserving and writing the id down."""
    entries = budget.history()
    entry = next((e for e in entries if e.id == flight.reservation_id), None) if flight.reservation_id else \
        next((e for e in entries if e.run_id == flight.remote_run_id and e.kind == "run"), None)
    if entry is None:
        return "", "", 0.0
    return entry.id, entry.state, entry.actual_usd or 0.0


def close_reservation(ws: Workspace, budget: BudgetManager, flight: InFlight, own_cost: float | None,
                       seconds: float) -> tuple[float, str]:
    """Settle or release what is still reserved; (the run's cost as the budget holds it, a note).

    `own_cost` is the SSH tier's price × time; a pod's cost is settled by its lifecycle. A reservation
    that a pod without a recorded termination points to is never released: it stays for the sweep.
    """
    reservation, state, _cost = entry_of(budget, flight)
    if not reservation:
        return own_cost or 0.0, ""
    if state == "reserved":
        if pod_may_be_running(ws, reservation):
            return 0.0, "the pod may still be running: `pgolf compute pods sweep` settles its cost"
        if own_cost:
            budget.settle(reservation, own_cost, seconds=seconds)
        else:
            budget.release(reservation, "nothing was spent")
    _id, state, cost = entry_of(budget, flight)
    return (cost if state == "settled" else 0.0), ""


def remote_row(flight: InFlight, parent: LedgerRow, status: str, note: str, cost: float,
               result: RunResult | None) -> LedgerRow:
    """The remote run's row: the parent's description and source, this run's result and cost."""
    description = f"{parent.description} [{flight.tier} run of {flight.run_id}]"
    if note:
        description += f" ({note})"
    return ledger_row(commit=flight.commit, tier=flight.tier, status=status, result=result,
                      description=description, run_id=flight.remote_run_id, parent_run=flight.run_id,
                      seed=parent.seed if result is None or result.seed is None else None,
                      source_item=parent.source_item, promoted="", cost_usd=cost)


def record(ws: Workspace, flight: InFlight, row: LedgerRow) -> None:
    """The remote row first, then the parent's promoted=yes, then the in-flight file goes."""
    ws.ledger().append(row)
    ws.ledger().update_promoted(flight.run_id, "yes")
    flight.remove(ws)
