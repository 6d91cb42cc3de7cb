"""A failing proposer stops the loop loudly: real `pgolf run` processes with real agent commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loop_fixtures import make_workspace
from pgolf.loop.breaker import ProposerBreaker, ProposerFailure
from pgolf.workspace import Workspace


def _agent(ws: Workspace, command: str, extra: str = "") -> None:
    text = ws.config_path.read_text()
    ws.config_path.write_text(text.replace('kind = "search"', f"kind = \"agent\"\nagent_command = {json.dumps(command)}\n{extra}"))


def _pgolf(ws: Workspace, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PGOLF_WORKSPACE": str(ws.root)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "pgolf", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_readme_agent_command_without_claude_is_refused_before_any_run(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    _agent(ws, "claude -p 'Read program.md and improve train_gpt.py'")
    # A PATH with git and sh but certainly no `claude`.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "sh"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(found)
    proc = _pgolf(ws, "run", "-n", "5", path=str(bin_dir))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "claude is not installed" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert ws.ledger().rows() == []  # not even a baseline ran
    assert not any(ws.runs_dir.iterdir())


def test_agent_failing_three_times_stops_the_loop_with_its_cause(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    _agent(ws, "sh -c 'echo starting; echo \"auth: not logged in\" >&2; exit 7'")
    proc = _pgolf(ws, "run", "-n", "10")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    stop = [line for line in out.splitlines() if line.startswith("stopping: ")]
    assert stop == ["stopping: the proposer failed 3 times in a row (limit [proposer] max_failures = 3); "
                    "last: exited with code 7: auth: not logged in"], out
    assert out.count("proposer failure") == 3, out
    assert "exit code 7" in out and "| auth: not logged in" in out
    assert "the proposer failed 3 times in a row" in out and "auth: not logged in" in out.split("failed 3 times")[1]
    rows = ws.ledger().rows()
    failed = [r for r in rows if r.status == "skipped"]
    assert len(failed) == 3 and len(rows) == 5  # two baselines, three failures, then the stop
    decision = json.loads((ws.run_dir(failed[-1].run_id) / "decision.json").read_text())
    assert decision["proposer_failure"] == {"cause": "exited with code 7", "exit_code": 7,
                                            "stderr_tail": ["auth: not logged in"]}
    log = (ws.run_dir(failed[-1].run_id) / "agent.log").read_text()
    assert "starting" in log and "auth: not logged in" in log  # both streams stay in agent.log


def test_max_failures_is_configurable_and_failures_are_not_experiments(tmp_path: Path):
    from pgolf.loop.supervisor import run_loop

    ws = make_workspace(tmp_path / "ws")
    _agent(ws, "sh -c 'exit 1'", "max_failures = 1")
    summary = run_loop(ws, experiments=5)
    assert len(summary.records) == 3 and summary.experiments == []
    assert summary.stop_reason.startswith("the proposer failed 1 time in a row")
    bad = tmp_path / "bad"
    ws2 = make_workspace(bad)
    _agent(ws2, "sh -c 'exit 1'", "max_failures = 0")
    proc = _pgolf(ws2, "run", "-n", "1")
    assert proc.returncode == 2 and "max_failures" in proc.stderr


def test_breaker_resets_on_any_proposal_that_is_not_a_failure():
    breaker = ProposerBreaker(2)
    said: list[str] = []
    fail = ProposerFailure("exited with code 1", 1, ("boom",))
    assert breaker.observe(fail, said.append) == ""
    assert breaker.observe(None) == ""
    assert breaker.observe(fail) == ""
    assert "failed 2 times in a row" in breaker.observe(fail)
    assert said == ["  proposer failure 1/2 (exit code 1); its stderr ended with:", "    | boom"]


FLAKY_AGENT = '''import os, pathlib, sys
counter = pathlib.Path(sys.argv[1])
calls = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(calls + 1))
if calls == 0:
    print("rate limited, try later", file=sys.stderr)
    sys.exit(3)
script = pathlib.Path("train_gpt.py")
lr = {1: "0.03", 2: "0.025"}.get(calls, "0.021")
text = script.read_text()
start = text.index('"MATRIX_LR", ') + len('"MATRIX_LR", ')
script.write_text(text[:start] + lr + text[text.index(")", start):])
pathlib.Path(os.environ["PGOLF_DESCRIPTION_FILE"]).write_text(f"matrix lr {lr}\\n")
'''


def test_a_failure_between_successes_is_not_counted_as_an_experiment(tmp_path: Path):
    from pgolf.loop.supervisor import run_loop

    ws = make_workspace(tmp_path / "ws")
    agent = tmp_path / "agent.py"
    agent.write_text(FLAKY_AGENT)
    _agent(ws, f"{sys.executable} {agent} {tmp_path / 'calls'}")
    summary = run_loop(ws, experiments=2)
    proposals = [r for r in summary.records if r.kind == "experiment"]
    assert [r.failure is not None for r in proposals] == [True, False, False]
    assert len(summary.experiments) == 2 and not summary.proposer_broken
    assert proposals[0].failure.exit_code == 3 and proposals[0].failure.stderr_tail == ("rate limited, try later",)
    assert summary.stop_reason == "2 experiments done (limit 2)"
