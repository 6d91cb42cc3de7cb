"""Slots for real: runs overlap on N slots in their own worktrees, and a kill -9 with N runs in flight
(wrapped in `sh -c`, or torchrun with two gloo workers) leaves no process and is recorded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from loop_fixtures import in_flight, make_workspace
from pgolf import git
from pgolf.compute.local import processes_in
from pgolf.config import LocalTier
from pgolf.loop.proposers.base import Proposal, ProposalContext
from pgolf.loop.refs import BEST_BRANCH, EXPLORE_BRANCH, TAG_PREFIX
from pgolf.loop.slots import plan_slots
from pgolf.loop.supervisor import run_loop
from pgolf.workspace import Workspace
from tiny_train import TORCHRUN


def _interval(ws: Workspace, run_id: str) -> tuple[float, float]:
    """When a run's command started and when its result was written (file times)."""
    folder = ws.run(run_id)
    return folder.command.stat().st_mtime, folder.result.stat().st_mtime


class _Recording:
    """Proposes a distinct layer count each time and remembers which checkout it worked in."""

    kind = "recording"

    def __init__(self) -> None:
        self.seen: list[tuple[Path, list[str]]] = []
        self.layers = iter(range(5, 40))

    def propose(self, ctx: ProposalContext) -> Proposal:
        self.seen.append((ctx.root, list(ctx.others)))
        text = ctx.script.read_text()
        ctx.script.write_text(text.replace('"NUM_LAYERS", 4', f'"NUM_LAYERS", {next(self.layers)}'))
        return Proposal(f"layers {self.seen[-1][0].name}")

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        pass


