"""`pgolf init` and `pgolf status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pgolf.cli._common import console, current_workspace, fmt_bpb, fmt_bytes, fmt_usd, print_json
from pgolf.cli.options import ruleset_option
from pgolf.ledger import best_by_tier
from pgolf.rules import DEFAULT_RULESET
from pgolf.workspace import Workspace, init_workspace


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    ruleset: Annotated[str, ruleset_option("Challenge track and its limits.")] = DEFAULT_RULESET,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing workspace's pgolf.toml and program.md, and replace an "
                        "existing train_gpt.py by the baseline. results.tsv is always kept.")] = False,
) -> None:
    """Create a workspace: a git repo with train_gpt.py, pgolf.toml, program.md and results.tsv.

    An existing train_gpt.py in DIRECTORY is adopted (committed as the starting point) unless --force.
    """
    from pgolf.cli.adopt import init_lines, script_present

    adopted = script_present(directory) and not force
    ws = init_workspace(directory, ruleset=ruleset, force=force)
    console.print(f"Created pgolf workspace in [bold]{escape(str(ws.root))}[/] (ruleset {ruleset}).")
    for line in init_lines(ws, adopted=adopted):
        console.print(escape(line))
    console.print("Next: edit pgolf.toml (data paths, budget), then `pgolf status` and `pgolf run`.")


def workspace_status(ws: Workspace) -> dict:
    """Everything `pgolf status` shows, as plain data."""
    cfg = ws.config()
    contents = ws.ledger().load()
    best = best_by_tier(contents.rows)
    budget = ws.budget(cfg).status()
    return {
        "workspace": str(ws.root),
        "ruleset": cfg.get_ruleset().as_dict(),
        "runs": len(contents.rows),
        "damaged_lines": [{"line": d.line_number, "reason": d.reason} for d in contents.damaged],
        "best": {tier: row.as_dict() for tier, row in best.items()},
        "budget": budget.as_dict(),
    }


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the ruleset, the best run per tier, the number of runs and the budget."""
    data = workspace_status(current_workspace())
    if as_json:
        print_json(data)
        return
    rules = data["ruleset"]
    train = "unlimited" if rules["train_seconds"] is None else f"{rules['train_seconds']:.0f} s"
    console.print(f"[bold]Workspace[/] {data['workspace']}")
    console.print(f"[bold]Ruleset[/]   {rules['name']}: artifact ≤ {fmt_bytes(rules['artifact_limit_bytes'])} bytes, "
                  f"train {train} on {rules['gpu_count']}×{rules['gpu_kind']}")
    console.print(f"[bold]Runs[/]      {data['runs']}")
    for d in data["damaged_lines"]:
        console.print(f"[yellow]warning:[/] results.tsv line {d['line']} is damaged: {escape(d['reason'])}")
    if data["best"]:
        table = Table("tier", "val_bpb", "artifact bytes", "commit", "description", title="Best per tier")
        for tier, row in sorted(data["best"].items()):
            size = fmt_bytes(row["artifact_bytes"])
            table.add_row(escape(tier), fmt_bpb(row["val_bpb"]), size, escape(row["commit"][:8]),
                          escape(row["description"]))
        console.print(table)
    else:
        console.print("[bold]Best[/]      no scored run yet")
    b = data["budget"]
    console.print(f"[bold]Budget[/]    {fmt_usd(b['available_usd'])} available of {fmt_usd(b['total_usd'])} "
                  f"(spent {fmt_usd(b['spent_usd'])}, reserve {fmt_usd(b['reserve_usd'])}); "
                  f"LLM {fmt_usd(b['llm_spent_usd'])} of {fmt_usd(b['llm_cap_usd'])}")
    if b["warning"]:
        console.print(f"[yellow]warning:[/] {b['warning']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(init)
    app.command()(status)
