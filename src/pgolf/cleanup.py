"""What `pgolf clean` removes, on request: the folders of skipped runs, pgolf's leftover git worktrees,
and old `pgolf/exp/<run>` tags. results.tsv is never touched: every row stays.

Everything happens under the workspace's run lock, so nothing is removed while `pgolf run` works and no
loop starts half-way through a clean.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf import git
from pgolf.loop.refs import TAG_PREFIX
from pgolf.status import Status
from pgolf.workspace import Workspace


@dataclass
class CleanPlan:
    """What a clean removes (or, in a dry run, would remove)."""

    run_folders: list[str] = field(default_factory=list)
    run_folder_bytes: int = 0
    worktrees: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.run_folders or self.worktrees or self.tags)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _skipped_folders(ws: Workspace) -> list[Path]:
    runs = ws.runs_dir.resolve()
    found = []
    for row in ws.ledger().rows():
        if row.status != Status.SKIPPED or not row.run_id:  # a skipped proposal measured nothing
            continue
        folder = ws.run_dir(row.run_id).resolve()
        if folder.parent == runs and folder.is_dir():  # a run id never names a folder elsewhere
            found.append(folder)
    return found


def _pgolf_worktrees(ws: Workspace) -> list[Path]:
    """Worktrees of the workspace's repository that pgolf made (they live under .pgolf/)."""
    listing = git.git(ws.root, "worktree", "list", "--porcelain", check=False)
    state = ws.state_dir.resolve()
    paths = [Path(line.removeprefix("worktree ")) for line in listing.splitlines() if line.startswith("worktree ")]
    return [p for p in paths if p.resolve().is_relative_to(state)]


def _old_tags(ws: Workspace, days: float, now: float) -> list[str]:
    listing = git.git(ws.root, "for-each-ref", "--format=%(refname:strip=2)\t%(creatordate:unix)",
                      f"refs/tags/{TAG_PREFIX}", check=False)
    cutoff = now - days * 86400
    old = []
    for line in listing.splitlines():
        name, _, stamp = line.partition("\t")
        if stamp.isdigit() and int(stamp) < cutoff:
            old.append(name)
    return old


def plan_clean(ws: Workspace, *, skipped: bool = False, worktrees: bool = False,
               tags_older_than_days: float | None = None, now: float | None = None) -> CleanPlan:
    """What the chosen kinds of clean would remove now."""
    plan = CleanPlan()
    if skipped:
        folders = _skipped_folders(ws)
        plan.run_folders = [f.name for f in folders]
        plan.run_folder_bytes = sum(_size(f) for f in folders)
    if worktrees:
        plan.worktrees = [str(p) for p in _pgolf_worktrees(ws)]
    if tags_older_than_days is not None:
        plan.tags = _old_tags(ws, tags_older_than_days, time.time() if now is None else now)
    return plan


def apply_clean(ws: Workspace, plan: CleanPlan) -> None:
    """Remove what `plan` names; call it under the workspace's run lock."""
    for run_id in plan.run_folders:
        shutil.rmtree(ws.run_dir(run_id), ignore_errors=True)
    for path in plan.worktrees:
        git.git(ws.root, "worktree", "remove", "--force", path, check=False)
        shutil.rmtree(path, ignore_errors=True)  # a worktree git no longer knows
    if plan.worktrees:
        git.git(ws.root, "worktree", "prune")
    if plan.tags:
        git.git(ws.root, "tag", "-d", *plan.tags)
