"""The Backend protocol every tier implements: run a command at a commit, return its run folder."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from pgolf.atomic import atomic_write_text

LOG_NAME = "train.log"
RESULT_NAME = "result.json"
COMMAND_NAME = "command.txt"
ENV_NAME = "env.json"


@dataclass
class RunRequest:
    """One run to execute: what, where, with which environment and limits."""

    run_id: str
    workspace_root: Path
    commit: str
    command: str
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    wallclock_seconds: float = 600.0
    timeout_seconds: float = 1800.0
    gpus: int = 1
    # Set by the caller to stop the run early; the backend then returns with interrupted=True.
    cancel: threading.Event | None = None
    reservation_id: str = ""  # the budget reservation a paid run settles (remote tiers)
    # Wall-clock time (time.time()) by which everything the run started must have stopped, whatever
    # phase it is in; a paid run's reservation covers up to here (None: only timeout_seconds applies).
    deadline: float | None = None

    def seconds_left(self, cap: float) -> float:
        """`cap`, or less when the request's deadline is nearer (never below zero)."""
        if self.deadline is None:
            return cap
        return max(min(cap, self.deadline - time.time()), 0.0)


@dataclass
class RunOutcome:
    """What came back: the run folder with its log and (when written) result.json."""

    run_dir: Path
    returncode: int | None
    timed_out: bool = False
    interrupted: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    cost_usd: float = 0.0
    error: str = ""

    def add_error(self, problem: str) -> None:
        """Add a problem to `error` without hiding the one already there."""
        self.error = f"{self.error}; {problem}" if self.error else problem

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def result_path(self) -> Path:
        return self.run_dir / RESULT_NAME

    @property
    def seconds(self) -> float:
        return max(self.finished_at - self.started_at, 0.0)


LineCallback = Callable[[str], None]


def limit_reached(request: RunRequest, deadline: float, outcome: RunOutcome, now: float) -> bool:
    """True when the caller cancelled or the hard deadline passed; marks which on the outcome."""
    if request.cancel is not None and request.cancel.is_set():
        outcome.interrupted = True
    elif now > deadline:
        outcome.timed_out = True
    else:
        return False
    return True


def write_command_files(run_dir: Path, header: str, command_lines: Iterable[str], env: dict[str, str]) -> None:
    """Record how the run was started: command.txt (header, then the lines) and env.json (`env`)."""
    atomic_write_text(run_dir / COMMAND_NAME, "\n".join([f"# {header}", *command_lines]) + "\n")
    atomic_write_text(run_dir / ENV_NAME, json.dumps(env, indent=1, sort_keys=True) + "\n")


def pump_lines(stream: Iterable[bytes], log: TextIO, on_line: LineCallback | None) -> None:
    """Copy a child's output to the log, line by line, flushed, and to the callback."""
    for raw in stream:
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        log.write(text + "\n")
        log.flush()
        if on_line is not None:
            with contextlib.suppress(Exception):  # a display problem must never lose the log
                on_line(text)


class Backend(Protocol):
    """A tier that can execute a RunRequest."""

    name: str

    def run(self, request: RunRequest, on_line: LineCallback | None = None) -> RunOutcome:
        """Execute the request, streaming log lines to `on_line`; never raises for a failed run."""
        ...
