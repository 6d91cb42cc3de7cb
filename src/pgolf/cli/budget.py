"""`pgolf budget status|history`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, fmt_usd, plain, print_json, say

budget_app = typer.Typer(help="Money: credits, reserve, rate limit, LLM spend.", no_args_is_help=True)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@budget_app.command("status")
def budget_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Credits left, what is reserved, the rate limit and the LLM cap."""
    ws = current_workspace()
    cfg = ws.config()
    st = ws.budget(cfg).status()
    if as_json:
        print_json({**st.as_dict(), "price_per_gpu_hour": cfg.budget.price_per_gpu_hour,
                    "min_seconds_between_paid_runs": cfg.budget.min_seconds_between_paid_runs})
        return
    console.print(f"total      {fmt_usd(st.total_usd)}")
    console.print(f"spent      {fmt_usd(st.spent_usd)}")
    console.print(f"reserved   {fmt_usd(st.reserved_usd)}  (paid runs in flight)")
    console.print(f"available  {fmt_usd(st.available_usd)}  (reserve floor {fmt_usd(st.reserve_usd)})")
    console.print(f"LLM        {fmt_usd(st.llm_spent_usd)} of {fmt_usd(st.llm_cap_usd)}")
    console.print(f"price      {fmt_usd(cfg.budget.price_per_gpu_hour)} per GPU-hour")
    console.print(f"last paid run started {_when(st.last_paid_start)}; "
                  f"next allowed {_when(st.next_paid_allowed_at)}")
    if st.warning:
        say("[yellow]warning:[/] {}", st.warning)


@budget_app.command("history")
def budget_history(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every reservation, settlement and LLM charge, oldest first."""
    entries = current_workspace().budget().history()
    if as_json:
        print_json([e.__dict__ for e in entries])
        return
    if not entries:
        console.print("no budget history yet: nothing reserved, spent or charged")
        return
    table = Table("when", "kind", "state", "estimated", "actual", "GPUs", "run", "description")
    for e in entries:
        table.add_row(_when(e.created_at), plain(e.kind), plain(e.state), fmt_usd(e.estimated_usd),
                      fmt_usd(e.actual_usd), str(e.gpus or "-"), plain(e.run_id), plain(e.description))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(budget_app, name="budget")
