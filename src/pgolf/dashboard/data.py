"""Everything a dashboard page shows, gathered from the workspace's files without writing any of them.

Nothing here creates, locks or rewrites a file: the ledger and budget are plain reads (their writers
replace or append atomically), the research database is opened read-only, and the loop's lock is looked
up in /proc/locks. A part that cannot be read (a broken pgolf.toml, a damaged budget.json, an unreadable
research database) becomes a note on the page, never an error page.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf import statefile, status
from pgolf.budget import BudgetEntry, BudgetManager, BudgetStatus
from pgolf.config import BudgetConfig, PgolfConfig
from pgolf.errors import DataError, PgolfError
from pgolf.ledger import (
    DamagedLine,
    LedgerRow,
    TierCorrelation,
    best_by_tier,
    tier_correlation,
)
from pgolf.loop.supervisor import LOCK_NAME
from pgolf.research.competitors import competitors_path, frontier, workspace_competitors
from pgolf.research.store import ResearchStore
from pgolf.rules import Ruleset, get_ruleset
from pgolf.workspace import Workspace

# Statuses whose val_bpb is a complete measurement (crash/timeout/aborted scores are partial at best).
MEASURED_STATUSES = status.MEASURED
# The files of a run folder the run page shows and serves (only these names, only when present).
RUN_FILES = ("command.txt", "diff.patch", "train.log", "result.json", "preflight.json", "decision.json",
             "promotion.json", "env.json", "handoff.md", "agent.log", "description.txt", "llm_reply.txt",
             "proposed.patch")
# Runs that never trained: they take no place on the experiment axis.
NOT_RUN_STATUSES = status.NOT_RUN
LOOP_LOCK = LOCK_NAME  # held with flock by `pgolf run` for its whole life
LOG_TAIL_LINES = 80
_LOG_TAIL_BYTES = 64_000
_DIFF_LIMIT_BYTES = 200_000
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Promotion:
    """A kept local run sent (or queued) to a remote tier, and the remote run when it exists."""

    local: LedgerRow
    remote: LedgerRow | None


@dataclass(frozen=True)
class InFlightRun:
    """A run the loop is working on now, with its progress read from the tail of its log."""

    run_id: str
    kind: str
    phase: str
    description: str
    step: int | None = None
    total_steps: int | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float | None = None
    slot: int | None = None


@dataclass(frozen=True)
class LoopState:
    """Whether an experiment loop holds the workspace, in words, and the runs it has in flight."""

    running: bool
    detail: str
    inflight: tuple[InFlightRun, ...] = ()


@dataclass(frozen=True)
class Section:
    """An optional part of the page (research, competitors): its rows, or why there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class DashboardData:
    """One snapshot of a workspace: what every page and the report show."""

    workspace: Path
    generated_at: float
    fingerprint: str
    ruleset: Ruleset
    rows: list[LedgerRow]
    damaged: list[DamagedLine]
    best: dict[str, LedgerRow]
    status_counts: dict[str, int]
    correlation: TierCorrelation
    last_promotion: Promotion | None
    budget: BudgetStatus | None
    budget_entries: list[BudgetEntry]
    loop: LoopState
    research: Section
    competitors: Section
    run_folders: frozenset[str]
    frontier: dict[str, Any] | None = None  # the leaderboard's best entry and this project's gap to it
    problems: list[str] = field(default_factory=list)

    @property
    def tiers(self) -> list[str]:
        """Tiers in the order they first appear in the ledger (local first when present)."""
        seen = list(dict.fromkeys(r.tier for r in self.rows))
        return sorted(seen, key=lambda t: (t != "local", seen.index(t)))

    @property
    def total_cost_usd(self) -> float:
        """The sum of the ledger's cost column."""
        return sum(r.cost_usd for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for the JSON endpoint."""
        return {
            "workspace": str(self.workspace),
            "generated_at": self.generated_at,
            "fingerprint": self.fingerprint,
            "ruleset": self.ruleset.as_dict(),
            "rows": [r.as_dict() for r in self.rows],
            "damaged_lines": [d.line_number for d in self.damaged],
            "best": {tier: row.as_dict() for tier, row in self.best.items()},
            "status_counts": self.status_counts,
            "correlation": {"pairs": self.correlation.pairs, "mean_offset": self.correlation.mean_offset,
                            "pearson_r": self.correlation.pearson_r},
            "last_promotion": None if self.last_promotion is None else {
                "local": self.last_promotion.local.as_dict(),
                "remote": self.last_promotion.remote.as_dict() if self.last_promotion.remote else None},
            "budget": self.budget.as_dict() if self.budget else None,
            "loop": {"running": self.loop.running, "detail": self.loop.detail,
                     "inflight": [asdict(r) for r in self.loop.inflight]},
            "research": {"count": len(self.research.rows), "note": self.research.note},
            "competitors": {"count": len(self.competitors.rows), "note": self.competitors.note},
            "frontier": self.frontier,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class RunDetail:
    """One run's folder: command, diff, the tail of its log, and its result."""

    run_id: str
    row: LedgerRow | None
    folder: Path
    exists: bool
    command: str | None = None
    diff: str | None = None
    diff_truncated: bool = False
    log_tail: str | None = None
    log_tail_lines: int = 0
    result: dict[str, Any] | None = None
    result_text: str | None = None
    files: tuple[str, ...] = ()  # the RUN_FILES present in the folder, in that order
    preflight: Any = None  # parsed preflight.json / decision.json / promotion.json (None when absent)
    decision: Any = None
    promotion: Any = None
    broken_json: tuple[str, ...] = ()  # names of those three that are present but not JSON
    handoff: str | None = None
    agent_log_tail: str | None = None
    agent_log_lines: int = 0


# -- the snapshot ------------------------------------------------------------------------------------

def gather(ws: Workspace, *, research_limit: int = 200) -> DashboardData:
    """Read everything a page shows from the workspace, writing nothing."""
    problems: list[str] = []
    config = _config(ws, problems)
    ruleset = _ruleset(config, problems)
    contents = ws.ledger().load()
    rows = contents.rows
    if contents.damaged:
        problems.append(f"results.tsv has {len(contents.damaged)} damaged line(s): "
                        + ", ".join(str(d.line_number) for d in contents.damaged[:10]))
    budget, entries = _budget(ws, config, problems)
    best = best_by_tier(rows)
    store = _research_store(ws)
    competitors, front = _competitors(ws, store, ruleset, best)
    return DashboardData(
        workspace=ws.root,
        generated_at=time.time(),
        fingerprint=fingerprint(ws),
        ruleset=ruleset,
        rows=rows,
        damaged=contents.damaged,
        best=best,
        status_counts=dict(Counter(r.status for r in rows).most_common()),
        correlation=tier_correlation(rows),
        last_promotion=last_promotion(rows),
        budget=budget,
        budget_entries=entries,
        loop=loop_state(ws),
        research=_research(store, research_limit),
        competitors=competitors,
        frontier=front,
        run_folders=frozenset(_run_folders(ws)),
        problems=problems,
    )


def _config(ws: Workspace, problems: list[str]) -> PgolfConfig | None:
    try:
        return ws.config()
    except PgolfError as err:
        problems.append(f"pgolf.toml: {err}")
        return None


def _ruleset(config: PgolfConfig | None, problems: list[str]) -> Ruleset:
    if config is None:
        problems.append("showing the default ruleset because pgolf.toml could not be read")
        return get_ruleset()
    return config.get_ruleset()


def _budget(ws: Workspace, config: PgolfConfig | None,
            problems: list[str]) -> tuple[BudgetStatus | None, list[BudgetEntry]]:
    settings = config.budget if config is not None else BudgetConfig()
    try:
        entries, status = BudgetManager(ws.budget_json, settings).peek()
    except (PgolfError, TypeError, ValueError) as err:
        problems.append(f"budget.json: {err}")
        return None, []
    return status, entries


def _run_folders(ws: Workspace) -> Iterator[str]:
    if ws.runs_dir.is_dir():
        yield from (p.name for p in ws.runs_dir.iterdir() if p.is_dir())


def fingerprint(ws: Workspace) -> str:
    """A short hash of the sizes and times of every file the pages read: it changes when they do."""
    paths = [ws.config_path, ws.results_tsv, ws.budget_json, ws.research_db,
             ws.research_db.with_name(ws.research_db.name + "-wal"), competitors_path(ws.state_dir),
             ws.runs_dir, ws.state_dir / LOOP_LOCK]
    parts = []
    for path in paths:
        try:
            st = path.stat()
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path.name}:-")
    loop = loop_state(ws)
    # A step of a run in flight changes the page (its loop card), so it changes the fingerprint too.
    parts.append(f"loop:{loop.running}:" + ",".join(f"{r.run_id}@{r.step}" for r in loop.inflight))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# -- ledger views --------------------------------------------------------------------------------

