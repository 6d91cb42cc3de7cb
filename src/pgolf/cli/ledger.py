"""`pgolf ledger`: results.tsv as a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pgolf.cli._common import console, current_workspace, err_console, fmt_bpb, fmt_bytes, print_json
from pgolf.cli.live import STATUS_STYLE as _STATUS_STYLE  # one style per status, as `pgolf run` shows it
from pgolf.ledger import last_runs


def ledger(
    tier: Annotated[str | None, typer.Option(help="Only runs of this tier (local, ssh, runpod).")] = None,
    last: Annotated[int, typer.Option("--limit", "-n", "--last", help="Show the last N runs.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the ledger of runs (results.tsv), newest last."""
    contents = current_workspace().ledger().load()
    rows = last_runs(contents.rows, last, tier)
    for d in contents.damaged:  # on stderr, so --json stays parseable and damage is never hidden
        err_console.print(f"[yellow]warning:[/] results.tsv line {d.line_number} is damaged: "
                          f"{escape(d.reason)}")
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    table = Table("run", "commit", "tier", "val_bpb", "bytes", "status", "promoted", "cost", "description")
    for r in rows:
        style = _STATUS_STYLE.get(r.status, "")
        # Descriptions come from agents, LLMs and research: never markup.
        table.add_row(
            escape(r.run_id), escape(r.commit[:8]), escape(r.tier), fmt_bpb(r.val_bpb),
            fmt_bytes(r.artifact_bytes),
            f"[{style}]{r.status}[/]" if style else r.status, r.promoted,
            f"${r.cost_usd:.2f}" if r.cost_usd else "-", escape(r.description),
        )
    console.print(table)
    if not rows:
        console.print("no runs yet")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(ledger)
