"""Thin helpers over the git command line, used by workspaces and the experiment loop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pgolf.errors import PgolfError

# Commits made by pgolf need an identity even on machines where none is configured; where the user has
# one (user.name and user.email in any git config, or GIT_* variables), their commits are theirs.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "pgolf",
    "GIT_AUTHOR_EMAIL": "pgolf@localhost",
    "GIT_COMMITTER_NAME": "pgolf",
    "GIT_COMMITTER_EMAIL": "pgolf@localhost",
}


# Subcommands that may write a commit (and so need an identity).
_COMMITTING = frozenset({"commit", "merge", "rebase", "cherry-pick", "revert", "tag", "am", "stash"})


class GitError(PgolfError):
    """A git command failed; the message carries its stderr."""


def fallback_identity(root: Path) -> dict[str, str]:
    """pgolf's identity for the parts (author, committer; name, email) git cannot find configured.

    One `git config` call; a caller that commits many times (the loop) looks it up once and passes it on.
    """
    proc = subprocess.run(["git", "config", "--get-regexp", r"^user\.(name|email)$"],
                          cwd=root if root.is_dir() else None, capture_output=True, text=True)
    found = set()
    for line in proc.stdout.splitlines():  # "user.name Ada Lovelace"; a key set to "" counts as missing
        key, _, value = line.partition(" ")
        if value.strip():
            found.add(key.removeprefix("user.").upper())
    return {k: v for k, v in _IDENTITY.items() if k.rsplit("_", 1)[1] not in found}


def git(root: Path, *args: str, check: bool = True, input: str | None = None,
        identity: dict[str, str] | None = None) -> str:
    """Run `git args...` in `root` and return stdout (stripped). A committing command gets `identity`
    (default: looked up now) for whatever of the user's own identity is missing."""
    if args and args[0] in _COMMITTING:
        fallback = fallback_identity(root) if identity is None else identity
    else:
        fallback = {}
    env = {**fallback, **os.environ}
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


def current_branch(root: Path) -> str | None:
    """The branch checked out in `root`, or None (a detached HEAD, or not a repository)."""
    name = git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return name or None


def head_commit(root: Path, short: bool = False) -> str:
    """The commit HEAD points at."""
    return git(root, "rev-parse", *(["--short=8"] if short else []), "HEAD")
