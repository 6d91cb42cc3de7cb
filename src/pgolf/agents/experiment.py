"""The MCP server's act tools: one experiment (or one promotion) through the same code as `pgolf run`.

Lock policy: the server holds the workspace lock of `pgolf run` (`.pgolf/run.lock`) for the duration
of one act call, never while idle. So `pgolf run` and an agent never drive one workspace at once: an
act call while `pgolf run` runs is refused with one line (read tools keep working), and `pgolf run`
started during an act call is refused the same way. Between calls the agent session may stay open
while the user runs `pgolf run`. Every start of the lock's holder recovers what a killed holder left in
flight (`kill -9` of the server included), exactly as `pgolf run` does at its start.

The agent's uncommitted edit is copied to `.pgolf/mcp/edit.json` before the engine takes it, so a
refused call, a failure or a crash before the edit reached a run never loses it: it is put back in
the working copy. Once a run ran it, that run's row (a crash row after a kill) and its tag hold it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.errors import ConfigError, LockedError, PgolfError
from pgolf.workspace import TRAIN_SCRIPT, Workspace

Progress = Callable[[float, float | None, str], Awaitable[None]]
Emit = Callable[[str], None]


def _edit_path(ws: Workspace) -> Path:
    return ws.agent_edit


def _locked_message(err: LockedError) -> str:
    return (f"{err}: that process drives this workspace now. Wait for it to finish (or stop it) and call "
            "again; the read tools (status, ledger, brief, ...) work meanwhile.")


def best_script(ws: Workspace) -> str:
    """train_gpt.py at pgolf/best, or at HEAD before the first experiment made that branch."""
    from pgolf.loop.refs import BEST_BRANCH

    for ref in (BEST_BRANCH, "HEAD"):
        text = git.git(ws.root, "show", f"{ref}:{TRAIN_SCRIPT}", check=False)
        if text:
            return text + "\n"
    return ""


_IN_FLIGHT_KEYS = ("run_id", "kind", "phase", "description", "commit", "seed", "slot", "candidate")


def in_flight(ws: Workspace) -> list[dict[str, Any]]:
    """The runs the loop's state files say are in flight (read only: nothing is locked or removed)."""
    folder = ws.running_dir
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        data = _read_json(path)
        if isinstance(data, dict):
            found.append({k: data.get(k) for k in _IN_FLIGHT_KEYS})
    return found


