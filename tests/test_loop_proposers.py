"""The agent proposer with a real external command, the llm proposer against a server on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llm_server import Scripted, openai_reply, serve
from loop_fixtures import make_workspace
from pgolf import git
from pgolf.llm import LLMError
from pgolf.loop.proposers.llm import extract_diff
from pgolf.loop.refs import BEST_BRANCH, TAG_PREFIX
from pgolf.loop.supervisor import run_loop
from pgolf.workspace import Workspace

# An external "coding agent": reads the handoff, edits train_gpt.py, describes its change. With
# MISBEHAVE set it also commits, scribbles on the ledger and edits pgolf.toml, which pgolf must undo.
AGENT = '''\
import os, pathlib, subprocess, sys
handoff = pathlib.Path(os.environ["PGOLF_HANDOFF"]).read_text()
assert "pgolf handoff" in handoff and "noise floor" in handoff, handoff
mode = sys.argv[1]
seen = [k for k in ("RUNPOD_API_KEY", "ANTHROPIC_API_KEY") if k in os.environ]
pathlib.Path(os.environ["PGOLF_HANDOFF"]).with_name("keys_seen.txt").write_text(" ".join(seen))
script = pathlib.Path("train_gpt.py")
if mode == "none":
    sys.exit(0)
if mode == "sleep":
    import time; time.sleep(60)
text = script.read_text().replace('"MATRIX_LR", 0.04', '"MATRIX_LR", 0.02')
script.write_text(text)
pathlib.Path(os.environ["PGOLF_DESCRIPTION_FILE"]).write_text("halve the matrix learning rate\\n")
if mode == "misbehave":
    with open("results.tsv", "a") as fh:
        fh.write("fake\\trow\\n")
    pathlib.Path("pgolf.toml").write_text(pathlib.Path("pgolf.toml").read_text() + "\\n# agent was here\\n")
    subprocess.run(["git", "commit", "-qam", "agent commit"], check=True)
'''


def _proposals(ws: Workspace) -> list:
    """The rows of proposals (not the noise floor, a replicate, or an incumbent's paired run)."""
    return [r for r in ws.ledger().rows() if not r.description.startswith(("baseline", "replicate of"))]


def _with_proposer(ws: Workspace, lines: str) -> None:
    """Append proposer settings to pgolf.toml (left uncommitted, as a user would)."""
    text = ws.config_path.read_text().replace('kind = "search"', lines)
    ws.config_path.write_text(text)


def _agent_workspace(tmp_path: Path, mode: str, timeout: float = 60) -> Workspace:
    ws = make_workspace(tmp_path / "ws")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    _with_proposer(ws, f'kind = "agent"\nagent_command = "{sys.executable} {agent} {mode}"\n'
                       f"agent_timeout_seconds = {timeout}")
    return ws


def test_agent_edits_the_script_and_pgolf_runs_it(tmp_path: Path, monkeypatch):
    # The agent may need its own key; the key pgolf spends money with on RunPod is not its to see.
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "agent-key")
    ws = _agent_workspace(tmp_path, "edit")
    run_loop(ws, experiments=1)
    (row,) = _proposals(ws)
    assert row.description.split(" [")[0] == "agent: halve the matrix learning rate"
    assert row.status == "keep"  # the fake's optimum is at 0.02 (kept after its paired replicates)
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == row.commit
    assert '"MATRIX_LR", 0.02' in git.git(ws.root, "show", f"{row.commit}:train_gpt.py")
    folder = ws.run_dir(row.run_id)
    assert (folder / "handoff.md").is_file() and (folder / "agent.log").is_file()
    assert (folder / "keys_seen.txt").read_text() == "ANTHROPIC_API_KEY"
    assert "-    matrix_lr" in (folder / "diff.patch").read_text()


def test_agent_that_touches_more_than_the_script_is_contained(tmp_path: Path):
    ws = _agent_workspace(tmp_path, "misbehave")
    toml_before = ws.config_path.read_text()
    run_loop(ws, experiments=1)
    rows = ws.ledger().rows()
    assert len(ws.ledger().load().damaged) == 0  # its ledger line was removed
    (row,) = _proposals(ws)
    assert "pgolf undid the agent's own commits" in row.description
    # The agent works in its slot's worktree: its scribble on a results.tsv there never reaches the ledger.
    assert "restored pgolf.toml" in row.description
    assert all(r.commit for r in rows) and ws.ledger().rows() == rows
    assert ws.config_path.read_text() == toml_before
    assert git.git(ws.root, "show", "--stat", "--format=", row.commit).startswith("train_gpt.py")
    assert "agent commit" not in git.git(ws.root, "log", "--format=%s", BEST_BRANCH)


def test_agent_without_change_is_skipped_and_a_hung_agent_is_stopped(tmp_path: Path):
    ws = _agent_workspace(tmp_path, "none")
    run_loop(ws, experiments=1)
    (row,) = _proposals(ws)
    assert row.status == "skipped" and "no change" in row.description
    # A hung agent is a proposer failure: not an experiment done, so the loop tries again until the
    # breaker ([proposer] max_failures, 2 here) stops it with the cause.
    hung = _agent_workspace(tmp_path / "second", "sleep", timeout=2)
    hung.config_path.write_text(hung.config_path.read_text().replace("[proposer]\n", "[proposer]\nmax_failures = 2\n"))
    summary = run_loop(hung, experiments=1)
    rows = _proposals(hung)
    assert len(rows) == 2
    assert all(r.status == "skipped" and "timed out after 2 s" in r.description for r in rows)
    assert "failed 2 times in a row" in summary.stop_reason
    assert git.git(hung.root, "status", "--porcelain", "--", "train_gpt.py") == ""


