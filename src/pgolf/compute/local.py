"""The local tier: run the script of a commit in its run folder as a subprocess on this machine."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pgolf import git
from pgolf.compute.base import (
    LOG_NAME,
    RESULT_NAME,
    LineCallback,
    RunOutcome,
    RunRequest,
    limit_reached,
    pump_lines,
    write_command_files,
)
from pgolf.compute.launcher import pidfd, wait_readable

_KILL_GRACE_SECONDS = 5.0  # more than the launcher's own grace, so it can end the tree first
_LAUNCHER_GRACE_SECONDS = 4.0
_POLL_SECONDS = 0.1
# Every command runs under this launcher, which ends the command's whole process tree with it.
LAUNCHER = Path(__file__).with_name("launcher.py")


def export_commit(workspace_root: Path, commit: str, run_dir: Path) -> None:
    """Copy every tracked file of `commit` into `run_dir` (the script and anything it imports)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data = subprocess.run(["git", "archive", "--format=tar", commit], cwd=workspace_root,
                          capture_output=True, check=False)
    if data.returncode != 0:
        raise git.GitError(f"git archive {commit[:8]}: {data.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(run_dir, filter="data")


def command_argv(command: str) -> list[str]:
    """The command as argv; a leading `python`/`python3` means this interpreter (the one with torch)."""
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def kill_group(pid: int, grace_seconds: float | None = None, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL it if it is still there after the grace.

    `leader`: the group's leader when it is our own child. It is reaped as it ends: its zombie would
    otherwise keep the group alive, and every stop would wait out the whole grace.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + (_KILL_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def processes_in(folder: Path) -> list[int]:
    """Pids of the processes whose working directory is `folder` or below it (Linux /proc)."""
    folder = Path(folder).resolve()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(entry.name))
    return found


def stop_leftovers(run_dir: Path, launcher_pid: int = 0) -> int:
    """After pgolf died: end its launcher's tree, then every process still working in the run folder.

    The folder is the proof of ownership (a reused pid elsewhere is never touched). Returns how many
    processes were still there.
    """
    left = processes_in(run_dir)
    if launcher_pid and launcher_pid in left:
        kill_group(launcher_pid, grace_seconds=_LAUNCHER_GRACE_SECONDS)
    for _ in range(50):
        alive = processes_in(run_dir)
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return len(left)


class LocalBackend:
    """Runs `tiers.local.command` in `.pgolf/runs/<run_id>/` under a wallclock limit and a hard timeout."""

    name = "local"

    def __init__(self, on_start: Callable[[int], None] | None = None) -> None:
        # Told the child's pid as soon as it exists, so a supervisor can record it for crash recovery.
        self.on_start = on_start

    def _environment(self, request: RunRequest) -> dict[str, str]:
        overrides = {"MAX_WALLCLOCK_SECONDS": f"{request.wallclock_seconds:g}", **request.env,
                     "PGOLF_RESULT_JSON": str(request.run_dir / RESULT_NAME), "PYTHONUNBUFFERED": "1"}
        return {**os.environ, **overrides}

    def _write_command(self, request: RunRequest, argv: list[str]) -> None:
        # Only pgolf's overrides are written: the inherited environment may hold secrets.
        overrides = {"MAX_WALLCLOCK_SECONDS": f"{request.wallclock_seconds:g}", **request.env}
        lines = [f"cd {shlex.quote(str(request.run_dir))}"]
        lines += [f"{k}={shlex.quote(v)} \\" for k, v in sorted(overrides.items())]
        lines.append(shlex.join(argv))
        write_command_files(request.run_dir, f"run {request.run_id} at commit {request.commit}", lines, overrides)

    def run(self, request: RunRequest, on_line: LineCallback | None = None) -> RunOutcome:
        """Export the commit, start the command in its own process group, stream its log, stop it at limits."""
        run_dir = request.run_dir
        export_commit(request.workspace_root, request.commit, run_dir)
        argv = command_argv(request.command)
        self._write_command(request, argv)
        outcome = RunOutcome(run_dir=run_dir, returncode=None, started_at=time.time())
        with open(run_dir / LOG_NAME, "w", encoding="utf-8") as log:
            try:
                # Its own session: a Ctrl-C in pgolf's terminal never reaches the training.
                proc = subprocess.Popen(
                    [sys.executable, "-S", str(LAUNCHER), "--", *argv], cwd=run_dir,
                    env=self._environment(request), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )
            except OSError as err:
                outcome.error = f"cannot start {argv[0]}: {err.strerror or err}"
                log.write(outcome.error + "\n")
                outcome.finished_at = time.time()
                return outcome
            if self.on_start:
                self.on_start(proc.pid)
            reader = threading.Thread(target=pump_lines, args=(proc.stdout, log, on_line), daemon=True)
            reader.start()
            self._wait(proc, request, outcome)
            reader.join(timeout=10)
        outcome.returncode = proc.returncode
        outcome.finished_at = time.time()
        return outcome

    def _wait(self, proc: subprocess.Popen[bytes], request: RunRequest, outcome: RunOutcome) -> None:
        """Wait until the process exits, the hard timeout passes, or the caller cancels (the exit is seen
        at once through its pidfd; the limits are checked every 0.1 s)."""
        deadline = time.monotonic() + request.timeout_seconds
        exit_fd = pidfd(proc.pid)
        try:
            while True:
                wait_readable([exit_fd] if exit_fd is not None else [], _POLL_SECONDS)
                if proc.poll() is not None:
                    return
                if limit_reached(request, deadline, outcome, time.monotonic()):
                    kill_group(proc.pid, leader=proc)
                    proc.wait()
                    return
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
