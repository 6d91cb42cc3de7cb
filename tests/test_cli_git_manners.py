"""Git manners: init says what it adopted and commits as the user; `pgolf clean` removes only what is asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loop_fixtures import make_workspace
from pgolf import git
from pgolf.ledger import LedgerRow
from pgolf.loop.events import QuietEvents
from pgolf.loop.supervisor import run_loop, workspace_lock
from pgolf.workspace import Workspace, init_workspace

# A script shaped like the challenge's own: reads its data from the environment, needs CUDA.
ADOPTED = '''import os
import torch
data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
tokenizer_path = os.environ.get("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
checkpoint_dir = os.getenv("CHECKPOINT_DIR", "ckpt")
if not torch.cuda.is_available():
    raise RuntimeError("CUDA is required")
'''


def _identity_env(tmp_path: Path, name: str | None) -> dict[str, str]:
    """An environment whose only git configuration is the one written here (or none at all)."""
    config = tmp_path / "gitconfig"
    config.write_text(f"[user]\n\tname = {name}\n\temail = {name.lower().replace(' ', '.')}@example.org\n"
                      if name else "")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PGOLF_"))}
    return env | {"GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path),
                  "COLUMNS": "100"}


def _pgolf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = env or {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"} | {"COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_init_in_a_clone_says_it_adopted_the_script_and_commits_as_the_user(tmp_path: Path) -> None:
    env = _identity_env(tmp_path, "Ada Lovelace")
    clone = tmp_path / "clone"
    clone.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=clone, env=env, check=True)
    (clone / "train_gpt.py").write_text(ADOPTED)
    out = _pgolf("init", ".", cwd=clone, env=env)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "Adopted the train_gpt.py already here as the starting point" in text
    assert ("It reads DATA_PATH (its default: ./data/datasets/fineweb10B_sp1024); pgolf sets it from "
            "pgolf.toml's [data] dataset_dir.") in text
    assert "It reads TOKENIZER_PATH" in text and "[data] tokenizer_path" in text
    assert "It needs CUDA (line 6 raises when torch.cuda.is_available() is false)" in text
    assert "It reads CHECKPOINT_DIR (its default: ckpt); pgolf does not set it" in text
    assert "Committed on branch main as Ada Lovelace <ada.lovelace@example.org>." in text
    log = subprocess.run(["git", "log", "-1", "--format=%an <%ae>|%cn|%s"], cwd=clone, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert log == "Ada Lovelace <ada.lovelace@example.org>|Ada Lovelace|pgolf init: adopt train_gpt.py"
    assert (clone / "train_gpt.py").read_text() == ADOPTED


def test_init_without_an_identity_commits_as_pgolf_and_says_nothing_about_adopting(tmp_path: Path) -> None:
    env = _identity_env(tmp_path, None)
    out = _pgolf("init", "fresh", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "Adopted" not in out.stdout and "Committed on branch main as pgolf <pgolf@localhost>." in out.stdout


def test_git_fills_in_only_the_missing_half_of_an_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Only Name\n")
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git.git(tmp_path, "init", "-q")
    git.git(tmp_path, "commit", "-q", "--allow-empty", "-m", "x")
    assert git.git(tmp_path, "log", "-1", "--format=%an <%ae>") == "Only Name <pgolf@localhost>"


# --- pgolf clean ----------------------------------------------------------------------------------------

def _run_folder(ws: Workspace, run_id: str, status: str, commit: str) -> Path:
    folder = ws.run_dir(run_id)
    folder.mkdir(parents=True)
    (folder / "train.log").write_text("x" * 1000)
    ws.ledger().append(LedgerRow(commit, "local", None if status == "skipped" else 1.25, None, None, status,
                                 run_id=run_id, description=f"{status} run"))
    return folder


@pytest.fixture()
def cluttered(tmp_path: Path) -> Workspace:
    ws = init_workspace(tmp_path / "ws")
    head = git.head_commit(ws.root)
    old_env = {**os.environ, "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z", "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z"}
    old = subprocess.run(["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "old experiment"], cwd=ws.root,
                         env=old_env, capture_output=True, text=True, check=True).stdout.strip()
    for tag, commit in (("pgolf/exp/r0002", old), ("pgolf/exp/r0003", head), ("v1-user", old)):
        git.git(ws.root, "tag", tag, commit)
    _run_folder(ws, "r0001", "skipped", head)
    _run_folder(ws, "r0002", "discard", old)
    _run_folder(ws, "r0003", "crash", head)
    _run_folder(ws, "r0004", "skipped", head)
    git.git(ws.root, "worktree", "add", "-q", "--detach", str(ws.state_dir / "slots" / "slot0"), head)
    return ws


def _tags(ws: Workspace) -> list[str]:
    return git.git(ws.root, "tag", "-l").split()


def test_clean_without_options_only_lists(cluttered: Workspace) -> None:
    ws = cluttered
    out = _pgolf("clean", cwd=ws.root)
    assert out.returncode == 0, out.stderr
    assert "pgolf clean removes nothing unless asked" in out.stdout
    assert "--skipped              2 skipped run folder(s) (2,000 bytes)" in out.stdout
    assert "--worktrees            1 worktree(s) under .pgolf/" in out.stdout
    assert "--tags-older-than 30   1 tag(s) older than 30 days" in out.stdout
    assert ws.run_dir("r0001").exists() and len(_tags(ws)) == 3


def test_clean_removes_what_is_asked_and_keeps_every_row(cluttered: Workspace) -> None:
    ws = cluttered
    rows_before = ws.results_tsv.read_text()
    dry = json.loads(_pgolf("clean", "--skipped", "--tags-older-than", "30", "--dry-run", "--json", cwd=ws.root).stdout)
    assert dry["run_folders"] == ["r0001", "r0004"] and dry["tags"] == ["pgolf/exp/r0002"] and not dry["removed"]
    assert ws.run_dir("r0001").exists()

    out = _pgolf("clean", "--skipped", cwd=ws.root)
    assert out.returncode == 0, out.stderr
    assert "removed 2 skipped run folder(s) (2,000 bytes)" in out.stdout
    assert not ws.run_dir("r0001").exists() and not ws.run_dir("r0004").exists()
    assert ws.run_dir("r0002").exists() and ws.run_dir("r0003").exists()
    assert len(_tags(ws)) == 3 and (ws.state_dir / "slots" / "slot0").exists()  # not asked for

    out = _pgolf("clean", "--worktrees", "--tags-older-than", "30", cwd=ws.root)
    assert out.returncode == 0, out.stderr
    assert _tags(ws) == ["pgolf/exp/r0003", "v1-user"]  # only pgolf's tags, only the old ones
    assert not (ws.state_dir / "slots" / "slot0").exists()
    assert str(ws.state_dir) not in git.git(ws.root, "worktree", "list")
    assert ws.results_tsv.read_text() == rows_before


def test_clean_is_refused_while_a_loop_holds_the_workspace(cluttered: Workspace) -> None:
    ws = cluttered
    with workspace_lock(ws):
        out = _pgolf("clean", "--skipped", cwd=ws.root)
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "is running in" in out.stderr
    assert ws.run_dir("r0001").exists()


# --- pgolf run names the branch it switches to ---------------------------------------------------------

class _Said(QuietEvents):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_the_loop_says_which_branch_it_switches_to_and_leaves_the_users_alone(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    main_commit = git.head_commit(ws.root)
    said = _Said()
    run_loop(ws, experiments=0, events=said)  # the noise floor only: two fast runs of the fake script
    switched = [line for line in said.lines if line.startswith("switched to branch")]
    assert switched == ["switched to branch pgolf/explore (from main): experiments are committed there, "
                        "pgolf/best holds the best script; main is left as it was"]
    assert git.current_branch(ws.root) == "pgolf/explore"
    assert git.git(ws.root, "rev-parse", "main") == main_commit
    again = _Said()
    run_loop(ws, experiments=0, events=again)  # already there: nothing to announce
    assert not [line for line in again.lines if line.startswith("switched")]
