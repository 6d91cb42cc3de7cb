"""The loop's git policy: pgolf/best, pgolf/explore, the pgolf/exp/<run> tags, and the slots' worktrees.

- `pgolf/best` is the best measured commit; only a keep moves it.
- `pgolf/explore` is the branch of the workspace's own checkout; it always equals `pgolf/best` once a
  run is recorded, so the user's train_gpt.py is the best script.
- Every proposal is committed in a slot's worktree (`.pgolf/slots/slotK`, detached at the best), as a
  child of the best it was proposed against; a run that is not kept is tagged `pgolf/exp/<run_id>`, so
  its diff stays reachable.

Ref moves are serialised by one lock: slots record their runs in any order.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from pgolf import git
from pgolf.errors import WorkspaceError
from pgolf.status import Status
from pgolf.workspace import TRAIN_SCRIPT, Workspace

BEST_BRANCH = "pgolf/best"
EXPLORE_BRANCH = "pgolf/explore"
TAG_PREFIX = "pgolf/exp/"
_SCRIPTS_KEPT = 64


class Refs:
    """The branches and tags of one workspace, moved under one lock."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lock = threading.RLock()
        self._best = ""  # pgolf/best as this loop last read or moved it (it alone moves it while it runs)
        # Looked up once per loop: every proposal is a commit, and the lookup is a git process of its own.
        self._identity: dict[str, str] | None = None
        self._scripts: dict[str, str] = {}  # train_gpt.py by commit (a commit never changes)

    def git(self, *args: str, check: bool = True, cwd: Path | None = None) -> str:
        if args and args[0] == "commit" and self._identity is None:
            self._identity = git.fallback_identity(self.ws.root)
        return git.git(cwd or self.ws.root, *args, check=check, identity=self._identity)

    def script(self, commit: str) -> str:
        """train_gpt.py as committed in `commit`."""
        with self.lock:  # slots read it from their own threads
            if commit not in self._scripts:
                if len(self._scripts) >= _SCRIPTS_KEPT:
                    self._scripts.pop(next(iter(self._scripts)))  # the oldest
                self._scripts[commit] = self.git("show", f"{commit}:{TRAIN_SCRIPT}")
            return self._scripts[commit]

    def best_commit(self) -> str:
        """The commit pgolf/best points at."""
        with self.lock:
            if not self._best:
                self._best = self.git("rev-parse", BEST_BRANCH)
            return self._best

    def _has_branch(self, name: str) -> bool:
        return bool(self.git("rev-parse", "--verify", "-q", f"refs/heads/{name}", check=False))

    def prepare(self) -> None:
        """Create pgolf/best and pgolf/explore when missing and check out pgolf/explore at the best."""
        root = self.ws.root
        if not git.is_repo(root):
            raise WorkspaceError(f"{root} is not a git repository; run `pgolf init` there first")
        if self.git("status", "--porcelain", "--", TRAIN_SCRIPT):
            raise WorkspaceError(f"{TRAIN_SCRIPT} has uncommitted changes; commit them (they become the "
                                 "starting point) or discard them before `pgolf run`")
        self._best = ""
        if not self._has_branch(BEST_BRANCH):
            self.git("branch", BEST_BRANCH, "HEAD")
        if not self._has_branch(EXPLORE_BRANCH):
            self.git("branch", EXPLORE_BRANCH, BEST_BRANCH)
        self.git("checkout", "-q", EXPLORE_BRANCH)
        explore, best = git.head_commit(root), self.best_commit()
        if explore != best:
            if self.git("rev-list", "--count", f"{best}..{explore}") != "0":
                raise WorkspaceError(f"{EXPLORE_BRANCH} has commits that are not on {BEST_BRANCH}; merge "
                                     f"them into {BEST_BRANCH} or delete them, then run again")
            self.reset_explore()  # explore is only behind (best was moved by hand): catch up

    def reset_explore(self) -> None:
        """Point pgolf/explore at the best and restore its script; other files are left as they are."""
        with self.lock:
            if self.git("rev-parse", "--abbrev-ref", "HEAD") != EXPLORE_BRANCH:
                self.git("checkout", "-q", EXPLORE_BRANCH)  # the reset must move explore, never another branch
            self.git("reset", "-q", "--mixed", BEST_BRANCH)
            self.git("checkout", "-q", "--", TRAIN_SCRIPT)

    def settle(self, *, run_id: str, commit: str, parent_commit: str, status: str) -> None:
        """After the run's row is written: a keep advances pgolf/best, any other run of a proposal is
        tagged; pgolf/explore follows the best. Idempotent (recovery may repeat it)."""
        with self.lock:
            if commit and commit != parent_commit:
                if status == Status.KEEP:
                    self.git("branch", "-f", BEST_BRANCH, commit)
                    self._best = commit
                elif status != Status.REPLICATE:  # a candidate still being replicated is tagged when judged
                    # update-ref: one process, and idempotent (recovery may tag the same run again).
                    self.git("update-ref", f"refs/tags/{TAG_PREFIX}{run_id}", commit)
            if status == Status.KEEP or self.git("rev-parse", "HEAD") != self.best_commit():
                self.reset_explore()  # proposals never touch this checkout: only a keep (or recovery) moves it

    # -- slots -------------------------------------------------------------------------------------

    def slot_worktree(self, index: int, commit: str) -> Path:
        """Slot `index`'s worktree, detached at `commit` with a clean train_gpt.py (created when missing)."""
        path = self.ws.slot(index)
        with self.lock:
            if not (path / ".git").exists():
                if path.exists():
                    shutil.rmtree(path)  # a half-made worktree from a killed run
                self.git("worktree", "prune")
                path.parent.mkdir(parents=True, exist_ok=True)
                self.git("worktree", "add", "-q", "--detach", "--force", str(path), commit)
                return path
        self.git("reset", "-q", "--hard", commit, cwd=path)  # slots are always detached: this moves HEAD too
        self.git("clean", "-q", "-f", "-d", "-x", cwd=path)  # whatever the last proposer left in the slot
        return path

    def commit_slot(self, path: Path, message: str) -> str:
        """Commit the slot's train_gpt.py (detached: no branch moves) and return the commit."""
        self.git("commit", "-q", "--no-verify", "-m", message, "--", TRAIN_SCRIPT, cwd=path)
        return git.head_commit(path)
