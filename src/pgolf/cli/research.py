"""`pgolf research fetch|list|show|export|daemon`: the research store and the sources that fill it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, finite_or_null, line, plain, print_json, say
from pgolf.errors import ConfigError, PgolfError
from pgolf.research.items import DATE_PRECISION, shown_date
from pgolf.research.sources import SOURCES
from pgolf.research.store import ResearchStore, StoredItem

if TYPE_CHECKING:  # the fetcher (httpx) loads only in the commands that fetch
    from pgolf.research.fetch import FetchReport, SourceOutcome

research_app = typer.Typer(
    help="Papers, PRs, code, posts and web results about the challenge, fetched into .pgolf/research.db.",
    no_args_is_help=True,
)

_TIERS = ("A", "B", "C")
_STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow", "disabled": "dim"}


def _store() -> ResearchStore:
    return ResearchStore(current_workspace().research_db)


def _outcome_line(o: SourceOutcome) -> str:
    style = _STATUS_STYLE[o.status]
    if o.status == "ok":
        what = f"{o.fetched} items, {o.new} new, {o.updated} updated, {o.duplicates} known"
        if o.below_floor:
            what += f", {o.below_floor} below the relevance floor"
    else:
        what = ""
    detail = " — {}" if o.detail else ""
    return line(f"[{style}]{o.status:>8}[/] {o.source:<17} {what}{detail} [dim]({o.seconds:.1f} s)[/]",
                *([o.detail] if o.detail else []))


@research_app.command("fetch")
def research_fetch(
    sources: Annotated[str | None, typer.Option(
        "--sources", help=f"Comma-separated subset of: {', '.join(SOURCES)}.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Window for every source, e.g. 48h, 7d, 2w (default: each source's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-source report as JSON.")] = False,
) -> None:
    """Fetch the sources concurrently into the store and report what each did.

    Exits 0 when at least one source delivered, 2 when none did. A source needing a key that is not set
    (GITHUB_TOKEN, TAVILY_API_KEY) is skipped, not failed, and so is OpenReview when it asks for an account
    (set OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD). One query that fails is reported; the others' items
    are kept. A host that cannot be reached fails its source at once, without retries.
    """
    from pgolf.research.fetch import parse_duration, run_fetch

    ws = current_workspace()
    config = ws.config().research
    window = parse_duration(since) if since else None
    names = sources.split(",") if sources is not None else None
    store = ResearchStore(ws.research_db)
    if as_json:
        report = run_fetch(config, store, names=names, since=window, workspace_root=ws.root)
        print_json({"sources": [o.as_dict() for o in report.outcomes], "summary": report.summary(),
                    "exit_code": report.exit_code})
    else:
        with console.status("fetching research sources…"):
            report = run_fetch(config, store, names=names, since=window, workspace_root=ws.root,
                               on_outcome=lambda o: console.print(_outcome_line(o), soft_wrap=True))
        say("{}", report.summary(), err=report.exit_code != 0)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _item_json(item: StoredItem) -> dict:
    return {**item.as_dict(), "flags": item.flags}


@research_app.command("list")
def research_list(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="Only items graded this tier: A, B or C.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stored items, most recently seen first."""
    if source and source not in SOURCES:
        raise ConfigError(f"unknown research source {source}; known: {', '.join(SOURCES)}")
    if tier is not None:
        if tier.upper() not in _TIERS:
            raise ConfigError(f"unknown tier {tier!r}: use A, B or C")
        tier = tier.upper()
    items = _store().list(source=source, tier=tier, limit=limit)
    if as_json:
        print_json([_item_json(i) for i in items])
        return
    table = Table("id", "source", "tier", "published", "title")
    for i in items:
        flag = " [red](flagged)[/]" if i.flags else ""
        table.add_row(plain(i.id), plain(i.source), plain(i.tier or "-"), plain(shown_date(i.published, i.extra)),
                      line("{}" + flag, i.title[:90]))
    console.print(table)
    if not items:
        console.print("no research items yet: run `pgolf research fetch`")


@research_app.command("show")
def research_show(
    item_id: Annotated[str, typer.Argument(help="An item id as `list` prints it, e.g. arxiv:2502.18801.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One item in full: text, links, dates, grade, and what the store flagged."""
    item = _store().get(item_id)
    if item is None:
        raise PgolfError(f"no research item {item_id!r}; `pgolf research list` shows the ids")
    if as_json:
        print_json(_item_json(item))
        return
    say("[bold]{}[/]", item.title)
    say("{} · {} · {} · {}", item.id, item.source, item.kind, item.url)
    published = item.published or "-"
    if item.extra.get(DATE_PRECISION) == "year":
        published = f"{shown_date(item.published, item.extra)} (the source gives only the year)"
    say("published {} · first seen {} · last seen {}", published, item.first_seen, item.last_seen)
    score = "-" if item.score is None else f"{item.score:.2f}"
    grade = f"{item.tier} ({item.grade_score:g})" if item.tier else "not graded"
    console.print(f"authority {item.authority:.2f} · source score {score} · grade {grade}")
    if item.flags:
        say("[red]flags:[/] {} (agent-directed text was cut out)", ", ".join(item.flags))
    console.print()
    say("{}", item.abstract) if item.abstract else say("[dim](no abstract)[/]")
    extra = {k: v for k, v in item.extra.items() if k != "flags"}
    if extra:
        console.print()
        say("{}", json.dumps(finite_or_null(extra), indent=2, ensure_ascii=False))


@research_app.command("export")
def research_export(
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per line (raw_cache.jsonl shape).")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="File to write (default: .pgolf/raw_cache.jsonl in the workspace).")] = None,
) -> None:
    """Write every stored item for other tools, in the `raw_cache.jsonl` shape."""
    if not jsonl:
        raise ConfigError("choose an export format: --jsonl")
    ws = current_workspace()
    target = out or ws.state_dir / "raw_cache.jsonl"
    count = ResearchStore(ws.research_db).export_jsonl(target)
    say(f"wrote {count} items to {{}}", target)


@research_app.command("daemon")
def research_daemon(
    inject: Annotated[bool, typer.Option(
        "--inject/--no-inject", help="After a pass that found something new, grade offline and refresh "
        "program.md.")] = True,
) -> None:
    """Refresh forever: a full pass now and every 6 hours, a fast pass (GitHub, Tavily) every hour.

    One daemon per workspace; the intervals are `[research] full_every_hours` / `fast_every_hours`.
    Stop it with Ctrl-C.
    """
    try:
        from pgolf.research.scheduler import refresh_program, run_daemon
    except ImportError as err:  # apscheduler missing from a partial install
        raise PgolfError(f"the research daemon needs APScheduler ({err.name} is missing): "
                         "pip install 'apscheduler>=3.10,<4'") from None
    ws = current_workspace()

    def after(kind: str, report: FetchReport) -> None:
        say("{} pass: {}", kind, report.summary())
        if inject:
            try:
                line = refresh_program(ws, report)
            except PgolfError as err:  # a broken ledger or config must not stop the daemon
                line = f"program.md not refreshed: {err}"
            if line:
                say("{}", line)

    say("research daemon for {}: full pass now, fast pass hourly (Ctrl-C stops)", ws.root)
    run_daemon(ws, after_pass=after)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(research_app, name="research")
