"""An external coding agent (`claude -p …`, `codex exec …`), one fresh process per experiment.

The agent gets a compact handoff file and may change only train_gpt.py; pgolf commits, runs and
records. Anything else it touches among pgolf's own files is put back.
"""

from __future__ import annotations

import collections
import os
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.compute.local import kill_group
from pgolf.compute.runpod import API_KEY_ENV as RUNPOD_KEY_ENV
from pgolf.config import PgolfConfig
from pgolf.errors import ConfigError
from pgolf.loop.breaker import TAIL_LINES, ProposerFailure
from pgolf.loop.handoff import build_handoff
from pgolf.loop.proposers.base import Proposal, ProposalContext
from pgolf.program import read_sections
from pgolf.workspace import TRAIN_SCRIPT, Workspace

HANDOFF_NAME = "handoff.md"
AGENT_LOG = "agent.log"
DESCRIPTION_NAME = "description.txt"
_POLL_SECONDS = 0.2
# Secrets for paid services pgolf drives itself: an agent has no business starting pods.
_WITHHELD_KEYS = frozenset({RUNPOD_KEY_ENV})
# A first word the shell runs itself, or one it expands: what it will run is not known before it runs.
_SHELL_WORDS = frozenset({"cd", "exec", "if", "for", "while", "case", "{", "(", "!", "time", "nohup", ".",
                          "source", "command", "builtin", "eval"})


def _program(command: str) -> str:
    """The program a shell command line runs first: its first word after VAR=value (and `env`) prefixes."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    while words and "=" in words[0] and not words[0].startswith("="):
        words.pop(0)
    if words and words[0] == "env":
        words.pop(0)
        while words and (words[0].startswith("-") or "=" in words[0]):
            words.pop(0)
    return words[0] if words else ""


def check_agent_command(command: str, root: Path) -> None:
    """Refuse an agent command whose program does not exist, before the first experiment.

    Only the first program is checked, statically (PATH lookup, or the file for a path): nothing runs.
    """
    program = _program(command)
    if not program or program in _SHELL_WORDS or any(c in program for c in "$`*?"):
        return
    shown = command if len(command) <= 60 else command[:57] + "…"
    fix = "install it or change [proposer] agent_command in pgolf.toml"
    if "/" in program:
        path = Path(program).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ConfigError(f"agent_command {shown!r}: {program} is not an executable file; {fix}")
    elif shutil.which(program) is None:
        raise ConfigError(f"agent_command {shown!r}: {program} is not installed (not found on PATH); {fix}")


def _tee_stderr(stream: IO[str], log: IO[str], tail: collections.deque[str]) -> None:
    """Copy the agent's stderr into its log line by line, keeping the last lines for the failure."""
    try:
        for line in stream:
            if line.strip():
                tail.append(line.rstrip("\n")[:300])
            log.write(line)
            log.flush()
    except (OSError, ValueError):
        pass  # the log was closed: a grandchild kept stderr open after the agent was done with



def _agent_environment() -> dict[str, str]:
    """pgolf's environment less the keys pgolf itself spends money with (the agent keeps its own)."""
    return {name: value for name, value in os.environ.items() if name not in _WITHHELD_KEYS}


def _protected_files(ws: Workspace) -> list[Path]:
    """Every file the agent must not change: pgolf's records and the tracked files besides the script."""
    tracked = [ws.root / name for name in git.git(ws.root, "ls-files", "-z").split("\0") if name and name != TRAIN_SCRIPT]
    return [ws.results_tsv, ws.budget_json, *tracked]


def _protected_files_in(checkout: Path) -> list[Path]:
    """The tracked files besides the script in a slot's worktree (the agent works there)."""
    return [checkout / name for name in git.git(checkout, "ls-files", "-z").split("\0") if name and name != TRAIN_SCRIPT]


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


def _restore(snapshot: dict[Path, bytes | None]) -> list[str]:
    """Put back every protected file that changed; return the names of those that did."""
    touched = []
    for path, data in snapshot.items():
        now = path.read_bytes() if path.is_file() else None
        if now != data:
            touched.append(path.name)
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
    return touched


