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


class _EditProposer:
    """A proposer whose one proposal is the agent's edit: the text it had in train_gpt.py."""

    kind = "mcp"

    def __init__(self, ws: Workspace, text: str, description: str) -> None:
        self.ws = ws
        self.text = text
        self.description = description

    def propose(self, ctx: Any) -> Any:
        from pgolf.loop.proposers.base import Proposal

        best = git.git(ctx.ws.root, "show", f"{ctx.best_commit}:{TRAIN_SCRIPT}") + "\n"
        saved = _read_json(_edit_path(self.ws)) or {}
        # from here on the run's row and tag hold the edit
        _save_edit(self.ws, self.text, saved.get("original"), ctx.run_dir.name)
        atomic_write_text(ctx.script, self.text)
        return Proposal(description=self.description, changed=self.text.rstrip("\n") != best.rstrip("\n"))

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        return None


def _apply_diff(text: str, diff: str) -> str:
    """`text` (train_gpt.py) with a unified diff applied, in a scratch folder: the working copy is not touched."""
    with tempfile.TemporaryDirectory(prefix="pgolf-diff-") as tmp:
        folder = Path(tmp)
        (folder / TRAIN_SCRIPT).write_text(text, encoding="utf-8")
        (folder / "change.patch").write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
        files = git.git(folder, "apply", "--numstat", "change.patch", check=False)
        names = {line.split("\t")[-1] for line in files.splitlines() if line.strip()}
        if names != {TRAIN_SCRIPT}:
            raise ConfigError(f"the diff must change {TRAIN_SCRIPT} only (it names {sorted(names) or 'nothing'})")
        try:
            git.git(folder, "apply", "change.patch")
        except PgolfError as err:
            raise ConfigError(f"the diff does not apply to the current {TRAIN_SCRIPT}: {err}") from None
        return (folder / TRAIN_SCRIPT).read_text(encoding="utf-8")


def _save_edit(ws: Workspace, text: str, original: str | None, run_id: str = "") -> None:
    _edit_path(ws).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(_edit_path(ws), json.dumps({"text": text, "original": original, "run_id": run_id}) + "\n")


def _set_aside(ws: Workspace, diff: str | None = None) -> str:
    """The script to run (the working copy, or it with `diff` applied). The working copy, when it has
    uncommitted changes, is saved where a crash cannot lose it and restored to its committed state: the
    loop starts from a clean train_gpt.py, as `pgolf run` requires."""
    current = ws.train_script.read_text(encoding="utf-8")
    text = _apply_diff(current, diff) if diff else current
    dirty = bool(git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT))
    _save_edit(ws, text, current if dirty else None)
    if dirty:
        git.git(ws.root, "checkout", "-q", "--", TRAIN_SCRIPT)
    return text


def _restore_pending_edit(ws: Workspace) -> str | None:
    """Put the working copy back as the agent left it when its edit never reached a run (one that did
    is held by its run's row and tag)."""
    saved = _read_json(_edit_path(ws))
    _edit_path(ws).unlink(missing_ok=True)
    if not isinstance(saved, dict) or not isinstance(saved.get("original"), str):
        return None
    if saved.get("run_id") and any(r.run_id == saved["run_id"] for r in ws.ledger().rows()):
        return None
    if saved["original"] != ws.train_script.read_text(encoding="utf-8") \
            and not git.git(ws.root, "status", "--porcelain", "--", TRAIN_SCRIPT):
        atomic_write_text(ws.train_script, saved["original"])
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
            _set_aside(ws)
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


def run_experiment(ws: Workspace, *, description: str, diff: str | None = None,
                   emit: Emit = lambda _m: None) -> dict[str, Any]:
    """One experiment from the agent's edit, through `pgolf run`'s own loop; the decision as JSON.

    It is `run_loop(experiments=1)` with the agent's edit as the proposal: the same lock, recovery,
    noise floor, scheduler (slots, replicate runs), judge, ledger row, git moves and program.md.
    """
    from pgolf.loop.supervisor import run_loop

    description = " ".join(description.split())
    if not description:
        raise ConfigError("description: say in one line what the change tries")
    ws.config()  # a broken pgolf.toml: one line, before the edit is touched
    with _edit_lock(ws):
        text = _set_aside(ws, diff)
        try:
            summary = run_loop(ws, experiments=1, proposer=_EditProposer(ws, text, description),
                               proposer_kind=_EditProposer.kind, events=_Events(emit))
        except LockedError as err:
            _restore_pending_edit(ws)
            raise LockedError(_locked_message(err)) from None
        except BaseException:
            _restore_pending_edit(ws)
            raise
        _edit_path(ws).unlink(missing_ok=True)
    return _decision(ws, summary)


@contextlib.contextmanager
def _edit_lock(ws: Workspace) -> Any:
    """Two calls of one server (or two servers) never set aside the same edit at once."""
    import fcntl

    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = _edit_path(ws).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError("another run_experiment is already running in this workspace; wait for its "
                              "decision") from None
        yield


def _decision(ws: Workspace, summary: Any) -> dict[str, Any]:
    from pgolf.loop.refs import BEST_BRANCH, TAG_PREFIX

    runs = [r for r in summary.records if r.kind != "baseline"]
    if not runs:
        raise PgolfError(f"no experiment ran: {summary.stop_reason or 'nothing to run'}")
    final = runs[-1]
    rows = {r.run_id: r for r in ws.ledger().rows()}
    kept = final.status == "keep"
    decision = _read_json(ws.run(final.run_id).decision)
    return {
        "run_id": runs[0].run_id, "status": final.status, "kept": kept, "description": runs[0].description,
        "commit": final.commit, "val_bpb": final.val_bpb, "gain": final.gain, "reason": final.reason,
        "promoted": final.promoted, "verdict": final.verdict, "decision": decision,
        "runs": [{"run_id": r.run_id, "kind": r.kind, "status": r.status, "val_bpb": r.val_bpb,
                  "row": rows[r.run_id].as_dict() if r.run_id in rows else None} for r in runs],
        "noise_floor_runs": [r.run_id for r in summary.records if r.kind == "baseline"],
        "best_commit": git.git(ws.root, "rev-parse", BEST_BRANCH, check=False),
        "working_copy": ("train_gpt.py is the new best (pgolf/best)" if kept else
                         f"train_gpt.py was reset to pgolf/best; your change is kept at {TAG_PREFIX}{runs[0].run_id}"),
        "recovered": summary.recovered,
        "stop_reason": summary.stop_reason,
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


async def run_experiment_async(ws: Workspace, *, description: str, diff: str | None,
                               progress: Progress) -> dict[str, Any]:
    import anyio.to_thread

    work = functools.partial(run_experiment, ws, description=description, diff=diff, emit=_emitter(progress))
    return await anyio.to_thread.run_sync(work)


async def promote_async(ws: Workspace, run_id: str, *, confirm: bool, progress: Progress) -> dict[str, Any]:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(promote, ws, run_id, confirm=confirm,
                                                            emit=_emitter(progress)))

