"""The SSH backend against a real sshd on 127.0.0.1: a tiny CPU training end to end, and the kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgolf import git
from pgolf.compute import ssh
from pgolf.compute.base import RunRequest
from pgolf.compute.ssh import PID_FILE, STOP_SECONDS, RemoteLayout, SshBackend, SshTarget
from pgolf.logs import read_run_result
from pgolf.workspace import Workspace, init_workspace
from sshd_server import LocalSshd, running_sshd
from tiny_train import TINY_ENV, TORCHRUN

pytestmark = pytest.mark.slow


# Spawns a child, records both pids, then waits forever: what a hung torchrun looks like.
HANG_SCRIPT = """\
import os, subprocess, time
child = subprocess.Popen(["sleep", "300"])
with open("pids.txt", "w") as fh:
    fh.write(f"{os.getpid()} {child.pid}\\n")
print("step:1/100 train_loss:5.0", flush=True)
time.sleep(300)
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def target_of(sshd: LocalSshd) -> SshTarget:
    return SshTarget(sshd.host, sshd.user, sshd.port, sshd.client_key, sshd.known_hosts)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_tiny_training_runs_end_to_end_over_ssh(sshd: LocalSshd, demo_dataset, tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    commit = git.head_commit(ws.root)
    committed_script = ws.train_script.read_text()
    # Only the commit's files travel: an untracked file and an uncommitted edit must stay behind.
    (ws.root / "scratch.txt").write_text("not committed\n")
    ws.train_script.write_text("raise SystemExit('the working tree must never run remotely')\n")
    remote = tmp_path / "remote"
    dataset, tokenizer = str(remote / "data" / "ds"), str(remote / "data" / "tok.model")
    layout = RemoteLayout(str(remote / "runs"), data_uploads=(
        (demo_dataset.dataset_dir, dataset), (demo_dataset.tokenizer_path, tokenizer)))
    backend = SshBackend(target_of(sshd), layout, ("result.json", "*.ptz"))
    lines: list[str] = []
    request = RunRequest(
        run_id="r1", workspace_root=ws.root, commit=commit, run_dir=ws.run_dir("r1"),
        command=f"{TORCHRUN} --standalone --nproc_per_node=1 train_gpt.py",
        env={**TINY_ENV, "DATA_PATH": dataset, "TOKENIZER_PATH": tokenizer}, wallclock_seconds=60,
        timeout_seconds=240, gpus=1)

    outcome = backend.run(request, lines.append)

    assert (outcome.returncode, outcome.error, outcome.timed_out) == (0, "", False)
    result = read_run_result(outcome.run_dir)
    assert result is not None and result.source == "result.json"
    assert result.status == "ok" and result.steps == 4
    assert result.val_bpb is not None and 0 < result.val_bpb < 12
    assert list(outcome.run_dir.glob("*.ptz")), "the compressed model comes back"
    assert any(line.startswith("step:") for line in lines)
    assert "final_int8_zlib_roundtrip" in outcome.log_path.read_text()
    remote_run = remote / "runs" / "r1"
    assert (remote_run / "train_gpt.py").read_text() == committed_script
    assert not (remote_run / "scratch.txt").exists()
    env = json.loads((outcome.run_dir / "env.json").read_text())
    assert env["MAX_WALLCLOCK_SECONDS"] == "60" and env["DATA_PATH"] == dataset
    assert "127.0.0.1" in (outcome.run_dir / "command.txt").read_text()


def _hang_workspace(tmp_path: Path) -> Workspace:
    script = tmp_path / "hang.py"
    script.write_text(HANG_SCRIPT)
    return init_workspace(tmp_path / "ws", train_script=script)


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_timeout_or_cancel_kills_the_whole_remote_process_group(sshd: LocalSshd, tmp_path: Path, how: str):
    ws = _hang_workspace(tmp_path)
    remote = tmp_path / "remote"
    backend = SshBackend(target_of(sshd), RemoteLayout(str(remote)))
    cancel = threading.Event()
    request = RunRequest(
        run_id="hang", workspace_root=ws.root, commit=git.head_commit(ws.root), run_dir=ws.run_dir("hang"),
        command=f"{sys.executable} train_gpt.py", timeout_seconds=3.0 if how == "timeout" else 120.0,
        cancel=cancel)
    if how == "cancel":
        def cancel_when_started() -> None:
            while not (remote / "hang" / "pids.txt").exists():
                time.sleep(0.05)
            cancel.set()
        threading.Thread(target=cancel_when_started, daemon=True).start()

    started = time.monotonic()
    outcome = backend.run(request)

    assert time.monotonic() - started < 60
    assert outcome.timed_out is (how == "timeout") and outcome.interrupted is (how == "cancel")
    assert outcome.error
    pids = [int(p) for p in (remote / "hang" / "pids.txt").read_text().split()]
    assert (remote / "hang" / PID_FILE).exists()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "the script and its child were both killed"
    assert "step:1/100" in outcome.log_path.read_text()


def test_unreachable_host_is_an_outcome_not_an_exception(tmp_path: Path, sshd: LocalSshd):
    ws = _hang_workspace(tmp_path)
    dead = SshTarget("127.0.0.1", sshd.user, 1, sshd.client_key, sshd.known_hosts, connect_timeout=3)
    outcome = SshBackend(dead, RemoteLayout(str(tmp_path / "remote"))).run(RunRequest(
        run_id="x", workspace_root=ws.root, commit=git.head_commit(ws.root), run_dir=ws.run_dir("x"),
        command="true"))
    assert outcome.returncode is None and outcome.error.startswith("staging:")


def _hang_request(ws: Workspace, **extra: object) -> RunRequest:
    return RunRequest(run_id="hang", workspace_root=ws.root, commit=git.head_commit(ws.root),
                      run_dir=ws.run_dir("hang"), command=f"{sys.executable} train_gpt.py", **extra)


def _wait_until_dead(pids: list[int]) -> bool:
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def test_the_deadline_stops_the_run_early_enough_for_the_kill(sshd: LocalSshd, tmp_path: Path):
    ws = _hang_workspace(tmp_path)
    remote = tmp_path / "remote"
    started = time.time()
    outcome = SshBackend(target_of(sshd), RemoteLayout(str(remote))).run(
        _hang_request(ws, timeout_seconds=600.0, deadline=started + STOP_SECONDS + 3.0))

    assert outcome.timed_out and outcome.error.startswith("timed out")
    assert time.time() - started < STOP_SECONDS + 3.0, "everything ended by the deadline"
    pids = [int(p) for p in (remote / "hang" / "pids.txt").read_text().split()]
    assert _wait_until_dead(pids)


def test_a_lost_connection_stops_the_remote_run(sshd: LocalSshd, tmp_path: Path):
    ws = _hang_workspace(tmp_path)
    remote = tmp_path / "remote"

    def drop_the_connection() -> None:
        pids_file = remote / "hang" / "pids.txt"
        while not pids_file.exists():
            time.sleep(0.05)
        # The sshd process serving the session is the parent of the remote command's process group.
        leader = int((remote / "hang" / PID_FILE).read_text())
        session = int(Path(f"/proc/{leader}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(session, signal.SIGKILL)

    threading.Thread(target=drop_the_connection, daemon=True).start()
    outcome = SshBackend(target_of(sshd), RemoteLayout(str(remote))).run(_hang_request(ws, timeout_seconds=120.0))

    assert outcome.returncode == 255 and "connection" in outcome.error
    pids = [int(p) for p in (remote / "hang" / "pids.txt").read_text().split()]
    assert _wait_until_dead(pids), "training does not outlive the connection"


@pytest.mark.parametrize("failing", ["fetch", "kill", "start"])
def test_a_failing_ssh_or_rsync_call_is_an_outcome_not_an_exception(
        sshd: LocalSshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str):
    ws = _hang_workspace(tmp_path)
    real_run, real_popen = subprocess.run, subprocess.Popen

    def run(argv, *args, **kwargs):
        line = " ".join(argv)
        if (failing == "fetch" and "--exclude" in argv) or (failing == "kill" and "kill -TERM" in line):
            raise subprocess.TimeoutExpired(argv, kwargs.get("timeout") or 0)
        return real_run(argv, *args, **kwargs)

    def popen(argv, *args, **kwargs):
        if failing == "start" and argv[0] == "ssh":
            raise OSError(24, "Too many open files")
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(ssh.subprocess, "run", run)
    monkeypatch.setattr(ssh.subprocess, "Popen", popen)
    outcome = SshBackend(target_of(sshd), RemoteLayout(str(tmp_path / "remote"))).run(
        _hang_request(ws, timeout_seconds=2.0))

    expected = {"fetch": "fetching results", "kill": "stopping the remote process",
                "start": "cannot start ssh: Too many open files"}[failing]
    assert expected in outcome.error
    if failing == "kill":  # the backend dropped the connection and returned; the script still runs
        monkeypatch.undo()
        SshBackend(target_of(sshd), RemoteLayout(str(tmp_path / "remote"))).kill_remote(
            str(tmp_path / "remote" / "hang"))
