"""The bad-input corpus (tests/bad_inputs/cases.py) through the real `pgolf` console script.

Each case runs in its own copy of a fresh workspace. It must end without a traceback, with its exit code,
with its one-line message, and (unless the case is about recovery) with every file that existed before
it unchanged. `PGOLF_CORPUS_REPORT=FILE` appends one JSON line per case (outcome, whether it raised a
traceback, whether the answer was wrong) for the campaign's before/after figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs.cases import CASES, DIR, FIFO, HEAD, Case

PGOLF = Path(sys.executable).with_name("pgolf")
TRACEBACK = "Traceback (most recent call last)"


def _pgolf(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [str(PGOLF)] if PGOLF.exists() else [sys.executable, "-m", "pgolf"]
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUTF8": "1"}
    env.pop("PGOLF_WORKSPACE", None)
    return subprocess.run([*command, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def template_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "ws"
    done = _pgolf("init", str(root), cwd=root.parent)
    assert done.returncode == 0, done.stderr
    return root


def _place(root: Path, rel: str, spec: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if spec is DIR:
        path.mkdir()
    elif spec is FIFO:
        os.mkfifo(path)
    elif isinstance(spec, bytes):
        path.write_bytes(spec)
    elif isinstance(spec, str):
        if HEAD in spec:
            spec = spec.replace(HEAD, subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                                     text=True, check=True).stdout.strip())
        path.write_text(spec, encoding="utf-8")
    else:
        spec(path)  # type: ignore[operator]


def _checksums(root: Path) -> dict[str, str]:
    sums = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".git/") or not path.is_file() or path.is_symlink():
            continue  # FIFOs and folders have no content to compare; git's own files are git's
        sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def _report(case: Case, outcome: dict) -> None:
    target = os.environ.get("PGOLF_CORPUS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": case.id, "area": case.area, **outcome}) + "\n")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)]
                                               if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, template_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(template_workspace, root, symlinks=True)
    for rel, spec in case.files.items():
        _place(root, rel, spec)
    before = _checksums(root)
    try:
        done = _pgolf(*case.argv, cwd=root, timeout=case.timeout)
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        code, out, err = None, "", f"timed out after {case.timeout:.0f} s"
    after = _checksums(root)
    changed = sorted(k for k, v in before.items() if after.get(k) != v)
    traceback = code is None or code < 0 or TRACEBACK in err or TRACEBACK in out
    shown = _last_line(err) if case.code and not case.in_output else out + err
    message_ok = re.search(case.message, shown) is not None
    wrong = not traceback and ((code == 0) != (case.code == 0) or (case.code == 0 and not message_ok)
                               or bool(changed and not case.recovery))
    _report(case, {"code": code, "expected": case.code, "traceback": traceback, "wrong": wrong,
                   "message_ok": message_ok, "changed": changed, "last": _last_line(err)[:300]})
    assert not traceback, f"traceback or hang (exit {code}):\n{err[-3000:]}"
    assert code == case.code, f"exit {code}, expected {case.code}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    assert message_ok, f"{case.message!r} not in {shown[-2000:]!r}"
    if not case.recovery:
        assert not changed, f"files changed: {changed}"


def test_corpus_is_large_and_covers_every_area() -> None:
    areas = {c.area for c in CASES}
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)
    assert {"pgolf.toml", ".env", "shards", "tokenizers", "logs", "records", "results.tsv", "budget.json",
            "research.db", "competitors.json", "inflight.json", "scripts"} <= areas
