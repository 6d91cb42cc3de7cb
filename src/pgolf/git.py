"""Thin helpers over the git command line, used by workspaces and the experiment loop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pgolf.errors import PgolfError

# Commits made by pgolf need an identity even on machines where none is configured.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "pgolf",
    "GIT_AUTHOR_EMAIL": "pgolf@localhost",
    "GIT_COMMITTER_NAME": "pgolf",
    "GIT_COMMITTER_EMAIL": "pgolf@localhost",
}


class GitError(PgolfError):
    """A git command failed; the message carries its stderr."""


def git(root: Path, *args: str, check: bool = True, input: str | None = None) -> str:
    """Run `git args...` in `root` and return stdout (stripped)."""
    env = {**_IDENTITY, **os.environ}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, input=input, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args[:2])}: {detail[-1] if detail else 'failed'}")
    return proc.stdout.strip()


def is_repo(root: Path) -> bool:
    """True when `root` is inside a git work tree."""
    return git(root, "rev-parse", "--is-inside-work-tree", check=False) == "true"


def head_commit(root: Path, short: bool = False) -> str:
    """The commit HEAD points at."""
    return git(root, "rev-parse", *(["--short=8"] if short else []), "HEAD")