def last_promotion(rows: Iterable[LedgerRow]) -> Promotion | None:
    """The most recent local run marked promoted (yes, pending or refused), with its remote run."""
    rows = list(rows)
    remote_by_parent = {r.parent_run: r for r in rows if r.tier != "local" and r.parent_run}
    for row in reversed(rows):
        if row.tier == "local" and row.promoted in {"yes", "pending", "refused"}:
            return Promotion(row, remote_by_parent.get(row.run_id))
    return None


def pareto_front(rows: Iterable[LedgerRow], limit_bytes: int) -> list[LedgerRow]:
    """Measured runs under the artifact limit that no other run beats on both val_bpb and bytes."""
    points = sorted(
        (r for r in rows if r.status in MEASURED_STATUSES and r.val_bpb is not None
         and r.artifact_bytes is not None and r.artifact_bytes <= limit_bytes),
        key=lambda r: (r.artifact_bytes, r.val_bpb),
    )
    front: list[LedgerRow] = []
    for row in points:
        if not front or row.val_bpb < front[-1].val_bpb:  # type: ignore[operator]
            front.append(row)
    return front


def running_best(rows: Iterable[LedgerRow]) -> list[tuple[int, float]]:
    """(1-based ledger position, best scored val_bpb so far) at each position where the best improved."""
    best: float | None = None
    steps = []
    for position, row in enumerate(rows, start=1):
        if row.status in status.BEST_CANDIDATE and row.val_bpb is not None and (best is None or row.val_bpb < best):
            best = row.val_bpb
            steps.append((position, best))
    return steps


