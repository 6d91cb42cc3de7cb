"""`pgolf competitors`: competitors' scores from records folders, the challenge README and PRs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, err_console, fmt_bpb, plain, print_json, say
from pgolf.errors import WorkspaceError
from pgolf.research.competitors import (
    CompetitorEntry,
    CompetitorFile,
    ScanReport,
    competitors_path,
    frontier,
    scan_path,
    sort_entries,
    workspace_competitors,
)
from pgolf.research.store import ResearchStore

competitors_app = typer.Typer(
    help="Competitors' scores: scan records folders or the challenge README, list what is known and "
    "the frontier of each track.\n\nScans are kept in .pgolf/competitors.json.",
    no_args_is_help=True,
)


def _payload(entries: list[CompetitorEntry], report: ScanReport | None = None) -> dict:
    payload = {"entries": [e.as_dict() for e in entries],
               "frontier": {track: e.as_dict() for track, e in frontier(entries).items()}}
    if report is not None:
        payload["skipped"] = [s.as_dict() for s in report.skipped]
        payload["warnings"] = list(report.warnings)
    return payload


def _render(entries: list[CompetitorEntry], limit: int | None) -> None:
    table = Table("track", "val_bpb", "PR / folder", "author", "name", "date", "state", "source")
    shown = entries if limit is None else entries[:limit]
    for e in shown:
        track = "record" if e.track == "track_10min_16mb" else "non-record"
        # Names and authors come from other people's PRs: shown as text, never read as markup.
        table.add_row(track, fmt_bpb(e.val_bpb), plain(e.pr_or_folder), plain(e.author or "-"),
                      plain(e.name), plain(e.date or "-"), plain(e.state or "-"), plain(e.source))
    console.print(table)
    if limit is not None and len(entries) > limit:
        console.print(f"... {len(entries) - limit} more (use --limit 0 to show all)")
    for track, best in frontier(entries).items():
        say(f"frontier {{}}: [bold]{best.val_bpb:.4f}[/] {{}} ({{}})", track, best.name, best.pr_or_folder)


@competitors_app.command("scan")
def scan(
    path: Annotated[Path, typer.Argument(help="A records folder tree (records/<track>/<name>/), a clone "
                                              "of the challenge repository, or the challenge README.md.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: entries and the frontier per track.")] = False,
    save: Annotated[bool, typer.Option(help="Keep the entries in the workspace's .pgolf/competitors.json "
                                            "(when run inside a workspace).")] = True,
) -> None:
    """Read competitors' scores from PATH: submission.json first, then README patterns, then the final
    score in the folder's training logs. Folders with none of these are listed as skipped, with why."""
    report = scan_path(path)
    entries = sort_entries(report.entries)
    saved_to = None
    if save:
        try:
            ws = current_workspace()
        except WorkspaceError:
            ws = None
        if ws is not None:
            CompetitorFile(competitors_path(ws.state_dir)).add(entries)
            saved_to = competitors_path(ws.state_dir)
    if as_json:
        print_json(_payload(entries, report))
        return
    _render(entries, None)
    for warning in report.warnings:
        say("warning: {}", warning, err=True)
    for skipped in report.skipped:
        say("skipped {}: {}", skipped.folder, skipped.reason, err=True)
    skipped_note = f", {len(report.skipped)} folders skipped" if report.skipped else ""
    say(f"{len(entries)} entries{skipped_note}" + (", kept in {}" if saved_to else " (not kept: no workspace here)"),
        *([saved_to] if saved_to else []))


@competitors_app.command("list")
def list_competitors(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: entries and the frontier per track.")] = False,
    track: Annotated[str | None, typer.Option(help="Only this track: record or non-record.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most N rows per table (0: all).", min=0)] = 30,
) -> None:
    """Show every competitor known to this workspace: scans plus PRs in the research store."""
    ws = current_workspace()
    store = ResearchStore(ws.research_db) if ws.research_db.exists() else None
    entries = workspace_competitors(ws.state_dir, store)
    if track:
        wanted = "track_non_record_16mb" if track.replace("-", "_").startswith("non") else "track_10min_16mb"
        entries = [e for e in entries if e.track == wanted]
    if as_json:
        print_json(_payload(entries))
        return
    if not entries:
        err_console.print("no competitors known yet: run `pgolf competitors scan PATH` or `pgolf research fetch`")
        return
    _render(entries, limit or None)
