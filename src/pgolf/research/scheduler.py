"""The research daemon: a full pass every 6 hours, a fast pass (GitHub and Tavily) every hour, one daemon
per workspace (an exclusive lock on `.pgolf/research-daemon.lock`). pgolf.toml is re-read before each pass,
so edits apply without a restart; passes run one at a time on a single worker thread."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pgolf.errors import LockedError
from pgolf.research.fetch import FetchReport, run_fetch
from pgolf.research.store import ResearchStore
from pgolf.workspace import Workspace

FULL_JOB = "research-full"
FAST_JOB = "research-fast"

AfterPass = Callable[[str, FetchReport], None]


def lock_path(ws: Workspace) -> Path:
    """Where the daemon's lock lives."""
    return ws.research_daemon_lock


class DaemonLock:
    """Held while a research daemon runs; a second one for the same workspace raises LockedError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> DaemonLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LockedError(f"a research daemon already runs for this workspace (pid {holder}); "
                              f"lock: {self.path}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def run_pass(ws: Workspace, kind: str, after_pass: AfterPass | None = None) -> FetchReport:
    """One scheduled pass ("full" or "fast") with the workspace's current settings."""
    config = ws.config().research
    report = run_fetch(config, ResearchStore(ws.research_db), fast_only=kind == "fast", workspace_root=ws.root)
    if after_pass:
        after_pass(kind, report)
    return report


def refresh_program(ws: Workspace, report: FetchReport) -> str | None:
    """After a pass that stored something new: grade offline and rewrite program.md; a one-line result."""
    if not any(o.new or o.updated for o in report.outcomes):
        return None
    from pgolf.sections import refresh_program as rewrite  # grading and rendering are needed only here

    injected = rewrite(ws)
    return f"program.md refreshed: {injected.research_items} research items, {injected.graded} newly graded"


def build_scheduler(ws: Workspace, *, after_pass: AfterPass | None = None, blocking: bool = True,
                    now: datetime | None = None) -> Any:
    """An APScheduler scheduler with the full pass (first run now) and the fast pass (first run in an hour)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    config = ws.config().research
    start = now or datetime.now(UTC)
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(executors={"default": ThreadPoolExecutor(max_workers=1)}, timezone=UTC,
                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(run_pass, "interval", hours=config.full_every_hours, args=(ws, "full", after_pass),
                      id=FULL_JOB, name="full research pass", next_run_time=start)
    scheduler.add_job(run_pass, "interval", hours=config.fast_every_hours, args=(ws, "fast", after_pass),
                      id=FAST_JOB, name="fast research pass (GitHub, Tavily)",
                      next_run_time=start + timedelta(hours=config.fast_every_hours))
    return scheduler


def run_daemon(ws: Workspace, *, after_pass: AfterPass | None = None) -> None:
    """Hold the workspace's daemon lock and run the schedule until interrupted."""
    with DaemonLock(lock_path(ws)):
        scheduler = build_scheduler(ws, after_pass=after_pass)
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            scheduler.shutdown(wait=False)
