"""results.tsv: one row per run, written only by pgolf, appended under an exclusive lock."""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf import status as st
from pgolf.atomic import atomic_write_text

# The first nine are what other Parameter Golf autoresearch tools write, unchanged.
COLUMNS: tuple[str, ...] = (
    "commit", "tier", "val_bpb", "artifact_bytes", "memory_gb", "status", "promoted", "cost_usd",
    "description", "source_item", "run_id", "parent_run", "seed", "steps", "train_seconds",
    "finished_at",
)
HEADER = "\t".join(COLUMNS) + "\n"

PROMOTED_VALUES = frozenset({"", "no", "pending", "yes", "refused"})


@dataclass
class LedgerRow:
    """One run. Empty optional fields are written as empty cells."""

    commit: str
    tier: str
    val_bpb: float | None
    artifact_bytes: int | None
    memory_gb: float | None
    status: str
    promoted: str = "no"
    cost_usd: float = 0.0
    description: str = ""
    source_item: str = ""
    run_id: str = ""
    parent_run: str = ""
    seed: int | None = None
    steps: int | None = None
    train_seconds: float | None = None
    finished_at: str = ""

    def __post_init__(self) -> None:
        if self.status not in st.ALL:
            raise ValueError(f"unknown status {self.status!r}")
        if self.promoted not in PROMOTED_VALUES:
            raise ValueError(f"unknown promoted value {self.promoted!r}")

    def to_line(self) -> str:
        """The row as one tab-separated line, newline included."""
        cells = [_format_cell(getattr(self, c)) for c in COLUMNS]
        return "\t".join(cells) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


@dataclass(frozen=True)
class DamagedLine:
    """A line the reader could not load, reported rather than hidden."""

    line_number: int
    reason: str
    text: str


@dataclass
class LedgerContents:
    """Every complete row, and every line that was not."""

    rows: list[LedgerRow]
    damaged: list[DamagedLine]


@dataclass(frozen=True)
class TierCorrelation:
    """Paired local/remote runs: how local scores transfer to the remote tier."""

    pairs: int
    mean_offset: float | None  # remote minus local val_bpb
    pearson_r: float | None
    points: tuple[tuple[float, float], ...] = ()