class _Events:
    """The loop's events (`LoopEvents`) as progress messages; a run's step lines at most one a second."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self._last_line: dict[str, float] = {}

    def message(self, text: str) -> None:
        self.emit(text)

    def run_started(self, run_id: str, kind: str, description: str, info: dict[str, Any]) -> None:
        self.emit(f"{run_id} ({kind}) started: {description}")

    def run_line(self, run_id: str, text: str) -> None:
        now = time.monotonic()
        if text.startswith("step:") and now - self._last_line.get(run_id, 0.0) >= 1.0:
            self._last_line[run_id] = now
            self.emit(f"{run_id} {text.strip()[:200]}")

    def run_finished(self, record: Any) -> None:
        bpb = "-" if record.val_bpb is None else f"{record.val_bpb:.4f}"
        self.emit(f"{record.run_id} ({record.kind}) finished: {record.status} val_bpb {bpb}")


def _check_diff(ws: Workspace, diff: str) -> None:
    """Bad input is one line and nothing recorded: the diff must change train_gpt.py only and apply to the
    best script (where the engine applies it, in a slot's worktree). Checked in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="pgolf-diff-") as tmp:
        folder = Path(tmp)
        (folder / TRAIN_SCRIPT).write_text(best_script(ws), encoding="utf-8")
        (folder / "change.patch").write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
        files = git.git(folder, "apply", "--numstat", "change.patch", check=False)
        names = {line.split("\t")[-1] for line in files.splitlines() if line.strip()}
        if names != {TRAIN_SCRIPT}:
            raise ConfigError(f"the diff must change {TRAIN_SCRIPT} only (it names {sorted(names) or 'nothing'})")
        try:
            git.git(folder, "apply", "--check", "change.patch")
        except PgolfError as err:
            raise ConfigError(f"the diff does not apply to the best {TRAIN_SCRIPT} (pgolf/best): {err}") from None


def _save_edit(ws: Workspace, original: str) -> None:
    ws.agent_edit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(ws.agent_edit, json.dumps({"original": original, "rows_before": len(ws.ledger().rows())}) + "\n")


def _set_aside(ws: Workspace) -> None:
    """A copy of the agent's uncommitted train_gpt.py where a crash cannot lose it."""
    if git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
        _save_edit(ws, ws.train_script.read_text(encoding="utf-8"))


def _reached_a_run(ws: Workspace, text: str, rows_before: int) -> bool:
    """Whether a run recorded since the edit was set aside ran exactly this script (its row and tag hold it)."""
    for row in ws.ledger().rows()[rows_before:]:
        if row.commit and git.git(ws.root, "show", f"{row.commit}:{TRAIN_SCRIPT}", check=False) == text.rstrip("\n"):
            return True
    return False


def _restore_pending_edit(ws: Workspace) -> str | None:
    """Put the working copy back as the agent left it when its edit never reached a run."""
    saved = _read_json(ws.agent_edit)
    ws.agent_edit.unlink(missing_ok=True)
    if not isinstance(saved, dict) or not isinstance(saved.get("original"), str):
        return None
    original = saved["original"]
    if _reached_a_run(ws, original, int(saved.get("rows_before") or 0)):
        return None
    if original != ws.train_script.read_text(encoding="utf-8") \
            and not git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
        atomic_write_text(ws.train_script, original)
        return "put your uncommitted train_gpt.py edit back in the working copy"
    return None


def recover_at_start(ws: Workspace) -> str | None:
    """What `pgolf run` does at its start, when nobody holds the workspace: finish interrupted runs."""
    from pgolf.loop.lab import Lab
    from pgolf.loop.recovery import recover
    from pgolf.loop.supervisor import workspace_lock

    said: list[str] = []
    try:
        config = ws.config()
        with workspace_lock(ws):
            if not ws.agent_edit.exists():
                _set_aside(ws)
            if git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
                git.git(ws.root, "checkout", "-q", "--", TRAIN_SCRIPT)  # the refs start from a clean script
            try:
                lab = Lab(ws, config)
                lab.refs.prepare()
                said += recover(lab)
            finally:
                said.append(_restore_pending_edit(ws) or "")
    except LockedError:
        return None  # the holder recovers for itself
    except PgolfError as err:
        return f"not recovered: {err}"  # a broken pgolf.toml: every tool reports it on its own
    return "; ".join(s for s in said if s) or None


def run_experiment(ws: Workspace, *, description: str, seeds: list[int] | None = None, diff: str | None = None,
                   emit: Emit = lambda _m: None) -> dict[str, Any]:
    """One experiment from the agent's edit (or `diff`), through the engine's entry point; the decision.

    `pgolf.loop.api.run_proposal` is `run_loop` with this one proposal: the same lock, recovery, noise
    floor, scheduler (slots, paired replicates), judge, ledger row, git moves and program.md as `pgolf run`.
    """
    from pgolf.loop.api import run_proposal

    description = " ".join(description.split())
    if not description:
        raise ConfigError("description: say in one line what the change tries")
    config = ws.config()  # a broken pgolf.toml: one line, before the edit is touched
    dirty = bool(git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT))
    if diff is not None and dirty:
        raise ConfigError(f"{TRAIN_SCRIPT} has uncommitted changes: call run_experiment without a diff to run "
                          "them, or undo them first")
    if diff is not None:
        _check_diff(ws, diff)
    with _edit_lock(ws):
        _set_aside(ws)
        try:
            record = run_proposal(ws, config, description=description, diff=diff, seeds=seeds,
                                  events=_Events(emit))
        except LockedError as err:
            _restore_pending_edit(ws)
            raise LockedError(_locked_message(err)) from None
        except BaseException:
            _restore_pending_edit(ws)
            raise
        ws.agent_edit.unlink(missing_ok=True)
    return _decision(ws, record)