# -- the loop ------------------------------------------------------------------------------------

def loop_state(ws: Workspace) -> LoopState:
    """Whether `pgolf run` holds the workspace lock (found without taking any lock where possible),
    and, while it does, the runs it has in flight."""
    lock = ws.state_dir / LOOP_LOCK
    try:
        st = lock.stat()
    except FileNotFoundError:
        return LoopState(False, "no loop has run here yet")
    holder = _flock_holder(st)
    state = _probe_lock(lock) if holder is None else (
        LoopState(True, f"pgolf run (pid {holder}) holds the workspace lock") if holder
        else LoopState(False, "no loop is running"))
    if not state.running:
        return state
    return LoopState(True, state.detail, tuple(inflight_runs(ws)))


def inflight_runs(ws: Workspace) -> list[InFlightRun]:
    """The runs the loop has in flight (one record per slot in `Workspace.running_dir`), with step and
    ETA from each run's log. Only read: a damaged record is skipped here and left for the loop to repair.
    """
    folder = ws.running_dir
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        text, _ = _read_limited(path, 100_000)
        record = _parse_json_object(text)
        if record is not None and isinstance(record.get("run_id"), str) and valid_run_id(record["run_id"]):
            runs.append(_with_progress(ws, record))
    return runs


def _with_progress(ws: Workspace, record: dict[str, Any]) -> InFlightRun:
    from pgolf.loop.progress import ProgressTracker

    run = ws.run(record["run_id"])
    tail, _ = _log_tail(run.log)
    tracker = ProgressTracker()
    for line in (tail or "").splitlines():
        tracker.feed(line)
    p = tracker.progress
    try:
        elapsed = max(time.time() - run.command.stat().st_mtime, 0.0)
    except OSError:
        elapsed = None
    return InFlightRun(run_id=record["run_id"], kind=str(record.get("kind", "")),
                       phase=str(record.get("phase", "")), description=str(record.get("description", "")),
                       step=p.step or None, total_steps=p.total_steps or None, eta_seconds=p.eta_seconds,
                       elapsed_seconds=elapsed,
                       slot=record["slot"] if isinstance(record.get("slot"), int) else None)


