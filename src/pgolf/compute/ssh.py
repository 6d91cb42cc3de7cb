"""The SSH tier: rsync a commit's files to any host, run the command there, stream the log back.

The remote command runs as the leader of its own process group (sshd starts every session with
`setsid`), so killing that group on timeout or interruption also stops torchrun's workers. The group
id is written to `pgolf.pid` in the remote run folder before the command starts.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pgolf import git
from pgolf.compute.base import (
    LOG_NAME,
    LineCallback,
    RunOutcome,
    RunRequest,
    limit_reached,
    pump_lines,
    write_command_files,
)
from pgolf.compute.pods import cleanup_on_exit
from pgolf.errors import PgolfError

PID_FILE = "pgolf.pid"
_KILL_GRACE_SECONDS = 10.0
# The longest kill_remote may take (the grace, then connecting and the KILL): a run stops training this
# long before its request's deadline, so that the kill, too, ends by the deadline.
STOP_SECONDS = _KILL_GRACE_SECONDS + 60.0
_COPY_SECONDS = 600.0  # the longest one rsync (staging or fetching) may take
_POLL_SECONDS = 0.2
_CALL_ERRORS = (subprocess.SubprocessError, OSError)


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect: host, user, port, key, known-hosts file."""

    host: str
    user: str | None = None
    port: int = 22
    identity_file: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: int = 15
    extra_options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh_args(self) -> list[str]:
        """The ssh command line up to (not including) the destination."""
        args = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=30",
                "-o", "StrictHostKeyChecking=accept-new"]
        if self.known_hosts is not None:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity_file is not None:
            args += ["-i", str(self.identity_file), "-o", "IdentitiesOnly=yes"]
        for option in self.extra_options:
            args += ["-o", option]
        return args

    def ssh(self, remote_command: str) -> list[str]:
        """argv that runs `remote_command` on the host."""
        return [*self.ssh_args(), self.destination, remote_command]

    def rsync_shell(self) -> str:
        """The `-e` argument that makes rsync use these ssh options."""
        return shlex.join(self.ssh_args())


@dataclass(frozen=True)
class RemoteLayout:
    """Where runs go on the host and, when data is synced, which local paths go where."""

    remote_dir: str
    data_uploads: tuple[tuple[Path, str], ...] = ()  # (local path, remote path)


