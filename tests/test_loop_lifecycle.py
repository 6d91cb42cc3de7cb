"""The experiment lifecycle with a fast fake training script: statuses, git moves, records, limits."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loop_fixtures import make_workspace
from pgolf import git
from pgolf.cli.app import app
from pgolf.errors import ConfigError, LockedError, WorkspaceError
from pgolf.ledger import COLUMNS
from pgolf.loop.events import QuietEvents
from pgolf.loop.lab import Lab
from pgolf.loop.proposers.base import Proposal, ProposalContext
from pgolf.loop.refs import BEST_BRANCH, EXPLORE_BRANCH, TAG_PREFIX
from pgolf.loop.supervisor import run_loop, workspace_lock


def _tags(root: Path) -> set[str]:
    return set(git.git(root, "tag", "-l", f"{TAG_PREFIX}*").split())


def test_search_loop_records_every_run_and_moves_git(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    summary = run_loop(ws, experiments=4)
    assert summary.stop_reason.startswith("4 experiments done")
    lines = ws.results_tsv.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = ws.ledger().rows()
    assert [r.status for r in rows[:2]] == ["baseline", "baseline"]
    assert [r.seed for r in rows[:2]] == [1337, 1338]
    experiments = [r for r in rows if r.description.startswith("tpe: ")]
    assert len(experiments) == 4 and all(len(line.split("\t")) == 16 for line in lines)
    assert all(r.status in ("keep", "discard") and r.parent_run for r in experiments)
    # A keep is never one lucky run: it has paired replicates (its own seeds and the incumbent's).
    for kept in (r for r in experiments if r.status == "keep"):
        replicates = [r for r in rows if r.parent_run == kept.run_id and r.status == "replicate"]
        paired = [r for r in rows if r.parent_run == kept.run_id and r.status == "baseline"]
        assert replicates and {r.seed for r in replicates} <= {r.seed for r in paired} | {1338}
        assert all(r.commit == kept.commit for r in replicates)
        verdict = json.loads((ws.run_dir(kept.run_id) / "decision.json").read_text())["verdict"]
        assert verdict["action"] == "keep" and verdict["n"] >= 3 and verdict["p_value"] <= verdict["alpha"]
        assert f"n={verdict['n']} " in kept.description and " p=" in kept.description
    root = ws.root
    # Every discarded experiment is tagged at its own commit; the best is the last kept commit.
    discarded = [r for r in experiments if r.status == "discard"]
    assert _tags(root) == {TAG_PREFIX + r.run_id for r in discarded}
    for r in discarded:
        assert git.git(root, "rev-parse", f"{TAG_PREFIX}{r.run_id}^{{commit}}") == r.commit
    kept = [r for r in experiments if r.status == "keep"]
    expected_best = kept[-1].commit if kept else rows[0].commit
    assert git.git(root, "rev-parse", BEST_BRANCH) == expected_best
    assert git.git(root, "rev-parse", EXPLORE_BRANCH) == expected_best
    assert git.git(root, "rev-parse", "--abbrev-ref", "HEAD") == EXPLORE_BRANCH
    assert git.git(root, "status", "--porcelain", "-uno") == ""
    # Run folders hold the log, the result, the diff and the command.
    for r in experiments:
        folder = ws.run_dir(r.run_id)
        for name in ("train.log", "result.json", "diff.patch", "command.txt", "decision.json"):
            assert (folder / name).is_file(), (r.run_id, name)
        diff = (folder / "diff.patch").read_text()
        assert "+++ b/train_gpt.py" in diff and "os.environ.get" in diff
        assert "SEED=1337" in (folder / "command.txt").read_text()
    program = ws.program_md.read_text()
    assert all(r.run_id in program for r in rows[-8:])
    assert "noise floor (local): the best commit's" in program


def test_search_study_resumes_across_runs(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    run_loop(ws, experiments=2)
    first = [r.description for r in ws.ledger().rows()]
    run_loop(ws, experiments=2)
    rows = ws.ledger().rows()
    assert [r.run_id for r in rows] == [f"r{i:04d}" for i in range(1, len(rows) + 1)]
    floor = [r for r in rows if r.status == "baseline" and not r.parent_run]
    assert len(floor) == 2  # the noise floor is measured once (paired incumbent runs name their candidate)
    assert [r.description.split(" [")[0] for r in rows[:len(first)]] == [d.split(" [")[0] for d in first]
    proposals = [r.description.split(" [")[0] for r in rows if r.description.startswith("tpe: ")]
    assert len(proposals) == 4 and len(set(proposals)) == 4  # a resumed study does not replay its draws


class ScriptedProposer:
    """Applies one text edit per call to train_gpt.py, from a list."""

    kind = "scripted"

    def __init__(self, edits: list[tuple[str, Any]]) -> None:
        self.edits = list(edits)
        self.observed: list[tuple[str, float | None]] = []

    def propose(self, ctx: ProposalContext) -> Proposal:
        name, edit = self.edits.pop(0)
        if edit is None:
            return Proposal(name, changed=False, state={"name": name})
        text = ctx.script.read_text()
        ctx.script.write_text(edit(text))
        return Proposal(name, state={"name": name})

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        self.observed.append((status, val_bpb))


def _delete_line(fragment: str):
    return lambda text: "".join(line for line in text.splitlines(True) if fragment not in line)


def test_failures_are_recorded_tagged_and_reverted(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws", timeout=4)
    proposer = ScriptedProposer([
        ("crashes", lambda t: t.replace("args = Hyperparameters()", "args = Hyperparameters()\nraise SystemExit(1)")),
        ("syntax error", lambda t: t + "\ndef broken(:\n"),
        ("network", lambda t: "import socket\n" + t),
        ("huge model", lambda t: t.replace('"MODEL_DIM", 64', '"MODEL_DIM", 100000')),
        ("hangs", lambda t: t.replace("args = Hyperparameters()", "args = Hyperparameters()\ntime.sleep(60)")),
        ("nothing", None),
        ("simpler", _delete_line("train_batch_tokens")),
    ])
    summary = run_loop(ws, experiments=7, proposer=proposer)
    rows = {r.description.split(" [")[0].split(" (")[0]: r for r in ws.ledger().rows()[2:]
            if not r.description.startswith(("replicate of", "baseline"))}
    assert {k: r.status for k, r in rows.items()} == {
        "crashes": "crash", "syntax error": "crash", "network": "crash", "huge model": "oversize",
        "hangs": "timeout", "nothing": "skipped", "simpler": "keep",
    }
    assert "preflight compiles" in rows["syntax error"].description
    assert "socket" in rows["network"].description
    assert "projected" in rows["huge model"].description
    assert not (ws.run_dir(rows["syntax error"].run_id) / "train.log").exists()  # never ran
    tagged = {r.run_id for r in rows.values() if r.status in ("crash", "oversize", "timeout")}
    assert _tags(ws.root) == {TAG_PREFIX + t for t in tagged}
    baseline_commit = ws.ledger().rows()[0].commit
    assert rows["nothing"].commit == baseline_commit and rows["nothing"].val_bpb is None
    # The simpler script scored the same (within the floor) and became the best.
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == rows["simpler"].commit
    assert "train_batch_tokens" not in ws.train_script.read_text()
    assert [s for s, _ in proposer.observed] == ["crash", "crash", "crash", "oversize", "timeout", "skipped",
                                                "keep"]
    assert len(summary.experiments) == 7


def test_a_second_loop_in_the_same_workspace_is_refused(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    with workspace_lock(ws), pytest.raises(LockedError, match="another `pgolf run`"):
        run_loop(ws, experiments=1)
    assert ws.ledger().rows() == []


def test_env_override_of_a_searched_value_is_refused(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws", local_env='MATRIX_LR = "0.1"')
    with pytest.raises(ConfigError, match="MATRIX_LR.*silently override"):
        run_loop(ws, experiments=1)


def test_uncommitted_script_changes_are_refused(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    # Untracked files (program.md's lock in a workspace whose .gitignore predates it, notes) are no reason.
    gitignore = ws.root / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace(".program.md.lock\n", ""))
    git.git(ws.root, "commit", "-qam", "an older .gitignore")
    (ws.root / ".program.md.lock").touch()
    (ws.root / "notes.txt").write_text("ideas\n")
    run_loop(ws, experiments=0)
    ws.train_script.write_text(ws.train_script.read_text() + "\n# edited by hand\n")
    with pytest.raises(WorkspaceError, match="uncommitted changes"):
        run_loop(ws, experiments=1)


def test_a_crashing_baseline_stops_with_one_line(tmp_path: Path):
    # Before its first step: a setup error (the script cannot run here), not a noise-floor row.
    ws = make_workspace(tmp_path / "ws", local_env='FAKE_CRASH = "1"')
    with pytest.raises(Exception, match=r"baseline r0001 stopped before its first training step .*fake crash"):
        run_loop(ws, experiments=1)
    assert ws.ledger().rows() == [] and not (ws.state_dir / "inflight.json").exists()
    assert (ws.run_dir("r0001") / "train.log").is_file()  # the evidence stays for `pgolf show r0001`


def test_result_json_missing_falls_back_to_the_log(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    proposer = ScriptedProposer([("no result.json", lambda t: t.replace(
        'path = os.environ.get("PGOLF_RESULT_JSON")', "path = None"))])
    run_loop(ws, experiments=1, proposer=proposer)
    row = ws.ledger().rows()[-1]
    assert not (ws.run_dir(row.run_id) / "result.json").exists()
    # The official log lines carry the score and the size: the run is judged as usual.
    assert row.status in ("keep", "discard")
    assert row.val_bpb == pytest.approx(ws.ledger().rows()[0].val_bpb, abs=1e-3)
    assert row.artifact_bytes is not None and row.steps == 20


def test_cli_run_json_and_bad_proposer(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(ws.root), "run", "-n", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stop_reason"].startswith("1 experiment done")
    kinds = [r["kind"] for r in data["runs"]]
    assert kinds[:3] == ["baseline", "baseline", "experiment"] and kinds.count("experiment") == 1
    # The experiment was screened, then either discarded at once or replicated and decided.
    assert kinds[3:] == [] or kinds[-1] == "decision" and set(kinds[3:-1]) <= {"replicate", "baseline"}
    bad = runner.invoke(app, ["-w", str(ws.root), "run", "--proposer", "magic"])
    assert bad.exit_code == 2 and "choose one of search, agent, llm" in bad.output


class _Killed(BaseException):
    """Stands for kill -9: nothing after the point it is raised runs."""


def test_a_proposal_committed_but_not_yet_in_flight_survives_a_kill(tmp_path: Path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    run_loop(ws, experiments=0)  # the noise floor
    save = Lab.save

    def die_once_committed(lab: Lab, state: Any) -> None:
        if state.kind == "experiment" and state.phase == "running":
            raise _Killed  # the commit is made; the in-flight file still says "proposing"
        save(lab, state)

    monkeypatch.setattr(Lab, "save", die_once_committed)
    edit = ("deeper", lambda t: t.replace('"NUM_LAYERS", 4', '"NUM_LAYERS", 5'))
    with pytest.raises(_Killed):
        run_loop(ws, experiments=1, proposer=ScriptedProposer([edit]))
    monkeypatch.setattr(Lab, "save", save)
    committed = git.head_commit(ws.slot(1))  # proposals are committed in the slot's worktree
    assert committed != git.git(ws.root, "rev-parse", BEST_BRANCH)

    summary = run_loop(ws, experiments=0)
    assert summary.recovered == "recorded the interrupted run r0003 as aborted"
    row = ws.ledger().rows()[-1]
    assert row.run_id == "r0003" and row.status == "aborted" and row.commit == committed
    # The diff is kept under the run's tag, not only in the reflog.
    assert git.git(ws.root, "rev-parse", f"{TAG_PREFIX}r0003^{{commit}}") == committed
    assert '"NUM_LAYERS", 5' in git.git(ws.root, "show", f"{TAG_PREFIX}r0003:train_gpt.py")
    assert git.git(ws.root, "rev-parse", EXPLORE_BRANCH) == git.git(ws.root, "rev-parse", BEST_BRANCH)


def _signal_self(signum: int):
    """An edit that also sends `signum` to this process, as a user would mid-proposal."""
    def edit(text: str) -> str:
        os.kill(os.getpid(), signum)
        return text.replace('"NUM_LAYERS", 4', '"NUM_LAYERS", 5')
    return edit


def test_the_loop_chains_to_a_host_handler_and_restores_it(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    heard: list[int] = []

    def host(signum: int, _frame: Any) -> None:
        heard.append(signum)

    before = {sig: signal.signal(sig, host) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopped = run_loop(ws, experiments=3, proposer=ScriptedProposer([("int", _signal_self(signal.SIGINT))]))
        aborted = run_loop(ws, experiments=3, proposer=ScriptedProposer([("term", _signal_self(signal.SIGTERM))]))
        assert signal.getsignal(signal.SIGINT) is host and signal.getsignal(signal.SIGTERM) is host
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert heard == [signal.SIGINT, signal.SIGTERM]
    # The loop still did its own part: Ctrl-C let the run finish, SIGTERM aborted it.
    # (a candidate that needs replicates stays pending: the next start resumes its judgement)
    assert stopped.stop_reason == "stopped by the user"
    assert stopped.experiments[0].status in ("keep", "discard", "replicate")
    assert [r.status for r in aborted.experiments] == ["aborted"]


class _Display(QuietEvents):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def test_ctrl_c_during_promotions_starts_no_further_promotion(tmp_path: Path, monkeypatch):
    ws = make_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + '\n[tiers.ssh]\nhost = "127.0.0.1"\nport = 1\n')
    seen: list[bool] = []

    def queue(ws: Any, config: Any, *, yes: bool, on_line: Any, cancel: threading.Event) -> list:
        seen.append(cancel.is_set())
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the queue runs
        seen.append(cancel.is_set())  # the queue is told to start no further row
        return []

    monkeypatch.setattr("pgolf.loop.promote.run_promotion_queue", queue)
    display = _Display()
    summary = run_loop(ws, experiments=3, events=display)
    assert seen == [False, True]
    assert summary.stop_reason == "stopped by the user" and len(summary.experiments) == 1
    said = next(m for m in display.messages if m.startswith("Ctrl-C"))
    assert "promotion in flight" in said and "finishing the run" not in said


def test_run_proposal_runs_one_diff_through_the_same_judgement(tmp_path: Path):
    from pgolf.loop.api import run_proposal

    ws = make_workspace(tmp_path / "ws")
    old = ws.train_script.read_text()
    new = old.replace('"MATRIX_LR", 0.04', '"MATRIX_LR", 0.02')  # the fake's optimum: a real gain
    ws.train_script.write_text(new)
    diff = git.git(ws.root, "diff", "--", "train_gpt.py") + "\n"
    git.git(ws.root, "checkout", "-q", "--", "train_gpt.py")
    record = run_proposal(ws, description="halve the matrix lr", diff=diff)
    assert record.kind == "decision" and record.status == "keep", record
    assert record.verdict["n"] >= 3 and record.verdict["p_value"] <= record.verdict["alpha"]
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == record.commit
    # The agent's own edit of the workspace script (diff=None) is proposed the same way.
    ws.train_script.write_text(ws.train_script.read_text().replace('"NUM_LAYERS", 4', '"NUM_LAYERS", 3'))
    worse = run_proposal(ws, description="shallower")
    assert worse.status == "discard" and "train_gpt.py" not in git.git(ws.root, "status", "--porcelain")
    bad = run_proposal(ws, description="touches another file", diff="--- a/x.py\n+++ b/x.py\n@@ -0,0 +1 @@\n+x\n")
    assert bad.status == "rejected"


def test_a_candidate_left_half_replicated_is_resumed_by_the_next_start(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    # One Ctrl-C during the proposal of a real gain (4 -> 5 layers): it runs and is screened, then nothing starts.
    stopped = run_loop(ws, experiments=1, proposer=ScriptedProposer([("deeper", _signal_self(signal.SIGINT))]))
    first = stopped.experiments[0]
    assert first.status == "replicate" and stopped.stop_reason == "stopped by the user"
    assert next(r for r in ws.ledger().rows() if r.run_id == first.run_id).status == "replicate"
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) != first.commit
    display = _Display()
    resumed = run_loop(ws, experiments=0, events=display)
    assert any(m.startswith(f"resuming the judgement of {first.run_id}") for m in display.messages)
    (decision,) = [r for r in resumed.records if r.kind == "decision"]
    assert decision.run_id == first.run_id and decision.status == "keep" and decision.verdict["n"] >= 3
    row = next(r for r in ws.ledger().rows() if r.run_id == first.run_id)
    assert row.status == "keep" and "n=" in row.description
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == first.commit

