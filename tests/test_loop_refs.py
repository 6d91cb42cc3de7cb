"""The loop's git policy: tags of runs that were not kept, the script cache, the identity of commits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgolf import git
from pgolf.loop.refs import TAG_PREFIX, Refs
from pgolf.status import Status
from pgolf.workspace import TRAIN_SCRIPT, init_workspace


@pytest.fixture()
def refs(tmp_path: Path) -> Refs:
    script = tmp_path / "script.py"
    script.write_text("print('base')\n")
    refs = Refs(init_workspace(tmp_path / "ws", train_script=script))
    refs.prepare()
    return refs


def _proposal(refs: Refs, text: str, message: str) -> str:
    slot = refs.slot_worktree(0, refs.best_commit())
    (slot / TRAIN_SCRIPT).write_text(text)
    return refs.commit_slot(slot, message)


def test_a_discarded_run_is_tagged_once_however_often_it_is_settled(refs: Refs) -> None:
    best = refs.best_commit()
    commit = _proposal(refs, "print('changed')\n", "r0002: a change")
    for _ in range(2):  # recovery settles a recorded run again
        refs.settle(run_id="r0002", commit=commit, parent_commit=best, status=Status.DISCARD)
    assert refs.git("tag", "-l", f"{TAG_PREFIX}*").splitlines() == [f"{TAG_PREFIX}r0002"]
    assert refs.git("rev-parse", f"{TAG_PREFIX}r0002") == commit
    assert refs.best_commit() == best and git.head_commit(refs.ws.root) == best


def test_the_script_of_a_commit_is_what_was_committed(refs: Refs) -> None:
    best = refs.best_commit()
    first = _proposal(refs, "print('one')\n", "r0002")
    second = _proposal(refs, "print('two')\n", "r0003")
    assert [refs.script(c) for c in (best, first, second, first)] == \
        ["print('base')", "print('one')", "print('two')", "print('one')"]


def test_the_loops_commits_fill_in_only_the_missing_half_of_an_identity(refs: Refs, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\temail = ada@example.org\n")
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    commits = [_proposal(refs, f"print({i})\n", f"r000{i}") for i in (2, 3)]
    assert {git.git(refs.ws.root, "log", "-1", "--format=%an <%ae>|%cn <%ce>", c) for c in commits} == \
        {"pgolf <ada@example.org>|pgolf <ada@example.org>"}