def remote_command(run_dir: str, command: str, env: dict[str, str]) -> str:
    """The shell line that records the process group, sets the environment and runs `command`."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    return (
        f"cd {shlex.quote(run_dir)} && echo $$ > {PID_FILE} && "
        f"export PGOLF_RESULT_JSON=\"$PWD/result.json\" {exports} && exec sh -c {shlex.quote(command)} 2>&1"
    )


def _kill_command(run_dir: str, sig: str) -> str:
    pid = f"$(cat {shlex.quote(run_dir)}/{PID_FILE} 2>/dev/null)"
    return f'p={pid}; [ -n "$p" ] && kill -{sig} -- -"$p" 2>/dev/null; true'


class SshBackend:
    """Runs a RunRequest on an SSH host: stage, run with a time limit, fetch results."""

    name = "ssh"

    def __init__(self, target: SshTarget, layout: RemoteLayout, fetch: tuple[str, ...] = ("result.json",),
                 name: str = "ssh") -> None:
        self.target = target
        self.layout = layout
        self.fetch = fetch
        self.name = name

    # -- steps -----------------------------------------------------------------------------------

    def _check(self, argv: list[str], what: str, timeout: float) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(f"{what} failed ({proc.returncode}): {detail[-1] if detail else ''}")

    def _rsync_to(self, source: str, dest: str, what: str, request: RunRequest) -> None:
        parent = shlex.quote(os.path.dirname(dest.rstrip("/")) or ".")
        self._check(["rsync", "-az", "-e", self.target.rsync_shell(),
                     f"--rsync-path=mkdir -p {parent} && rsync",
                     source, f"{self.target.destination}:{dest}"], what, request.seconds_left(_COPY_SECONDS))

    @staticmethod
    def remote_run_of(remote_dir: str, run_id: str) -> str:
        """The run's folder on the host, below `remote_dir`."""
        return f"{remote_dir.rstrip('/')}/{run_id}"

    def stage(self, request: RunRequest, remote_run: str) -> None:
        """Copy the commit's files (not the working tree) and any requested data to the host."""
        with tempfile.TemporaryDirectory(prefix="pgolf-stage-") as tmp:
            archive = Path(tmp) / "commit.tar"
            git.git(request.workspace_root, "archive", "--format=tar", "-o", str(archive), request.commit)
            tree = Path(tmp) / "tree"
            tree.mkdir()
            subprocess.run(["tar", "-xf", str(archive), "-C", str(tree)], check=True)
            self._rsync_to(f"{tree}/", f"{remote_run}/", "copying the commit's files", request)
        for local, remote in self.layout.data_uploads:
            source = f"{local}/" if local.is_dir() else str(local)
            self._rsync_to(source, f"{remote}/" if local.is_dir() else remote, f"copying {local.name}", request)

    def _fetch_results(self, remote_run: str, run_dir: Path, timeout: float) -> None:
        includes = [arg for pattern in self.fetch for arg in ("--include", pattern)]
        subprocess.run(["rsync", "-az", "-e", self.target.rsync_shell(), *includes, "--exclude", "*",
                        f"{self.target.destination}:{remote_run}/", f"{run_dir}/"],
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def kill_remote(self, remote_run: str) -> bool:
        """Stop the remote process group: TERM, then KILL after a grace period; True when ssh got through.

        Raises subprocess.SubprocessError or OSError when ssh could not be run or took too long.
        """
        script = (f"{_kill_command(remote_run, 'TERM')}; "
                  f"for i in $(seq {int(_KILL_GRACE_SECONDS * 2)}); do "
                  f'p=$(cat {shlex.quote(remote_run)}/{PID_FILE} 2>/dev/null); '
                  f'kill -0 -- -"$p" 2>/dev/null || exit 0; sleep 0.5; done; '
                  f"{_kill_command(remote_run, 'KILL')}")
        proc = subprocess.run(self.target.ssh(script), capture_output=True, timeout=STOP_SECONDS,
                              stdin=subprocess.DEVNULL)
        return proc.returncode == 0

    # -- the run ---------------------------------------------------------------------------------

    def run(self, request: RunRequest, on_line: LineCallback | None = None) -> RunOutcome:
        """Stage, run under the request's timeout and deadline, fetch results; never raises."""
        run_dir = request.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        remote_run = self.remote_run_of(self.layout.remote_dir, request.run_id)
        env = {"MAX_WALLCLOCK_SECONDS": f"{request.wallclock_seconds:g}", **request.env,
               "PYTHONUNBUFFERED": "1"}
        line = remote_command(remote_run, request.command, env)
        write_command_files(run_dir, f"run {request.run_id} at commit {request.commit} on "
                            f"{self.target.destination} port {self.target.port}", [line], env)
        outcome = RunOutcome(run_dir=run_dir, returncode=None, started_at=time.time())
        try:
            self.stage(request, remote_run)
        except (PgolfError, RuntimeError, *_CALL_ERRORS) as err:
            outcome.error = f"staging: {err}"
            outcome.finished_at = time.time()
            return outcome
        self._execute(request, remote_run, line, outcome, on_line)
        try:
            self._fetch_results(remote_run, run_dir, request.seconds_left(_COPY_SECONDS))
        except _CALL_ERRORS as err:
            outcome.add_error(f"fetching results: {err}")
        outcome.finished_at = time.time()
        return outcome

    def _execute(self, request: RunRequest, remote_run: str, line: str, outcome: RunOutcome,
                 on_line: LineCallback | None) -> None:
        stopping = threading.Lock()
        done = threading.Event()
        # Training stops early enough for the kill to end by the request's deadline.
        limit = request.timeout_seconds
        if request.deadline is not None:
            limit = min(limit, request.deadline - STOP_SECONDS - time.time())

        def stop() -> None:
            if stopping.acquire(blocking=False):  # once, whoever asks first
                try:
                    if self.kill_remote(remote_run):
                        return
                    outcome.add_error("could not reach the host to stop the remote process")
                except _CALL_ERRORS as err:
                    outcome.add_error(f"stopping the remote process: {err}")
                # Not waiting for a run that could not be stopped: drop the connection and return.
                with contextlib.suppress(OSError):
                    proc.kill()

        def watch() -> None:
            deadline = time.monotonic() + limit
            while not done.wait(_POLL_SECONDS):
                if limit_reached(request, deadline, outcome, time.monotonic()):
                    stop()
                    return

        try:
            proc = subprocess.Popen(self.target.ssh(line), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as err:
            outcome.error = f"cannot start ssh: {err.strerror or err}"
            return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            with cleanup_on_exit(stop), open(request.run_dir / LOG_NAME, "w", encoding="utf-8") as log:
                assert proc.stdout is not None
                try:
                    pump_lines(proc.stdout, log, on_line)
                except KeyboardInterrupt:
                    outcome.interrupted = True
                    stop()
                    pump_lines(proc.stdout, log, None)
                outcome.returncode = proc.wait()
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if outcome.returncode == 255 and not (outcome.timed_out or outcome.interrupted):
            # The connection dropped, not the training: it may still be running on the host.
            stop()
        reason = (f"timed out after {max(limit, 0.0):.0f} s" if outcome.timed_out else "interrupted"
                  if outcome.interrupted else "ssh connection failed or was lost (exit 255)"
                  if outcome.returncode == 255 else "")
        if reason:  # first: it says why the run ended
            outcome.error = f"{reason}; {outcome.error}" if outcome.error else reason