def test_two_slots_overlap_in_their_own_worktrees(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws", local_env='FAKE_SLEEP = "1.5"', slots=2)
    proposer = _Recording()
    summary = run_loop(ws, experiments=2, proposer=proposer)
    rows = ws.ledger().rows()
    first, second = _interval(ws, "r0001"), _interval(ws, "r0002")
    assert rows[0].status == rows[1].status == "baseline"
    assert first[0] < second[1] and second[0] < first[1], (first, second)  # the two seeds ran at once
    experiments = [r for r in rows if r.description.startswith("layers ")]
    a, b = (_interval(ws, r.run_id) for r in experiments[:2])
    assert a[0] < b[1] and b[0] < a[1], (a, b)
    # Each proposal was made in a slot's own worktree, knowing what the other slot was doing.
    roots = {root for root, _ in proposer.seen}
    assert roots == {ws.slot(1), ws.slot(2)}
    assert any(others for _, others in proposer.seen)
    # CPU threads are shared evenly between the slots; the runs say so in env.json.
    threads = {json.loads(ws.run(r.run_id).env.read_text()).get("OMP_NUM_THREADS") for r in rows[:2]}
    assert threads == {str(max((os.cpu_count() or 1) // 2, 1))}
    assert len(summary.experiments) == 2
    assert git.git(ws.root, "rev-parse", EXPLORE_BRANCH) == git.git(ws.root, "rev-parse", BEST_BRANCH)
    assert git.git(ws.root, "worktree", "list").count(".pgolf/slots/slot") == 2


def test_slot_plan_pins_gpus_or_shares_threads():
    two_gpus = plan_slots(LocalTier(slots="auto", gpus_per_slot=2), gpus=["0", "1", "2", "3"], cpus=16)
    assert [s.env for s in two_gpus] == [{"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "2,3"}]
    cpu = plan_slots(LocalTier(slots=4), gpus=[], cpus=16)
    assert [s.env["OMP_NUM_THREADS"] for s in cpu] == ["4"] * 4
    assert [s.index for s in plan_slots(LocalTier(slots="auto"), gpus=[], cpus=2)] == [1]
    mine = plan_slots(LocalTier(slots=2, env={"OMP_NUM_THREADS": "3"}), gpus=[], cpus=8)
    assert "OMP_NUM_THREADS" not in mine[0].env  # the user's own setting wins


# -- kill -9 with two runs in flight -------------------------------------------------------------------

def _pgolf(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "pgolf", "-w", str(ws.root), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(ws: Workspace, count: int, workers: int, timeout: float = 90) -> list[dict]:
    """`count` experiments in flight, each with `workers` training processes started in its folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s for s in in_flight(ws) if s.get("kind") == "experiment" and s.get("child_pid")]
        started = [s for s in states if (ws.run(s["run_id"]).log.is_file()
                                          and ws.run(s["run_id"]).log.read_text().count("started pid") >= workers)]
        if len(started) >= count:
            return started
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} experiments started ({in_flight(ws)})")


@pytest.mark.parametrize("command", [f"sh -c '{sys.executable} train_gpt.py; true'", "torchrun"])
def test_kill_9_with_two_runs_in_flight_leaves_no_process_and_records_both_once(tmp_path: Path, command: str):
    hold = tmp_path / "hold"
    ws = make_workspace(tmp_path / "ws", local_env=f'FAKE_HOLD_FILE = "{hold}"', slots=2)
    workers = 1
    if command == "torchrun":
        command, workers = f"{TORCHRUN} --standalone --nproc_per_node=2 train_gpt.py", 2
    quoted = f'command = "{command}"' if "'" in command else f"command = '{command}'"
    ws.config_path.write_text(ws.config_path.read_text().replace('command = "python train_gpt.py"', quoted))
    git.git(ws.root, "commit", "-qam", "the command under test")
    run_loop(ws, experiments=0)  # the noise floor
    before = ws.results_tsv.read_text()
    hold.touch()
    proc = _pgolf(ws, "run", "-n", "4")
    states = _wait_for(ws, 2, workers)
    folders = [ws.run(s["run_id"]).path for s in states]
    pids = [pid for folder in folders for pid in processes_in(folder)]
    assert len(pids) >= 2 * (workers + 1)  # launcher, sh or torchrun, and the training processes
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(2.0)
    assert [pid for pid in pids if _alive(pid)] == [], "processes of the runs outlived pgolf by 2 s"
    assert all(processes_in(folder) == [] for folder in folders)
    assert ws.results_tsv.read_text() == before  # the ledger is intact: nothing half-written
    hold.unlink()
    out = run_loop(ws, experiments=0).recovered or ""  # the next start
    rows = ws.ledger().rows()
    assert ws.results_tsv.read_text().startswith(before)
    for state in states:
        mine = [r for r in rows if r.run_id == state["run_id"]]
        assert len(mine) == 1 and mine[0].status == "crash" and mine[0].commit == state["commit"], mine
        assert f"recorded the interrupted run {state['run_id']} as crash" in out
        assert git.git(ws.root, "rev-parse", f"{TAG_PREFIX}{state['run_id']}^{{commit}}") == state["commit"]
    assert in_flight(ws) == []
    assert git.git(ws.root, "rev-parse", EXPLORE_BRANCH) == git.git(ws.root, "rev-parse", BEST_BRANCH)
    # The search study resumes: the killed loop's pending trials were failed, none is left running.
    storage = JournalStorage(JournalFileBackend(str(ws.search_journal("tpe"))))
    trials = optuna.load_study(study_name="pgolf-tpe", storage=storage).trials
    assert [t.state.name for t in trials].count("FAIL") >= 2 and "RUNNING" not in {t.state.name for t in trials}


def test_search_study_resumes_with_pending_trials(tmp_path: Path):
    """Trials asked while others are still running differ (constant liar), and a new process resumes
    the study: its numbering goes on and no trial is left RUNNING."""
    from pgolf.loop.proposers.search import SearchProposer

    ws = make_workspace(tmp_path / "ws")
    run_loop(ws, experiments=0)
    config = ws.config()
    first = SearchProposer(ws, config)
    asked = [first.study.ask(first.distributions) for _ in range(6)]  # six pending at once
    assert len({tuple(sorted(t.params.items())) for t in asked}) == 6
    first.study.tell(asked[0].number, 1.9)
    second = SearchProposer(ws, config)  # a restart: the five still running belonged to a dead loop
    states = [t.state.name for t in second.study.trials]
    assert states.count("RUNNING") == 0 and states.count("FAIL") == 5 and states.count("COMPLETE") == 1
    nxt = second.study.ask(second.distributions)
    assert nxt.number == len(states)
