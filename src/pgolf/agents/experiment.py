"""The MCP server's act tools: one experiment (or one promotion) through the same code as `pgolf run`.

Lock policy: the server holds the workspace lock of `pgolf run` (`.pgolf/run.lock`) for the duration
of one act call, never while idle. So `pgolf run` and an agent never drive one workspace at once: an
act call while `pgolf run` runs is refused with one line (read tools keep working), and `pgolf run`
started during an act call is refused the same way. Between calls the agent session may stay open
while the user runs `pgolf run`. Every start of the lock's holder recovers what a killed holder left in
flight (`kill -9` of the server included), exactly as `pgolf run` does at its start.

The agent's edit is saved to `.pgolf/mcp/edit.json` before pgolf touches the working copy, so a crash
between taking the edit and committing it never loses it: the next start puts it back. Once the edit
is committed for a run, that run's row (a crash row after a kill) and its tag hold it instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.errors import ConfigError, LockedError, PgolfError, WorkspaceError
from pgolf.workspace import TRAIN_SCRIPT, Workspace

Progress = Callable[[float, float | None, str], Awaitable[None]]
Emit = Callable[[str], None]
_EDIT_DIR = "mcp"
_EDIT_NAME = "edit.json"


def _edit_path(ws: Workspace) -> Path:
    return ws.state_dir / _EDIT_DIR / _EDIT_NAME


def _locked_message(err: LockedError) -> str:
    return (f"{err}: that process drives this workspace now. Wait for it to finish (or stop it) and call "
            "again; the read tools (status, ledger, brief, ...) work meanwhile.")


def best_script(ws: Workspace) -> str:
    """train_gpt.py at pgolf/best, or at HEAD before the first experiment made that branch."""
    from pgolf.loop.lifecycle import BEST_BRANCH

    for ref in (BEST_BRANCH, "HEAD"):
        text = git.git(ws.root, "show", f"{ref}:{TRAIN_SCRIPT}", check=False)
        if text:
            return text + "\n"
    return ""


def in_flight(ws: Workspace) -> list[dict[str, Any]]:
    """The runs the loop's state files say are in flight (read only; nothing is locked)."""
    from pgolf.loop.lifecycle import INFLIGHT_NAME

    path = ws.state_dir / INFLIGHT_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    keys = ("run_id", "kind", "phase", "description", "commit", "seed")
    return [{k: data.get(k) for k in keys}]


class _Events:
    """The loop's events as progress messages (`LoopEvents`); step lines at most one a second."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self._last_line = 0.0

    def message(self, text: str) -> None:
        self.emit(text)

    def run_started(self, run_id: str, kind: str, description: str, tracker_info: dict[str, Any]) -> None:
        self.emit(f"{run_id} ({kind}) started: {description}")

    def line(self, text: str) -> None:
        import time

        now = time.monotonic()
        if text.startswith("step:") and now - self._last_line >= 1.0:
            self._last_line = now
            self.emit(text.strip()[:200])

    def run_finished(self, record: Any) -> None:
        bpb = "-" if record.val_bpb is None else f"{record.val_bpb:.4f}"
        self.emit(f"{record.run_id} finished: {record.status} val_bpb {bpb}")


class _EditProposer:
    """A proposer whose proposal is the agent's edit: the text it had in train_gpt.py."""

    kind = "mcp"

    def __init__(self, text: str, description: str) -> None:
        self.text = text
        self.description = description

    def propose(self, ctx: Any) -> Any:
        from pgolf.loop.proposers.base import Proposal

        best = git.git(ctx.ws.root, "show", f"{ctx.best_commit}:{TRAIN_SCRIPT}") + "\n"
        _save_edit(ctx.ws, self.text, ctx.run_dir.name)  # from here on the run's row and tag hold it
        atomic_write_text(ctx.ws.train_script, self.text)
        return Proposal(description=self.description, changed=self.text.rstrip("\n") != best.rstrip("\n"))

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        return None


def _apply_diff(ws: Workspace, diff: str) -> str:
    """train_gpt.py with a unified diff applied, checked first; only diffs of train_gpt.py are taken."""
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False, encoding="utf-8") as fh:
        fh.write(diff if diff.endswith("\n") else diff + "\n")
        patch = fh.name
    try:
        files = git.git(ws.root, "apply", "--numstat", patch, check=False)
        names = {line.split("\t")[-1] for line in files.splitlines() if line.strip()}
        if names != {TRAIN_SCRIPT}:
            raise ConfigError(f"the diff must change {TRAIN_SCRIPT} only (it names {sorted(names) or 'nothing'})")
        try:
            git.git(ws.root, "apply", patch)
        except PgolfError as err:
            raise ConfigError(f"the diff does not apply to the current {TRAIN_SCRIPT}: {err}") from None
    finally:
        os.unlink(patch)
    return ws.train_script.read_text(encoding="utf-8")