def _flock_holder(st: os.stat_result) -> str | None:
    """From Linux's /proc/locks, passively: the pid holding a flock on this file, "" if none,
    None when /proc/locks cannot be read (another OS)."""
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 25896 fe:00:2146721 0 EOF"; blocked waiters are marked "->".
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return fields[4]
    return ""


def _probe_lock(lock: Path) -> LoopState:
    """Where /proc/locks is missing: try a shared non-blocking flock and let go at once."""
    with open(lock, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return LoopState(True, "pgolf run holds the workspace lock")
            raise
        fcntl.flock(fh, fcntl.LOCK_UN)
    return LoopState(False, "no loop is running")


# -- research and competitors ------------------------------------------------------------------------

@contextmanager
def _read_only_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that writes nothing: `immutable` when no writer is active, else `mode=ro`.

    A `mode=ro` connection to a WAL database creates -wal and -shm files when they are missing, so it
    is used only while a writer already has them open; otherwise the file is read as immutable.
    """
    active = path.with_name(path.name + "-wal").exists()
    db = sqlite3.connect(f"{path.resolve().as_uri()}?{'mode=ro' if active else 'immutable=1'}",
                         uri=True, timeout=5)
    db.row_factory = sqlite3.Row
    try:
        yield db
    finally:
        db.close()


class _ReadOnlyStore(ResearchStore):
    """The store's queries over a read-only connection: no schema, no WAL switch, no file made."""

    def __init__(self, path: Path) -> None:  # deliberately skips creating the schema
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with _read_only_sqlite(self.path) as db:
            yield db


def _research_store(ws: Workspace) -> _ReadOnlyStore | None:
    return _ReadOnlyStore(ws.research_db) if ws.research_db.is_file() else None


def _research(store: _ReadOnlyStore | None, limit: int) -> Section:
    if store is None:
        return Section(note="no research yet: `pgolf research fetch` fills it (papers, PRs, posts), then "
                            "`pgolf research grade` grades it")
    try:
        items = store.list()
    except sqlite3.Error as err:
        return Section(note=f"research database could not be read: {err}")
    graded = sorted(items, key=lambda i: (i.tier is None, i.tier or "", -(i.grade_score or 0.0), i.title))
    rows = [{
        "id": i.id, "tier": i.tier or "", "score": i.grade_score, "title": i.title, "url": i.url,
        "source": i.source, "kind": i.kind, "published": (i.published or "")[:10],
        "flags": ", ".join(i.flags),
    } for i in graded[:limit]]
    if not rows:
        return Section(note="the research database holds no items yet: run `pgolf research fetch`")
    return Section(rows=rows, note=f"showing the first {len(rows)} of {len(items)}" if len(items) > limit else "")


def project_best(best: dict[str, LedgerRow]) -> LedgerRow | None:
    """This project's entry for the leaderboard: the best remote-tier run, else the best local one."""
    remote = [r for tier, r in best.items() if tier != "local"]
    if remote:
        return min(remote, key=lambda r: r.val_bpb)  # type: ignore[arg-type,return-value]
    return best.get("local")


def _competitors(ws: Workspace, store: _ReadOnlyStore | None, ruleset: Ruleset,
                 best: dict[str, LedgerRow]) -> tuple[Section, dict[str, Any] | None]:
    """The leaderboard of the workspace's track with this project's best ranked in it, and the frontier."""
    try:
        entries = workspace_competitors(ws.state_dir, store)
    except (PgolfError, sqlite3.Error) as err:
        return Section(note=f"competitors could not be read: {err}"), None
    same_track = [e for e in entries if e.track == ruleset.name] or entries
    if not same_track:
        return Section(note="no competitors known yet: `pgolf competitors scan PATH` reads a clone of "
                            "openai/parameter-golf (or its records/ or README.md); `pgolf research fetch "
                            "--sources github_prs` adds the records of its pull requests"), None
    rows = [{"name": e.name, "author": e.author or "", "val_bpb": e.val_bpb, "date": e.date or "",
             "where": e.pr_or_folder, "state": e.state or "", "source": e.source, "ours": False}
            for e in same_track]
    ours = project_best(best)
    note = ""
    if ours is not None:
        rows.append({"name": f"this project: {ours.description or ours.run_id}", "author": "",
                     "val_bpb": ours.val_bpb, "date": ours.finished_at[:10], "where": ours.run_id,
                     "state": ours.tier, "source": "results.tsv", "ours": True})
        if ours.tier == "local":
            note = "this project's row is a local-tier score, not comparable to 8×H100 records"
    rows.sort(key=lambda r: (r["val_bpb"] is None, r["val_bpb"] or 0.0))
    top = frontier(same_track).get(same_track[0].track)
    front = None if top is None else {"name": top.name, "val_bpb": top.val_bpb, "author": top.author or "",
                                      "gap": None if ours is None else ours.val_bpb - top.val_bpb}  # type: ignore[operator]
    return Section(rows=rows, note=note), front


# -- one run -------------------------------------------------------------------------------------

def valid_run_id(run_id: str) -> bool:
    """True for a name that can only mean a folder directly inside .pgolf/runs/."""
    return bool(_RUN_ID.match(run_id)) and ".." not in run_id


def run_detail(ws: Workspace, run_id: str, rows: Iterable[LedgerRow] | None = None) -> RunDetail | None:
    """The folder of one run, or None when neither the ledger nor the runs folder knows the id."""
    if not valid_run_id(run_id):
        return None
    rows = ws.ledger().rows() if rows is None else rows
    row = next((r for r in rows if r.run_id == run_id), None)
    folder = ws.run_dir(run_id)
    if row is None and not folder.is_dir():
        return None
    if not folder.is_dir():
        return RunDetail(run_id, row, folder, exists=False)
    diff, truncated = _read_limited(folder / "diff.patch", _DIFF_LIMIT_BYTES)
    tail, tail_lines = _log_tail(folder / "train.log")
    result_text, _ = _read_limited(folder / "result.json", _DIFF_LIMIT_BYTES)
    result = _parse_json_object(result_text)
    command, _ = _read_limited(folder / "command.txt", 10_000)
    parsed, broken = {}, []
    for name in ("preflight.json", "decision.json", "promotion.json"):
        text, _ = _read_limited(folder / name, _DIFF_LIMIT_BYTES)
        parsed[name] = _parse_json(text)
        if text is not None and parsed[name] is None:
            broken.append(name)
    handoff, _ = _read_limited(folder / "handoff.md", _DIFF_LIMIT_BYTES)
    agent_tail, agent_lines = _log_tail(folder / "agent.log")
    return RunDetail(run_id, row, folder, exists=True, command=command, diff=diff, diff_truncated=truncated,
                     log_tail=tail, log_tail_lines=tail_lines, result=result,
                     result_text=None if result is not None else result_text,
                     files=tuple(n for n in RUN_FILES if (folder / n).is_file()),
                     preflight=parsed["preflight.json"], decision=parsed["decision.json"],
                     promotion=parsed["promotion.json"], broken_json=tuple(broken), handoff=handoff,
                     agent_log_tail=agent_tail, agent_log_lines=agent_lines)


def run_file(ws: Workspace, run_id: str, name: str) -> Path | None:
    """The path of one of a run's known files when it exists."""
    if name not in RUN_FILES or not valid_run_id(run_id):
        return None
    path = ws.run_dir(run_id) / name
    return path if path.is_file() else None


def _read_limited(path: Path, limit: int) -> tuple[str | None, bool]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None, False
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _log_tail(path: Path) -> tuple[str | None, int]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - _LOG_TAIL_BYTES))
            data = fh.read()
    except OSError:
        return None, 0
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > _LOG_TAIL_BYTES:
        lines = lines[1:]  # the first line read may be cut in the middle
    tail = lines[-LOG_TAIL_LINES:]
    return "\n".join(tail), len(tail)


def _parse_json(text: str | None) -> Any:
    """A JSON value, or None when there is no text or it is not JSON (NaN and Infinity refused)."""
    if text is None:
        return None
    try:  # the state-file guards: a deeply nested or NaN-bearing file is shown as text instead
        return statefile.loads_json(text, "result.json")
    except DataError:
        return None


def _parse_json_object(text: str | None) -> dict[str, Any] | None:
    value = _parse_json(text)
    return value if isinstance(value, dict) else None
