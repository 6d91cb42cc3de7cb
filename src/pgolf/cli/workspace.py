"""`pgolf init` and `pgolf status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pgolf.cli._common import console, current_workspace, fmt_bpb, fmt_bytes, fmt_usd, plain, print_json, say
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
    profile: Annotated[str | None, typer.Option(
        help="Local-tier settings for this machine: cpu (a small model in [tiers.local] env) or gpu (the "
             "full baseline). Default: gpu when a CUDA GPU is visible, else cpu.")] = None,
) -> None:
    """Create a workspace: a git repo with train_gpt.py, pgolf.toml, program.md and results.tsv.

    An existing train_gpt.py in DIRECTORY is adopted (committed as the starting point) unless --force.
    """
    from pgolf.cli.adopt import init_lines, script_present
    from pgolf.loop.profiles import PROFILES, get_profile, machine_profile

    if profile is not None and profile not in PROFILES:
        raise typer.BadParameter(f"choose one of {', '.join(PROFILES)}", param_hint="--profile")
    chosen = get_profile(profile or machine_profile())
    adopted = script_present(directory) and not force
    ws = init_workspace(directory, ruleset=ruleset, force=force, **chosen.template_values)
    say("Created pgolf workspace in [bold]{}[/] (ruleset {}).", ws.root, ruleset)
    for text in init_lines(ws, adopted=adopted):
        say("{}", text)
    why = "as asked" if profile else ("this machine shows a CUDA GPU" if chosen.name == "gpu"
                                      else "this machine shows no CUDA GPU")
    other = "cpu" if chosen.name == "gpu" else "gpu"
    say(f"Profile {{}} ({why}; `--profile {other}` for the other): {{}}.", chosen.name, chosen.summary)
    console.print("Next: edit pgolf.toml (data paths, budget), then `pgolf status` and `pgolf run`.")


def workspace_status(ws: Workspace) -> dict:
    """Everything `pgolf status` shows, as plain data."""
    from collections import Counter

    from pgolf.loop.activity import loop_activity
    from pgolf.loop.noise import noise_floor

    cfg = ws.config()
    contents = ws.ledger().load()
    best = best_by_tier(contents.rows)
    budget = ws.budget(cfg).status()
    floor = noise_floor(contents.rows, min_gain=cfg.loop.min_gain, screen_sigmas=cfg.loop.screen_sigmas,
                        commit=_best_commit(ws))
    return {
        "workspace": str(ws.root),
        "ruleset": cfg.get_ruleset().as_dict(),
        "runs": len(contents.rows),
        "by_status": dict(Counter(r.status for r in contents.rows).most_common()),
        "loop": loop_activity(ws, wallclock_seconds=cfg.tiers.local.wallclock_seconds),
        "noise_floor": None if floor is None else {
            "commit": floor.commit, "runs": floor.runs, "mean": floor.mean, "sigma": floor.sigma,
            "dof": floor.dof, "groups": floor.groups, "bar": floor.threshold},
        "damaged_lines": [{"line": d.line_number, "reason": d.reason} for d in contents.damaged],
        "best": {tier: row.as_dict() for tier, row in best.items()},
        "budget": budget.as_dict(),
    }


def _best_commit(ws: Workspace) -> str | None:
    """pgolf/best, where the loop measures the noise floor (the ledger's last baseline may be an old
    best's paired seed); None before the first `pgolf run` made the branch."""
    from pgolf import git
    from pgolf.loop.refs import BEST_BRANCH

    try:
        return git.git(ws.root, "rev-parse", "--verify", "-q", f"refs/heads/{BEST_BRANCH}", check=False) or None
    except (OSError, git.GitError):
        return None


def _print_loop(data: dict) -> None:
    """Whether a loop runs, its runs in flight with step and ETA, orphans, noise floor, counts."""
    from pgolf.cli.live import duration as _duration  # the one duration format of `pgolf run`

    loop = data["loop"]
    state = f"running (pid {loop['pid']})" if loop["running"] else "not running"
    console.print(f"[bold]Loop[/]      {state}")
    for run in loop["inflight"]:
        step = f"step {run['step']}/{run['total_steps']}" if run["step"] else "no step yet"
        eta = f", train ETA {_duration(run['eta_seconds'])}" if run["eta_seconds"] is not None else ""
        where = run["phase"] + (f", slot {run['slot']}" if isinstance(run.get("slot"), int) else "")
        console.print(Text(f"          {run['run_id']} {run['kind']} ({where}): {step}{eta}, "
                           f"{_duration(run['elapsed_seconds'])} elapsed; {run['description']}"), soft_wrap=True)
    for run in loop["orphaned"]:
        extra = "; its training process is still running" if run.get("training_still_running") else ""
        console.print(Text(f"warning: {run['run_id']} is orphaned: in flight, but no `pgolf run` holds the "
                           f"workspace (pgolf was killed); the next `pgolf run` records it as crash{extra}",
                           style="yellow"))
    for problem in loop["damaged"]:
        console.print(Text(f"warning: .pgolf/running/: {problem}; the next `pgolf run` removes it", style="yellow"))
    floor = data["noise_floor"]
    if floor is None:
        console.print("[bold]Noise[/]     not measured yet (the first `pgolf run` measures it)")
    else:
        groups = "group" if floor["groups"] == 1 else "groups"
        console.print(f"[bold]Noise[/]     σ {floor['sigma']:.3g} pooled over {floor['groups']} {groups} of repeated runs "
                      f"({floor['dof']} dof); the best's mean {floor['mean']:.4f} over {floor['runs']} runs; a first "
                      f"run must gain more than {floor['bar']:.4f} to be replicated")
    if data["by_status"]:
        counts = ", ".join(f"{count} {status}" for status, count in data["by_status"].items())
        console.print(Text(f"Runs      {data['runs']}: {counts}"), soft_wrap=True)
    else:
        console.print("[bold]Runs[/]      0")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the ruleset, whether a loop is running (runs in flight, step, ETA), the noise floor, runs by status, the best run per tier and the budget."""
    data = workspace_status(current_workspace())
    if as_json:
        print_json(data)
        return
    rules = data["ruleset"]
    train = "unlimited" if rules["train_seconds"] is None else f"{rules['train_seconds']:.0f} s"
    say("[bold]Workspace[/] {}", data["workspace"])
    say(f"[bold]Ruleset[/]   {{}}: artifact ≤ {fmt_bytes(rules['artifact_limit_bytes'])} bytes, "
        f"train {train} on {rules['gpu_count']}×{{}}", rules["name"], rules["gpu_kind"])
    _print_loop(data)
    for d in data["damaged_lines"]:
        say(f"[yellow]warning:[/] results.tsv line {d['line']} is damaged: {{}}", d["reason"])
    if data["best"]:
        table = Table("tier", "val_bpb", "artifact bytes", "commit", "description", title="Best per tier")
        for tier, row in sorted(data["best"].items()):
            size = fmt_bytes(row["artifact_bytes"])
            table.add_row(plain(tier), fmt_bpb(row["val_bpb"]), size, plain(row["commit"][:8]),
                          plain(row["description"]))
        console.print(table)
    else:
        console.print("[bold]Best[/]      no scored run yet")
    b = data["budget"]
    console.print(f"[bold]Budget[/]    {fmt_usd(b['available_usd'])} available of {fmt_usd(b['total_usd'])} "
                  f"(spent {fmt_usd(b['spent_usd'])}, reserve {fmt_usd(b['reserve_usd'])}); "
                  f"LLM {fmt_usd(b['llm_spent_usd'])} of {fmt_usd(b['llm_cap_usd'])}")
    if b["warning"]:
        say("[yellow]warning:[/] {}", b["warning"])


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(init)
    app.command()(status)
