"""The Backend protocol every tier implements: run a command at a commit, return its run folder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LOG_NAME = "train.log"
RESULT_NAME = "result.json"


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


class Backend(Protocol):
    """A tier that can execute a RunRequest."""

    name: str

    def run(self, request: RunRequest, on_line: LineCallback | None = None) -> RunOutcome:
        """Execute the request, streaming log lines to `on_line`; never raises for a failed run."""
        ...