class AgentProposer:
    """Runs `proposer.agent_command` in the workspace with a timeout."""

    kind = "agent"

    def __init__(self, ws: Workspace, config: PgolfConfig) -> None:
        command = config.proposer.agent_command
        if not command:
            raise ConfigError("the agent proposer needs proposer.agent_command in pgolf.toml")
        check_agent_command(command, ws.root)
        self.ws = ws
        self.command = command
        self.timeout = config.proposer.agent_timeout_seconds

    def _run_agent(self, ctx: ProposalContext, env: dict[str, str]) -> ProposerFailure | None:
        """Run the command; None when it finished well, else the failure with its stderr's last lines."""
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        # Both streams append to one log (O_APPEND), so stdout and stderr interleave as they came.
        with open(ctx.run_dir / AGENT_LOG, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(self.command, shell=True, cwd=ctx.root, env=env, stdout=log,
                                    stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                    errors="replace", start_new_session=True)
            assert proc.stderr is not None
            reader = threading.Thread(target=_tee_stderr, args=(proc.stderr, log, tail), daemon=True)
            reader.start()
            deadline = time.monotonic() + self.timeout
            cause = ""
            while proc.poll() is None:
                if ctx.cancel.is_set() or time.monotonic() > deadline:
                    kill_group(proc.pid, leader=proc)
                    proc.wait()
                    cause = "interrupted" if ctx.cancel.is_set() else f"timed out after {self.timeout:.0f} s"
                    break
                time.sleep(_POLL_SECONDS)
            reader.join(timeout=5)  # a grandchild holding stderr open must not hang the loop
        if not cause and proc.returncode == 0:
            return None
        return ProposerFailure(cause or f"exited with code {proc.returncode}", proc.returncode, tuple(tail))

    def _undo_commits(self, root: Path, base: str) -> bool:
        """If the agent committed, move its checkout back to `base`, keeping its changes in the work tree."""
        if git.head_commit(root) == base:
            return False
        git.git(root, "reset", "-q", "--mixed", base)
        return True

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Write the handoff, run the agent once, and report what it changed in train_gpt.py."""
        research = read_sections(self.ws.program_md.read_text(encoding="utf-8")).get("RESEARCH", "") \
            if self.ws.program_md.exists() else ""
        description_file = ctx.run_dir / DESCRIPTION_NAME
        handoff = build_handoff(ctx.rows, ctx.noise, ctx.budget.status(), research, others=ctx.others,
                                description_file=str(description_file))
        handoff_path = ctx.run_dir / HANDOFF_NAME
        atomic_write_text(handoff_path, handoff)
        env = {**_agent_environment(), "PGOLF_HANDOFF": str(handoff_path), "PGOLF_DESCRIPTION_FILE": str(description_file),
               "PGOLF_WORKSPACE": str(self.ws.root)}
        protected = _snapshot(_protected_files(self.ws) + _protected_files_in(ctx.root))
        failure = self._run_agent(ctx, env)
        committed = self._undo_commits(ctx.root, ctx.best_commit)
        restored = _restore(protected)
        notes = []
        if committed:
            notes.append("pgolf undid the agent's own commits")
        if restored:
            notes.append(f"pgolf restored {', '.join(restored)} (only {TRAIN_SCRIPT} may change)")
        changed = bool(git.git(ctx.root, "status", "--porcelain", "--", TRAIN_SCRIPT))
        description = description_file.read_text(encoding="utf-8").strip().splitlines()[:1] \
            if description_file.exists() else []
        text = "agent: " + (description[0] if description else "no description given")
        if notes:
            text += " [" + "; ".join(notes) + "]"
        if failure is not None:
            git.git(ctx.root, "checkout", "-q", "--", TRAIN_SCRIPT)
            if failure.cause == "interrupted":
                return Proposal("agent interrupted; its change was not run", changed=False)
            return Proposal(f"agent failed: {failure.summary()}", changed=False, failure=failure)
        if not changed:
            return Proposal(f"agent made no change to {TRAIN_SCRIPT}", changed=False)
        return Proposal(text)

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        """The agent learns from the ledger through the next handoff; nothing to do here."""
