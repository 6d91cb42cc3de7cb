"""`pgolf run` as a real process: kill -9 mid-run and recovery, Ctrl-C, the lock against a second loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loop_fixtures import in_flight, make_workspace
from pgolf import git
from pgolf.loop.refs import TAG_PREFIX
from pgolf.status import HAS_SCORE
from pgolf.workspace import Workspace

pytestmark = pytest.mark.slow


def _pgolf(ws: Workspace, *args: str, **kw) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "pgolf", "-w", str(ws.root), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for_children(ws: Workspace, count: int = 1, timeout: float = 60) -> list[dict]:
    """The in-flight states once `count` experiments' training processes have started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = [s for s in in_flight(ws) if s.get("kind") == "experiment" and s.get("child_pid")]
        if len(started) >= count:
            return started
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} experiments started")


def _wait_for_child(ws: Workspace, timeout: float = 60) -> dict:
    return _wait_for_children(ws, 1, timeout)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running either.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _held_workspace(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace whose noise floor is measured; training holds while the returned file exists."""
    hold = tmp_path / "hold"
    ws = make_workspace(tmp_path / "ws", local_env=f'FAKE_HOLD_FILE = "{hold}"')
    proc = _pgolf(ws, "run", "-n", "1")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    hold.touch()
    return ws, hold


def test_ctrl_c_finishes_the_run_then_twice_aborts(tmp_path: Path):
    ws, hold = _held_workspace(tmp_path)
    proc = _pgolf(ws, "run", "-n", "5")
    first = _wait_for_child(ws)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    hold.unlink()  # the run in flight finishes normally...
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped by the user" in out
    rows = ws.ledger().rows()
    mine = [r for r in rows if r.run_id == first["run_id"]]
    assert mine and mine[0].status in HAS_SCORE and rows[-1].run_id == first["run_id"]  # ...and no more

    hold.touch()
    proc = _pgolf(ws, "run", "-n", "5")
    second = _wait_for_child(ws)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    row = ws.ledger().rows()[-1]
    assert row.run_id == second["run_id"] and row.status == "aborted"
    assert not _alive(second["child_pid"])
    assert git.git(ws.root, "rev-parse", f"{TAG_PREFIX}{row.run_id}^{{commit}}") == second["commit"]


def test_a_closed_stdout_never_stops_the_loop(tmp_path: Path):
    """`pgolf run | head -1`: the reader goes away; the loop finishes its runs and records them."""
    ws = make_workspace(tmp_path / "ws")
    proc = _pgolf(ws, "run", "-n", "2")
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # head -1 exits
    assert proc.wait(timeout=120) == 0
    rows = ws.ledger().rows()
    assert len([r for r in rows if r.description.startswith("tpe: ")]) == 2
    assert in_flight(ws) == []
    assert "stdout was closed" in ws.loop_log.read_text()


def test_one_ctrl_c_through_a_dead_pipe_finishes_the_run(tmp_path: Path):
    """`pgolf run | tee log`, then Ctrl-C: tee dies with the pipe, pgolf finishes the run in flight."""
    ws, hold = _held_workspace(tmp_path)
    proc = _pgolf(ws, "run", "-n", "5")
    first = _wait_for_child(ws)
    assert proc.stdout is not None
    proc.stdout.close()  # the terminal's SIGINT killed tee
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert _alive(first["child_pid"])  # the training never saw the Ctrl-C
    hold.unlink()
    assert proc.wait(timeout=60) == 0
    row = next(r for r in ws.ledger().rows() if r.run_id == first["run_id"])
    assert row.status in HAS_SCORE and in_flight(ws) == []