def _use_llm(ws: Workspace, url: str) -> None:
    """The llm proposer against the test's server (a loopback endpoint needs no key)."""
    text = ws.config_path.read_text().replace('kind = "search"', 'kind = "llm"')
    ws.config_path.write_text(text.replace('base_url = "https://api.openai.com/v1"', f'base_url = "{url}"'))


VALID = '''DESCRIPTION: lower the matrix learning rate toward the optimum
```diff
--- a/train_gpt.py
+++ b/train_gpt.py
@@ -3,3 +3,3 @@
 class Hyperparameters:
     iterations = int(os.environ.get("ITERATIONS", 20))
-    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
+    matrix_lr = float(os.environ.get("MATRIX_LR", 0.021))
     num_layers = int(os.environ.get("NUM_LAYERS", 4))
```
'''
INVALID = VALID.replace('"ITERATIONS", 20', '"ITERATIONS", 999')  # context that is not in the script
OTHER_FILE = VALID.replace("train_gpt.py", "pgolf.toml")


def test_llm_proposer_valid_invalid_and_malformed_replies(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    replies = [openai_reply(VALID), openai_reply(INVALID), openai_reply("I would try a bigger model."),
               Scripted(body={"choices": "nonsense"}), openai_reply(OTHER_FILE)]
    with serve(replies) as server:
        _use_llm(ws, server.url)
        with pytest.raises(LLMError, match="malformed"):
            run_loop(ws, experiments=5)
    rows = _proposals(ws)
    statuses = [r.status for r in rows]
    assert statuses == ["keep", "rejected", "rejected"]
    kept, bad, no_diff = rows
    assert kept.description.startswith("llm: lower the matrix learning rate")
    assert '"MATRIX_LR", 0.021' in git.git(ws.root, "show", f"{kept.commit}:train_gpt.py")
    assert "does not apply" in bad.description and bad.commit == kept.commit and bad.val_bpb is None
    assert "no unified diff" in no_diff.description
    assert not (ws.run_dir(bad.run_id) / "train.log").exists()  # a rejected diff is never run
    assert git.git(ws.root, "tag", "-l", f"{TAG_PREFIX}*") == ""
    assert (ws.run_dir(no_diff.run_id) / "llm_reply.txt").read_text() == "I would try a bigger model."
    prompt = server.requests[0].body["messages"][1]["content"]
    assert "train_gpt.py" in prompt and "Experiment history" in prompt and "r0002" in prompt
    # The malformed reply stopped the loop with one line and left the workspace clean.
    assert git.git(ws.root, "status", "--porcelain", "--", "train_gpt.py") == ""
    assert ws.budget().status().llm_spent_usd > 0


def test_llm_diff_touching_another_file_is_rejected_and_the_cap_stops_the_loop(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    with serve([openai_reply(OTHER_FILE, 10**6, 10**6)]) as server:
        _use_llm(ws, server.url)
        ws.config_path.write_text(ws.config_path.read_text().replace("llm_cap_usd = 5.0", "llm_cap_usd = 0.5"))
        summary = run_loop(ws, experiments=5)
    rows = _proposals(ws)
    assert [r.status for r in rows] == ["rejected"]
    assert "only train_gpt.py may change" in rows[-1].description
    assert summary.stop_reason.startswith("LLM spend limit reached")


# A content change to train_gpt.py followed by git headers that rename another file or change a mode:
# the ---/+++ lines name only train_gpt.py, but `git apply` would do the rest too.
RENAME = VALID.replace("```\n", "diff --git a/pgolf.toml b/gone.toml\nsimilarity index 100%\n"
                       "rename from pgolf.toml\nrename to gone.toml\n```\n")
MODE = VALID.replace("```\n", "diff --git a/train_gpt.py b/train_gpt.py\nold mode 100644\nnew mode 100755\n```\n")


def test_llm_diff_that_renames_or_changes_modes_is_rejected(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    with serve([openai_reply(RENAME), openai_reply(MODE)]) as server:
        _use_llm(ws, server.url)
        run_loop(ws, experiments=2)
    rename, mode = ws.ledger().rows()[2:]
    assert rename.status == "rejected" and "rename pgolf.toml => gone.toml" in rename.description
    assert mode.status == "rejected" and "mode change" in mode.description
    assert ws.config_path.is_file() and not (ws.root / "gone.toml").exists()
    assert git.git(ws.root, "status", "--porcelain", "--", "train_gpt.py") == ""
    assert not (ws.run_dir(rename.run_id) / "train.log").exists()


def test_extract_diff_from_fenced_and_bare_replies():
    assert extract_diff(VALID).startswith("--- a/train_gpt.py")
    bare = "Here:\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b"
    assert extract_diff(bare) == "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
    assert extract_diff("no diff here") is None
