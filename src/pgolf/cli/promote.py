"""`pgolf promote RUN [--dry-run] [--yes]`: send a kept local run to the remote tier."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, fmt_bpb, fmt_usd, plain, print_json, say
from pgolf.errors import ConfigError, PgolfError
from pgolf.loop.promote import PromotionPlan, plan_promotion, promote_run
from pgolf.loop.promotion import remote_tier_name


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def render_plan(plan: PromotionPlan) -> None:
    """The plan for people: tier, GPUs, money, environment, warnings, and each gate's verdict."""
    say(f"[bold]promote {{}}[/] → {{}}: {plan.gpus} × {{}}, commit {{}}, new run {{}}", plan.run_id,
        plan.tier or "(no remote tier)", plan.gpu_kind, plan.commit[:8], plan.remote_run_id)
    say("command    {}", plan.command or "-")
    console.print(f"price      {fmt_usd(plan.price_per_hour)}/h; expected {_minutes(plan.expected_seconds)} "
                  f"≈ {fmt_usd(plan.expected_usd)}; reserved (worst case) {fmt_usd(plan.reserved_usd)}")
    console.print(f"budget     {fmt_usd(plan.available_usd)} available → "
                  f"{fmt_usd(plan.budget_after_usd)} after the reservation")
    if plan.early_abort:
        a = plan.early_abort
        say(f"early abort at step {a.step} when val_bpb > {a.threshold_bpb:.4f} "
            f"(run {{}} had {fmt_bpb(a.reference_bpb)} there)", a.reference_run)
    env = Table("env", "value", "from", box=None, pad_edge=False)
    for key, value in sorted(plan.env.items()):
        env.add_row(plain(key), plain(value), plain("tier env", "yellow") if key in plan.overrides else "pgolf")
    console.print(env)
    for warning in plan.warnings:
        say("[yellow]warning:[/] {}", warning)
    gates = Table("gate", "verdict", "detail")
    for gate in plan.gates:
        gates.add_row(plain(gate.name), plain("pass", "green") if gate.passed else plain("FAIL", "red"),
                      plain(gate.detail))
    console.print(gates)


def promote(
    run: Annotated[str, typer.Argument(help="The run id of a kept local run (see `pgolf ledger`).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and the gates; spend nothing.")]
    = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm a run on budget.confirm_min_gpus or more "
                                      "GPUs (8 by default).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Run a kept local experiment on the remote tier (tiers.ssh or tiers.runpod in pgolf.toml).

    Prints the plan (tier, GPUs, expected and reserved cost, budget after, environment, every gate's
    verdict), reserves the worst-case cost, runs, terminates the pod, settles price × lifetime and
    writes the remote row to results.tsv with parent_run set to RUN.
    """
    ws = current_workspace()
    config = ws.config()
    if remote_tier_name(config) is None:  # a plan without a tier would be invented: no GPUs, no price
        raise ConfigError("promote: no remote tier in pgolf.toml; add [tiers.ssh] or [tiers.runpod] "
                          "(README: Remote tier)")
    if dry_run:
        plan = plan_promotion(ws, config, run, yes=yes)
        if as_json:
            print_json({**plan.as_dict(), "dry_run": True})
            return
        render_plan(plan)
        console.print("dry run: nothing was reserved or spent")
        return
    if not as_json:
        render_plan(plan_promotion(ws, config, run, yes=yes))
    result = promote_run(ws, config, run, yes=yes, on_line=None if as_json else _echo)
    if as_json:
        print_json(result.as_dict())
    if result.status in ("refused", "pending"):
        raise PgolfError(f"not promoted: {result.reason}")
    if not as_json:
        row = result.row
        say(f"{{}}: {{}} val_bpb {fmt_bpb(row.val_bpb if row else None)}, cost {fmt_usd(result.cost_usd)}"
            + (f", saved ~{fmt_usd(result.saved_usd)}" if result.saved_usd else "")
            + (" ({})" if result.reason else ""), result.status, row.run_id if row else "-",
            *([result.reason] if result.reason else []))


def _echo(line: str) -> None:
    say("{}", line)
