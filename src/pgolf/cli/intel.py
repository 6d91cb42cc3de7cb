"""`pgolf research grade | verify | inject`: research graded against this workspace, verified, injected."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer
from rich.progress import Progress

from pgolf.cli._common import console, current_workspace, err_console, print_json, say
from pgolf.cli.options import check_grader
from pgolf.cli.research import research_app
from pgolf.errors import PgolfError
from pgolf.research.grading import HeuristicGrader, grade_pending, make_grader
from pgolf.research.inject import current_grades, open_store, workspace_context
from pgolf.research.verify import verify_top
from pgolf.sections import refresh_program

_GRADER_HELP = "Grader: heuristic (offline) or llm (through pgolf.toml's [llm])."


def _grader_option() -> Any:
    return typer.Option("--grader", metavar="heuristic|llm", callback=check_grader,
                        show_default="pgolf.toml's [research] grader", help=_GRADER_HELP)


def _grader(kind: str | None):  # noqa: ANN202 (a Grader)
    ws = current_workspace()
    config = ws.config()
    chosen = kind or config.research.grader
    return ws, config, make_grader(chosen, config.llm, budget=ws.budget(config), workspace_root=ws.root)


def _stored_research(ws, config):  # noqa: ANN202 (store, context)
    """The research store and the grading context, or one line saying there is no research yet."""
    store = open_store(ws)
    if store is None:
        raise PgolfError("no research yet: run `pgolf research fetch` first")
    return store, workspace_context(ws, config, store)


@research_app.command("grade")
def grade(
    grader: Annotated[str | None, _grader_option()] = None,
    limit: Annotated[int | None, typer.Option(help="Grade at most N items.", min=1, show_default="all")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Grade the stored items that have no grade under the current history (ledger, competitors)."""
    ws, config, chosen = _grader(grader)
    store, context = _stored_research(ws, config)
    with Progress(console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"grading ({chosen.name})", total=None)
        report = grade_pending(store, context, chosen, limit=limit,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    items = store.list()
    grades = current_grades(store, items, context, [chosen.name])
    tiers = Counter(g.tier for g in grades.values())
    if as_json:
        print_json({"grader": report.grader, "context_hash": report.context_hash, "graded": report.graded,
                    "failures": report.failures, "tiers": dict(tiers)})
    else:
        console.print(f"graded {report.graded} item(s) with {report.grader} (context {report.context_hash}); "
                      f"tiers now: A {tiers['A']}, B {tiers['B']}, C {tiers['C']}")
        for item_id, reason in report.failures.items():
            say("[yellow]not graded[/] {}: {} (retried next time)", item_id, reason, err=True)
    if report.failures and not report.graded:
        raise typer.Exit(1)


@research_app.command("verify")
def verify(
    top: Annotated[int, typer.Option(help="Verify the N best Tier-A items.", min=1)] = 3,
    force: Annotated[bool, typer.Option(help="Verify again items already verified under this history.")] = False,
    fetch: Annotated[bool, typer.Option(help="Download full text (arXiv page, PR files); --no-fetch "
                                             "re-judges the stored abstracts offline.")] = True,
    grader: Annotated[str | None, _grader_option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Read the full text of the best Tier-A items, re-grade them, and write briefs with red flags."""
    ws, config, chosen = _grader(grader)
    store, context = _stored_research(ws, config)
    digests = [context.digest(chosen.name), context.digest(HeuristicGrader.name)]
    llm = getattr(chosen, "client", None)
    report = verify_top(store, context, ws.state_dir, digests=digests, n=top, grader=chosen, llm=llm,
                        force=force, fetch=fetch,
                        progress=None if as_json else lambda i: say("verifying {}", i, err=True))
    if as_json:
        print_json({"verified": [v.as_dict() for v in report.verified], "skipped": report.skipped,
                    "failures": report.failures})
        return
    for v in report.verified:
        say(f"[bold]{{}}[/] tier {{}} {v.score}/{v.max_score} ({{}}, {v.full_text_chars:,} chars of full text)",
            v.item_id, v.tier, v.method)
        say("  {}", v.brief)
        for flag in v.red_flags:
            say("  red flag: {}", flag)
    console.print(f"verified {len(report.verified)}, already verified {report.skipped}"
                  + ("" if report.verified or report.skipped else " (no Tier-A item: run `pgolf research grade`)"))


@research_app.command("inject")
def inject(
    grader: Annotated[str | None, _grader_option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Refresh program.md: best result, experiments, research, verified briefs, competitors, budget."""
    ws, config, chosen = _grader(grader)
    report = refresh_program(ws, config, grader=chosen)
    if as_json:
        print_json(report.__dict__)
        return
    sizes = ", ".join(f"{name} {chars:,}" for name, chars in report.section_chars.items())
    say("rewrote {}: {} characters", report.path, sizes)
    console.print(f"{report.research_items} graded item(s) ({report.graded} graded now), "
                  f"{report.competitors} competitor(s), {report.verified} verification(s)")
    for item_id, reason in report.grading_failures.items():
        say("[yellow]not graded by {}[/] {}: {} (heuristic grade shown)", chosen.name, item_id, reason, err=True)
