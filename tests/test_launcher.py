"""The launcher every local run starts under: exit codes, signals, the whole tree, with and without pidfds."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgolf.compute.local import LAUNCHER

# The launcher with pidfds disabled: the polling path of machines (or kernels) that have none.
_NO_PIDFDS = (f"import sys; sys.path.insert(0, {str(LAUNCHER.parent)!r}); import launcher; "
              "launcher.pidfd = lambda pid: None; sys.exit(launcher.main(sys.argv[1:]))")


def _argv(command: list[str], pidfds: bool) -> list[str]:
    head = [sys.executable, "-S", str(LAUNCHER), "--"] if pidfds else [sys.executable, "-S", "-c", _NO_PIDFDS]
    return [*head, *command]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfds", "polling"])
def test_the_launcher_exits_with_the_commands_code(pidfds: bool) -> None:
    assert subprocess.run(_argv(["sh", "-c", "exit 3"], pidfds)).returncode == 3
    assert subprocess.run(_argv(["sh", "-c", "kill -TERM $$"], pidfds)).returncode == 128 + signal.SIGTERM


def test_a_missing_command_is_one_line_and_127() -> None:
    proc = subprocess.run(_argv(["/nonexistent/train"], True), capture_output=True, text=True)
    assert proc.returncode == 127
    assert proc.stdout == "cannot start /nonexistent/train: No such file or directory\n"


def test_the_command_gets_sigpipe_back_at_its_default() -> None:
    # Python ignores SIGPIPE; a shell pipeline under the launcher must still end its writer with it.
    proc = subprocess.run(_argv(["bash", "-c", "yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}"], True),
                          capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == str(128 + signal.SIGPIPE)


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfds", "polling"])
def test_term_ends_the_whole_tree_and_reports_the_commands_own_code(tmp_path: Path, pidfds: bool) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; wait"
    launcher = subprocess.Popen(_argv(["sh", "-c", script], pidfds))
    deadline = time.monotonic() + 10
    while len(pids.read_text().split() if pids.exists() else []) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    children = [int(p) for p in pids.read_text().split()]
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=20) == 128 + signal.SIGTERM  # the shell's own end, not a made-up code
    assert not [pid for pid in children if _alive(pid)]


def test_the_tree_goes_when_the_parent_dies(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # A parent shell that starts the launcher in the background and is then killed with -9.
    launcher = shlex.join(_argv(["sh", "-c", f"echo $$ > {pids}; sleep 60"], True))
    parent = subprocess.Popen(["sh", "-c", f"{launcher} & wait"], start_new_session=True)
    deadline = time.monotonic() + 10
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(pids.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _request(tmp_path: Path, command: str, **limits: float):
    from pgolf import git
    from pgolf.compute.base import RunRequest

    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    git.git(repo, "init", "-q")
    (repo / "train_gpt.py").write_text("print('hi')\n")
    git.git(repo, "add", "train_gpt.py")
    git.git(repo, "commit", "-q", "-m", "x")
    return RunRequest(run_id="r1", workspace_root=repo, commit=git.head_commit(repo), command=command,
                      run_dir=tmp_path / "run", **limits)


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfds", "polling"])
def test_the_backend_sees_the_end_and_enforces_the_timeout(tmp_path: Path, pidfds: bool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pgolf.compute import local

    if not pidfds:
        monkeypatch.setattr(local, "pidfd", lambda pid: None)
    done = local.LocalBackend().run(_request(tmp_path / "ok", "sh -c 'exit 4'"))
    assert done.returncode == 4 and not done.timed_out
    # A grace far longer than the stop takes: the launcher ends at once on TERM, and its end is seen (an
    # unreaped launcher once kept its process group alive, so every stop waited out the whole grace).
    monkeypatch.setattr(local, "_KILL_GRACE_SECONDS", 60.0)
    started = time.monotonic()
    cut = local.LocalBackend().run(_request(tmp_path / "slow", "sleep 60", timeout_seconds=0.5))
    assert cut.timed_out and cut.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 30