def clean_text(text: str) -> str:
    """A cell without tabs, newlines or other control characters."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 8)) if math.isfinite(value) else ""
    return clean_text(str(value))


_MAX_LEDGER_BYTES = 4 * 1024**3


def _finite(cell: str) -> float:
    value = float(cell)
    if not math.isfinite(value):  # a nan or -inf val_bpb would become the best run
        raise ValueError(cell)
    return value


def _int_or_none(cell: str) -> int | None:
    return int(cell) if cell else None


def _float_or_none(cell: str) -> float | None:
    return _finite(cell) if cell else None


def _cost(cell: str) -> float:
    return _finite(cell) if cell else 0.0


# One parser per column, in COLUMNS order (None: the text as it is); a table, not a per-cell lookup,
# because `pgolf status` parses every row of a 10,000-row ledger on each call.
_NUMBER_PARSERS = {"artifact_bytes": _int_or_none, "seed": _int_or_none, "steps": _int_or_none,
                   "val_bpb": _float_or_none, "memory_gb": _float_or_none, "train_seconds": _float_or_none,
                   "cost_usd": _cost}
_PARSERS = tuple(_NUMBER_PARSERS.get(name) for name in COLUMNS)


def parse_line(line: str) -> LedgerRow:
    """Parse one data line (without its newline); raises ValueError with the reason."""
    cells = line.split("\t")
    if len(cells) != len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} columns, found {len(cells)}")
    for index, parse in enumerate(_PARSERS):
        if parse is not None:
            try:
                cells[index] = parse(cells[index])
            except ValueError:
                raise ValueError(f"column {COLUMNS[index]}: not a number: {cells[index]!r}") from None
    return LedgerRow(*cells)  # LedgerRow's fields are COLUMNS, in order


class Ledger:
    """The results.tsv of one workspace."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def create(self) -> None:
        """Write the header-only file if it does not exist yet."""
        if not self.path.exists():
            with open(self.path, "x", encoding="utf-8") as fh:
                fh.write(HEADER)

    @contextmanager
    def _locked(self, flags: int) -> Iterator[int]:
        """An fd of the current results.tsv, held under an exclusive lock.

        `update_promoted` replaces the file by a rename; a writer that opened the old file and then
        waited for the lock would write into a deleted copy. So after locking, check the fd is still
        the file at the path, else open again.
        """
        while True:
            fd = os.open(self.path, flags | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, row: LedgerRow) -> None:
        """Append one row under an exclusive lock, flushed and fsynced before returning."""
        line = row.to_line().encode("utf-8")
        with self._locked(os.O_RDWR | os.O_APPEND) as fd:
            size = os.fstat(fd).st_size
            prefix = b""
            if size == 0:
                prefix = HEADER.encode()
            else:
                # A writer killed mid-line left no newline: end that damaged line so it stays alone.
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    prefix = b"\n"
            os.write(fd, prefix + line)
            os.fsync(fd)

    def load(self) -> LedgerContents:
        """Every complete row; damaged lines are listed, never fatal."""
        rows: list[LedgerRow] = []
        damaged: list[DamagedLine] = []
        # A folder or a pipe where results.tsv belongs is one error line (a pipe would block forever).
        data = statefile.read_bytes(self.path, max_bytes=_MAX_LEDGER_BYTES, missing_ok=True)
        if data is None:
            return LedgerContents(rows, damaged)
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        complete = text.endswith("\n")
        if complete:
            lines = lines[:-1]
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.split("\t")[: len(COLUMNS)] == list(COLUMNS):
                continue
            if not line.strip():
                continue
            if number == len(lines) and not complete:
                damaged.append(DamagedLine(number, "incomplete last line (no newline)", line))
                continue
            try:
                rows.append(parse_line(line))
            except ValueError as err:
                damaged.append(DamagedLine(number, str(err), line))
        return LedgerContents(rows, damaged)

    def rows(self) -> list[LedgerRow]:
        """The complete rows only."""
        return self.load().rows

    def update_promoted(self, run_id: str, promoted: str) -> bool:
        """Set `promoted` on the row of `run_id`, rewriting the file atomically under the lock."""
        if promoted not in PROMOTED_VALUES:
            raise ValueError(f"unknown promoted value {promoted!r}")
        return self.update(run_id, promoted=promoted)

    def update(self, run_id: str, **changes: Any) -> bool:
        """Change fields of the row of `run_id` (a judged candidate's status and description, a
        promotion's state), rewriting the file atomically under the lock; False when there is no such row."""
        with self._locked(os.O_RDWR):
            with open(self.path, encoding="utf-8", newline="") as fh:
                lines = fh.readlines()
            found = False
            for i, line in enumerate(lines):
                if not line.endswith("\n") or line == HEADER:
                    continue
                try:
                    row = parse_line(line[:-1])
                except ValueError:
                    continue
                if row.run_id == run_id:
                    for name, value in changes.items():
                        setattr(row, name, value)
                    row.__post_init__()  # the same checks as a new row
                    if "description" in changes:
                        row.description = clean_text(row.description)
                    lines[i] = row.to_line()
                    found = True
            if found:
                atomic_write_text(self.path, "".join(lines))
            return found


# Queries: plain functions over rows, so callers can filter first.

def best_by_tier(rows: Iterable[LedgerRow]) -> dict[str, LedgerRow]:
    """The lowest-val_bpb scored row (baseline or keep) of each tier."""
    best: dict[str, LedgerRow] = {}
    for row in rows:
        if row.status not in st.BEST_CANDIDATE or row.val_bpb is None:
            continue
        current = best.get(row.tier)
        if current is None or row.val_bpb < current.val_bpb:  # type: ignore[operator]
            best[row.tier] = row
    return best


def last_runs(rows: Iterable[LedgerRow], n: int, tier: str | None = None) -> list[LedgerRow]:
    """The last `n` rows, optionally of one tier, oldest first."""
    selected = [r for r in rows if tier is None or r.tier == tier]
    return selected[-n:] if n > 0 else []


def failed_runs(rows: Iterable[LedgerRow]) -> list[LedgerRow]:
    """Rows that ended as discard, crash, timeout or oversize."""
    return [r for r in rows if r.status in st.UNSUCCESSFUL]


def proven_techniques(rows: Iterable[LedgerRow]) -> list[str]:
    """Descriptions of kept rows that were promoted: what worked where it counts."""
    return [r.description for r in rows if r.status == st.Status.KEEP and r.promoted == "yes"]


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def tier_correlation(rows: Iterable[LedgerRow]) -> TierCorrelation:
    """Pairs of a local run and the remote run whose parent_run it is."""
    rows = list(rows)
    local = {r.run_id: r for r in rows if r.tier == "local" and r.run_id and r.val_bpb is not None}
    points = [
        (local[r.parent_run].val_bpb, r.val_bpb)
        for r in rows
        if r.tier != "local" and r.parent_run in local and r.val_bpb is not None
    ]
    if not points:
        return TierCorrelation(0, None, None)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    offset = sum(y - x for x, y in points) / len(points)
    return TierCorrelation(len(points), offset, _pearson(xs, ys), tuple(points))  # type: ignore[arg-type]


def row_field_names() -> list[str]:
    """The dataclass field names, which equal COLUMNS (checked by a test)."""
    return [f.name for f in fields(LedgerRow)]
