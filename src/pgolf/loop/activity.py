"""What the loop of a workspace is doing now, read from its files without disturbing it (`pgolf status`).

A running `pgolf run` holds a flock on `Workspace.run_lock`; each run in flight has its record in
`Workspace.running_dir` (`<run_id>.json`). A run in flight while no loop holds the lock is orphaned: the
next `pgolf run` records it as a crash. Nothing here takes a lock, so asking never blocks or races the loop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pgolf.loop.explain import tail_lines
from pgolf.loop.progress import ProgressTracker

_LOG_TAIL = 200


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _flock_holder(path: Path) -> int | None:
    """The pid holding a flock on `path`, from /proc/locks (None when none, or no /proc/locks to ask).

    Reading the kernel's lock table never takes the lock, so a `pgolf run` starting at that moment is
    never refused because of a `pgolf status`.
    """
    try:
        inode = path.stat().st_ino
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:2b:56789 0 EOF" (a blocked waiter has "->" after the number)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            if int(fields[5].rsplit(":", 1)[1]) == inode:
                return int(fields[4])
        except (ValueError, IndexError):
            continue
    return None


def loop_pid(path: Path) -> int | None:
    """The pid of the `pgolf run` holding the lock file `path`, or None when no loop is running."""
    if not path.is_file():
        return None
    if Path("/proc/locks").is_file():
        return _flock_holder(path)
    try:  # no kernel lock table to read: the pid the loop wrote, when it is alive
        pid = int(path.read_text(encoding="utf-8", errors="replace").strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _progress(run_dir: Path, tracker_info: dict[str, Any]) -> dict[str, Any]:
    """Step, total and train ETA of a run in flight, from the tail of its log."""
    tracker = ProgressTracker(tracker_info.get("tokens_per_step"), tracker_info.get("wallclock_seconds"))
    for line in tail_lines(run_dir / "train.log", _LOG_TAIL):
        tracker.feed(line)
    p = tracker.progress
    try:
        started = (run_dir / "command.txt").stat().st_mtime
    except OSError:
        started = None
    return {"step": p.step or None, "total_steps": p.total_steps or None, "eta_seconds": p.eta_seconds,
            "elapsed_seconds": time.time() - started if started else None, "last_line": p.last_line[:120]}


def loop_activity(ws: Any, *, wallclock_seconds: float | None = None) -> dict[str, Any]:
    """Whether a loop runs (its pid), the runs in flight with step and ETA, and the orphaned ones.

    The inflight records are only read, never repaired: that is the next `pgolf run`'s job.
    """
    from pgolf.loop.inflight import load_all

    pid = loop_pid(ws.run_lock)
    records, problems = load_all(ws, remove_damaged=False)
    inflight: list[dict[str, Any]] = []
    orphaned: list[dict[str, Any]] = []
    for state in records:
        entry = {"run_id": state.run_id, "kind": state.kind, "phase": state.phase, "description": state.description,
                 "slot": state.slot,
                 **_progress(ws.run(Path(state.run_id).name).path, {"wallclock_seconds": wallclock_seconds})}
        if pid is not None:  # the workspace lock makes it the one loop's run
            inflight.append(entry)
        else:
            entry["training_still_running"] = bool(state.child_pid) and pid_alive(state.child_pid)
            orphaned.append(entry)
    return {"running": pid is not None, "pid": pid, "inflight": inflight, "orphaned": orphaned, "damaged": problems}
