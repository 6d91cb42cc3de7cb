"""`pgolf compute pods list|sweep`: this workspace's pods on the RunPod account."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, fmt_usd, plain, print_json, say
from pgolf.compute.pods import PodLifecycle
from pgolf.compute.runpod import lifecycle_from_config
from pgolf.loop.promote import recover_promotions

compute_app = typer.Typer(help="Remote compute: pods this workspace made.", no_args_is_help=True)
pods_app = typer.Typer(help="RunPod pods tagged with this workspace (never other workspaces' pods).",
                       no_args_is_help=True)
compute_app.add_typer(pods_app, name="pods")


def _lifecycle() -> PodLifecycle:
    ws = current_workspace()
    config = ws.config()
    return lifecycle_from_config(ws, config, ws.budget(config))


@pods_app.command("list")
def pods_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """This workspace's pods, with the state of the pgolf process that made each."""
    pods = _lifecycle().workspace_pods()
    if as_json:
        print_json([asdict(p) for p in pods])
        return
    table = Table("pod", "name", "run", "status", "$/h", "owner pid", "owner")
    for p in pods:
        owner = {"alive": plain("alive", "green"), "gone": plain("gone (orphan)", "red")}.get(p.owner, plain(p.owner))
        table.add_row(plain(p.id), plain(p.name), plain(p.run_id), plain(p.status), fmt_usd(p.cost_per_hr),
                      plain(p.owner_pid), owner)
    console.print(table)
    if not pods:
        console.print("no pods of this workspace on the account")


@pods_app.command("sweep")
def pods_sweep(
    include_other_hosts: Annotated[bool, typer.Option(
        "--include-other-hosts", help="Also terminate pods whose owner ran on another machine.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Terminate this workspace's pods whose pgolf process is gone, and settle what they cost.

    First finishes promotions that a killed pgolf left in flight (crash row, parent marked promoted).
    """
    lifecycle = _lifecycle()
    recovered = recover_promotions(lifecycle.ws, lifecycle.ws.config(), lifecycle.budget)
    swept = lifecycle.sweep_orphans(include_other_hosts=include_other_hosts)
    if as_json:
        print_json({"recovered": recovered, "swept": [asdict(s) for s in swept]})
        return
    for message in recovered:
        say("{}", message)
    for s in swept:
        say(f"{{}} {{}} ({{}}, run {{}}): {fmt_usd(s.cost_usd)}" + (" [red]{}[/]" if s.problem else ""),
            s.outcome, s.id or s.name, s.name, s.run_id or "-", *([s.problem] if s.problem else []))
    if not swept:
        console.print("no orphaned pods")
