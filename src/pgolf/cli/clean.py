"""`pgolf clean`: remove skipped runs' folders, leftover worktrees and old tags, each only on request."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from pgolf.cli._common import console, current_workspace, fmt_bytes, print_json


def clean(
    skipped: Annotated[bool, typer.Option("--skipped", help="Remove the run folders of skipped runs "
                                          "(proposals that changed nothing: no measurement is lost).")] = False,
    worktrees: Annotated[bool, typer.Option("--worktrees", help="Remove the git worktrees pgolf made under "
                                            ".pgolf/ (the slots of a loop that is not running).")] = False,
    tags_older_than: Annotated[int | None, typer.Option(
        "--tags-older-than", metavar="DAYS", min=0, show_default=False,
        help="Delete the pgolf/exp/<run> tags of experiments older than DAYS days (each run folder keeps "
             "its diff.patch).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove what experiments leave behind, each kind only when asked; results.tsv keeps every row.

    Without an option, nothing is removed: it says what each option would remove. Refused while
    `pgolf run` works in the workspace.
    """
    from pgolf.cleanup import apply_clean, plan_clean
    from pgolf.loop.supervisor import workspace_lock

    ws = current_workspace()
    asked = skipped or worktrees or tags_older_than is not None
    with workspace_lock(ws):
        if asked:
            plan = plan_clean(ws, skipped=skipped, worktrees=worktrees, tags_older_than_days=tags_older_than)
        else:
            plan = plan_clean(ws, skipped=True, worktrees=True, tags_older_than_days=30)
        removed = asked and not dry_run
        if removed:
            apply_clean(ws, plan)
    if as_json:
        print_json({**plan.as_dict(), "removed": removed})
        return
    days = 30 if tags_older_than is None else tags_older_than
    kinds = [
        (skipped, "--skipped", f"{len(plan.run_folders)} skipped run folder(s) "
                               f"({fmt_bytes(plan.run_folder_bytes)} bytes)"),
        (worktrees, "--worktrees", f"{len(plan.worktrees)} worktree(s) under .pgolf/"),
        (tags_older_than is not None, f"--tags-older-than {days}", f"{len(plan.tags)} tag(s) older than {days} days"),
    ]
    if not asked:
        console.print("pgolf clean removes nothing unless asked; it would remove:")
        for _, flag, what in kinds:
            console.print(escape(f"  {flag:<22} {what}"))
    else:
        for chosen, _, what in kinds:
            if chosen:
                console.print(escape(f"{'would remove' if dry_run else 'removed'} {what}"))
    console.print("results.tsv keeps every row.")