def _save_edit(ws: Workspace, text: str, run_id: str = "") -> None:
    _edit_path(ws).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(_edit_path(ws), json.dumps({"text": text, "run_id": run_id}) + "\n")


def _take_edit(ws: Workspace, diff: str | None) -> str:
    """The agent's edit, saved where a crash cannot lose it."""
    text = _apply_diff(ws, diff) if diff else ws.train_script.read_text(encoding="utf-8")
    _save_edit(ws, text)
    return text


def _restore_pending_edit(ws: Workspace) -> str | None:
    """After a crash: put back an edit that never reached a run (one that did is in its run's tag)."""
    saved = _read_json(_edit_path(ws))
    _edit_path(ws).unlink(missing_ok=True)
    if not isinstance(saved, dict) or not isinstance(saved.get("text"), str):
        return None
    if saved.get("run_id") and any(r.run_id == saved["run_id"] for r in ws.ledger().rows()):
        return None
    if saved["text"] != ws.train_script.read_text(encoding="utf-8") \
            and not git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
        atomic_write_text(ws.train_script, saved["text"])
        return "put your uncommitted train_gpt.py edit back in the working copy"
    return None


def _lab(ws: Workspace, config: Any, emit: Emit) -> Any:
    from pgolf.loop.lifecycle import Lab

    return Lab(ws, config, events=_Events(emit))


def recover_at_start(ws: Workspace) -> str | None:
    """What `pgolf run` does at its start, when nobody holds the workspace: finish an interrupted run."""
    from pgolf.loop.supervisor import workspace_lock

    try:
        config = ws.config()
        with workspace_lock(ws):
            lab = _lab(ws, config, lambda _m: None)
            done = [lab.recover(), _restore_pending_edit(ws)]
    except LockedError:
        return None  # the holder recovers for itself
    except PgolfError:
        return None  # a broken pgolf.toml: every tool reports it on its own
    return "; ".join(d for d in done if d) or None


def run_experiment(ws: Workspace, *, description: str, seeds: list[int] | None = None, diff: str | None = None,
                   emit: Emit = lambda _m: None) -> dict[str, Any]:
    """One experiment from the agent's edit, through the loop's lifecycle; the decision as JSON."""
    from pgolf.loop.supervisor import workspace_lock

    description = " ".join(description.split())
    if not description:
        raise ConfigError("description: say in one line what the change tries")
    config = ws.config()
    try:
        with workspace_lock(ws):
            text = _take_edit(ws, diff)  # first: recovering a killed run resets the working copy
            lab = _lab(ws, config, emit)
            recovered = lab.recover()
            git.git(ws.root, "checkout", "-q", "--", TRAIN_SCRIPT)  # the edit is saved; prepare_git wants a clean file
            try:
                lab.prepare_git()
            except WorkspaceError:
                atomic_write_text(ws.train_script, text)
                _edit_path(ws).unlink(missing_ok=True)
                raise
            if lab.noise() is None:
                emit("measuring the noise floor first (the unchanged script, several seeds)")
                lab.measure_noise_floor()
            record = lab.run_experiment(_EditProposer(text, description))
            _edit_path(ws).unlink(missing_ok=True)
    except LockedError as err:
        raise LockedError(_locked_message(err)) from None
    return _decision(ws, record, recovered, seeds)


def _decision(ws: Workspace, record: Any, recovered: str | None, seeds: list[int] | None) -> dict[str, Any]:
    from pgolf.loop.lifecycle import BEST_BRANCH, DECISION_NAME, TAG_PREFIX

    rows = ws.ledger().rows()
    row = next((r for r in rows if r.run_id == record.run_id), None)
    decision = _read_json(ws.run_dir(record.run_id) / DECISION_NAME)
    kept = record.status == "keep"
    best = git.git(ws.root, "rev-parse", BEST_BRANCH, check=False)
    return {
        "run_id": record.run_id, "status": record.status, "kept": kept, "description": record.description,
        "commit": record.commit, "val_bpb": record.val_bpb, "gain": record.gain, "reason": record.reason,
        "promoted": record.promoted, "decision": decision, "row": row.as_dict() if row else None,
        "best_commit": best,
        "working_copy": ("train_gpt.py is the new best" if kept else
                         f"train_gpt.py was reset to pgolf/best; your change is at {TAG_PREFIX}{record.run_id}"),
        "recovered": recovered,
        "seeds_requested": seeds,
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
    import anyio.from_thread

    count = [0]

    def emit(message: str) -> None:
        count[0] += 1
        with contextlib.suppress(Exception):  # progress is best effort; the experiment goes on
            anyio.from_thread.run(progress, float(count[0]), None, message)
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