@contextlib.contextmanager
def _edit_lock(ws: Workspace) -> Any:
    """Two calls of one server (or two servers) never set aside the same edit at once."""
    import fcntl

    ws.agent_edit.parent.mkdir(parents=True, exist_ok=True)
    with open(ws.agent_edit.with_suffix(".lock"), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError("another run_experiment is already running in this workspace; wait for its "
                              "decision") from None
        yield


def _decision(ws: Workspace, record: Any) -> dict[str, Any]:
    """The record as the agent reads it: the decision, its numbers, every run it took."""
    from pgolf.loop.judging import REPLICATE_PREFIX
    from pgolf.loop.refs import BEST_BRANCH, TAG_PREFIX

    rows = ws.ledger().rows()
    mine = [r for r in rows if r.run_id == record.run_id
            or r.description.startswith(f"{REPLICATE_PREFIX}{record.run_id},")]
    kept = record.status == "keep"
    return {
        "run_id": record.run_id, "status": record.status, "kept": kept, "description": record.description,
        "commit": record.commit, "val_bpb": record.val_bpb, "gain": record.gain, "reason": record.reason,
        "promoted": record.promoted, "verdict": record.verdict, "decision": _read_json(ws.run(record.run_id).decision),
        "runs": [r.as_dict() for r in mine],
        "best_commit": git.git(ws.root, "rev-parse", BEST_BRANCH, check=False),
        "working_copy": ("train_gpt.py is the new best (pgolf/best)" if kept else
                         f"train_gpt.py is pgolf/best; your change is kept at {TAG_PREFIX}{record.run_id}"),
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def promote(ws: Workspace, run_id: str, *, confirm: bool, emit: Emit = lambda _m: None) -> dict[str, Any]:
    """The promotion plan (confirm false) or the promotion itself, behind every budget gate."""
    from pgolf.loop.promote import plan_promotion, promote_run
    from pgolf.loop.supervisor import workspace_lock

    config = ws.config()
    if not confirm:
        return {**plan_promotion(ws, config, run_id, yes=False).as_dict(), "dry_run": True}
    try:
        with workspace_lock(ws):
            result = promote_run(ws, config, run_id, yes=True, on_line=emit)
    except LockedError as err:
        raise LockedError(_locked_message(err)) from None
    return result.as_dict()


# -- async wrappers: the work runs in a thread, progress goes back to the event loop -----------------

def _emitter(progress: Progress) -> Emit:
    """A thread-safe `emit`: the loop reports from its slot threads, the client hears it on the event loop."""
    import anyio.from_thread
    import anyio.lowlevel

    token = anyio.lowlevel.current_token()
    count = [0]
    lock = threading.Lock()

    def emit(message: str) -> None:
        with lock:
            count[0] += 1
            done = float(count[0])
        with contextlib.suppress(Exception):  # progress is best effort; the experiment goes on
            anyio.from_thread.run(progress, done, None, message, token=token)
    return emit


async def run_experiment_async(ws: Workspace, *, description: str, seeds: list[int] | None, diff: str | None,
                               progress: Progress) -> dict[str, Any]:
    import anyio.to_thread

    work = functools.partial(run_experiment, ws, description=description, seeds=seeds, diff=diff,
                             emit=_emitter(progress))
    return await anyio.to_thread.run_sync(work)


async def promote_async(ws: Workspace, run_id: str, *, confirm: bool, progress: Progress) -> dict[str, Any]:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(promote, ws, run_id, confirm=confirm,
                                                            emit=_emitter(progress)))

