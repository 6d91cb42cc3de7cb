"""Competitors' scores: records folders, PRs, a local clone, and the challenge README's leaderboard.

A records folder's score comes from its `submission.json` first, from patterns in its README next, from
the final score of its training logs after that, and from its PR title last. A scan reports the folders it
could not score at all and the files it could not read (`ScanReport`). Scanned entries are kept in
`.pgolf/competitors.json` (see `CompetitorFile`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.errors import DataError
from pgolf.logs import parse_log
from pgolf.statefile import NUMBER, STRING

RECORD_TRACK = "track_10min_16mb"
NON_RECORD_TRACK = "track_non_record_16mb"
TRACKS = (RECORD_TRACK, NON_RECORD_TRACK)

# Where a score came from, most trusted first; used to pick between duplicates.
SOURCE_RANK = {"submission.json": 0, "challenge-readme": 1, "readme": 2, "log": 3, "pr-title": 4}

# A plausible val_bpb: the frontier is near 1.06, byte-level models reach 2.5.
_NUMBER = r"([0-3]\.\d{3,})"
_MIN_BPB, _MAX_BPB = 0.5, 4.0


@dataclass
class CompetitorEntry:
    """One competitor's submission and its score."""

    pr_or_folder: str
    author: str | None
    name: str
    val_bpb: float | None
    date: str | None
    track: str
    state: str | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompetitorEntry:
        """Inverse of `as_dict`, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def normalize_track(value: str | None) -> str | None:
    """One of TRACKS for the many spellings records use ("10min_16mb", "non-record-16mb", ...)."""
    if not value:
        return None
    text = value.lower().replace("-", "_")
    if "non_record" in text or "unlimited" in text:
        return NON_RECORD_TRACK
    if "10min" in text:
        return RECORD_TRACK
    return None


def _plausible(text: str) -> float | None:
    value = float(text)
    return value if _MIN_BPB <= value <= _MAX_BPB else None


# -- README patterns --------------------------------------------------------------------------------

# Highest confidence: the exact metric line the official script prints, quoted in the README.
_EXACT = re.compile(r"final_\w*?_exact\s+val_bpb[:=]\s*" + _NUMBER)
# A labelled score: "val_bpb: 1.1194", "**val_bpb = 1.0912**", "val bpb: 1.08563", "val_var_bpb: 1.1465".
_LABELLED = re.compile(r"val[_ ](?:\w+_)?bpb\**\s*(?:\([^)\n]{0,40}\))?\s*\**\s*[:=]\s*\**\s*" + _NUMBER, re.I)
# A bold table cell after a bold label naming the score: "|**... val_bpb (sliding)**|**1.1630**|".
_BOLD_CELL = re.compile(r"\*\*[^*\n|]*bpb[^*\n|]*\*\*\s*\|\s*\*\*" + _NUMBER + r"\*\*", re.I)
# A bold number followed by its unit: "**1.3281 val_bpb**", "(**1.3595 BPB**)".
_BOLD_UNIT = re.compile(r"\*\*" + _NUMBER + r"\s*(?:val_)?bpb\*\*", re.I)
# A mean printed in a results block: "mean: 1.1928" on a line of its own.
_MEAN_LINE = re.compile(r"^\s*mean\s*[:=]\s*" + _NUMBER + r"\s*$", re.I | re.M)
# A number in a heading: "# 11L + Efficient Partial XSA (val_bpb: 1.1307)", "# ...: 1.1971 BPB — ...".
_HEADING = re.compile(r"^#{1,3} .*?" + _NUMBER + r"\s*(?:bpb)?\b", re.I | re.M)

_HEADLINE_LINES = 12
_FIRST_NUMBER = re.compile(_NUMBER)
_MEAN_LABEL = re.compile(r"^(?:mean|avg|average)\b", re.I)
_NOT_THE_SCORE = re.compile(r"pre|delta|gain|\u0394|std|loss|nats", re.I)


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table as (header cells, body rows); separator rows dropped."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    block: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(_cells(line))
            continue
        if len(block) >= 2:
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            tables.append((block[0], body))
        block = []
    return tables


def _plain(cell: str) -> str:
    return cell.replace("**", "").strip()


def _score_column(header: list[str]) -> int | None:
    """The column holding the score: a bpb column that is not a pre-quant value, delta or spread;
    an emphasised one if any, else the rightmost (later pipeline stages are further right)."""
    columns = [i for i, h in enumerate(header) if "bpb" in h.lower() and not _NOT_THE_SCORE.search(h)]
    bold = [i for i in columns if "**" in header[i]]
    return (bold or columns or [None])[-1]


def _cell_value(row: list[str], column: int) -> float | None:
    if column >= len(row):
        return None
    match = _FIRST_NUMBER.search(_plain(row[column]))
    return _plausible(match.group(1)) if match else None


def _seed_table_value(text: str, *, emphasised_seed: bool) -> float | None:
    """From a per-seed results table: the row of an emphasised (submitted) seed, or the mean row."""
    for header, rows in _tables(text):
        if not header or "seed" not in header[0].lower():
            continue
        column = _score_column(header)
        if column is None:
            continue
        for row in rows:
            first = row[0]
            chosen = (first.startswith("**") and _plain(first).isdigit()) if emphasised_seed \
                else bool(_MEAN_LABEL.match(_plain(first)))
            if chosen and (value := _cell_value(row, column)) is not None:
                return value
    return None


def _seed_mean_value(text: str) -> float | None:
    """The mean row (stated, else computed) of a per-seed table's column named exactly `val_bpb`.

    A README's headline may quote another metric (sliding window, TTT); a column with the metric's
    exact name over numbered seeds is what the submission reports.
    """
    for header, rows in _tables(text):
        if not header or "seed" not in _plain(header[0]).lower():
            continue
        names = [_plain(h).lower() for h in header]
        if "val_bpb" not in names:
            continue
        column = names.index("val_bpb")
        stated = [v for r in rows if _MEAN_LABEL.match(_plain(r[0])) and (v := _cell_value(r, column))]
        if stated:
            return stated[0]
        values = [v for r in rows if _plain(r[0]).isdigit() and (v := _cell_value(r, column)) is not None]
        if values:
            return sum(values) / len(values)
    return None


def _metric_table_value(text: str) -> float | None:
    """From a two-column "metric | value" table: the last bpb row that is not a pre-quant value."""
    for _header, rows in _tables(text):
        labelled = [r for r in rows if len(r) == 2 and "bpb" in r[0].lower()
                    and not _NOT_THE_SCORE.search(r[0])]
        values = [v for r in labelled if (v := _cell_value(r, 1)) is not None]
        if values:
            return values[-1]
    return None


def readme_val_bpb(text: str) -> float | None:
    """The score a records README states, by the most trusted rule that finds one.

    In order: the exact metric line of the official script; the row of a per-seed table whose seed is
    emphasised (the submitted run); the mean of a per-seed table's `val_bpb` column; a labelled score, bold score or numbered heading in the first
    lines; a per-seed table's mean row; a metric/value table; a labelled or bold score anywhere.
    """
    text = text.replace("\\_", "_").replace("\\~", "~")
    match = _EXACT.search(text)
    if match:
        return _plausible(match.group(1))
    for finder in (lambda: _seed_table_value(text, emphasised_seed=True), lambda: _seed_mean_value(text)):
        value = finder()
        if value is not None:
            return value
    lines = [line for line in text.splitlines() if line.strip()]
    headline = "\n".join(lines[:_HEADLINE_LINES])
    for pattern in (_LABELLED, _BOLD_UNIT, _HEADING):
        match = pattern.search(headline)
        if match and _plausible(match.group(1)):
            return float(match.group(1))
    for finder in (lambda: _seed_table_value(text, emphasised_seed=False),
                   lambda: _metric_table_value(text)):
        value = finder()
        if value is not None:
            return value
    for pattern in (_LABELLED, _BOLD_CELL, _MEAN_LINE, _BOLD_UNIT):
        match = pattern.search(text)
        if match and _plausible(match.group(1)):
            return float(match.group(1))
    return None


_TITLE_NUMBER = re.compile(r"(?:bpb|val_bpb)\s*[:=]?\s*" + _NUMBER + r"|" + _NUMBER + r"\s*(?:bpb)?", re.I)


def title_val_bpb(title: str) -> float | None:
    """A score in a PR or record title ("Record: ... (val_bpb 1.1122)", "... 1.0611")."""
    for match in _TITLE_NUMBER.finditer(title):
        value = _plausible(match.group(1) or match.group(2))
        if value is not None:
            return value
    return None


def _readme_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None


_AUTHOR_LINE = re.compile(r"\*\*Author:?\*\*:?\s*([^\n(\[]+)|^Author:\s*([^\n(\[]+)", re.M)
# What follows a name on its line: a separator, then a date ("-- April 2026", ", 2026-04-05", "| Mar 2026").
# A hyphen inside a name ("Jean-Marc") has no space before it, so it is never taken for a separator.
_AUTHOR_TAIL = re.compile(
    r"(?:\s+(?:--?|[\u2013\u2014|\u00b7])|,)\s*(?:\d|(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may"
    r"|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b).*$", re.I)


def _readme_author(text: str) -> str | None:
    match = _AUTHOR_LINE.search(text)
    if not match:
        return None
    name = _AUTHOR_TAIL.sub("", match.group(1) or match.group(2))
    return name.strip(" *-") or None


_FOLDER_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


# -- records folders --------------------------------------------------------------------------------

def record_from_files(
    folder: str, track: str, *, submission: dict[str, Any] | None, readme: str | None,
    pr_title: str | None = None, state: str | None = None, log_score: Callable[[], float | None] | None = None,
) -> CompetitorEntry | None:
    """An entry from a records folder's files: submission.json, then README, then logs, then PR title.

    `log_score` is called only when neither submission.json nor the README gives a score (logs are
    large). None when nothing at all describes the folder.
    """
    name_of_folder = folder.rstrip("/").rsplit("/", 1)[-1]
    submission = submission or {}
    value: float | None = None
    source = ""
    raw = submission.get("val_bpb")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        value, source = float(raw), "submission.json"  # a NaN or inf is no score: never the frontier
    if value is None and readme:
        value = readme_val_bpb(readme)
        source = "readme" if value is not None else ""
    if value is None and log_score is not None:
        value = log_score()
        source = "log" if value is not None else ""
    if value is None and pr_title:
        value = title_val_bpb(pr_title)
        source = "pr-title" if value is not None else ""
    if value is None and not submission and not readme:
        return None
    date_match = _FOLDER_DATE.match(name_of_folder)
    date = str(submission.get("date") or "")[:10] or (date_match.group(1) if date_match else None)
    author = submission.get("github_id") or submission.get("author") or (readme and _readme_author(readme))
    name = (submission.get("name") or (readme and _readme_title(readme)) or pr_title or name_of_folder)
    return CompetitorEntry(
        pr_or_folder=folder, author=str(author).strip() if author else None, name=str(name).strip(),
        val_bpb=value, date=date, track=normalize_track(track) or normalize_track(submission.get("track"))
        or RECORD_TRACK, state=state, source=source or "none",
    )


@dataclass
class SkippedFolder:
    """A records folder a scan found but could not make an entry of, and why."""

    folder: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """Plain mapping for JSON output."""
        return asdict(self)


@dataclass
class ScanReport:
    """What a scan found: entries, folders it had to skip, and files it could not read."""

    entries: list[CompetitorEntry]
    skipped: list[SkippedFolder] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _read_submission(path: Path, warnings: list[str]) -> dict[str, Any] | None:
    """A submission.json's object; None when absent, and a warning naming the file when unusable."""
    try:
        # finite=False: a NaN score is dropped by record_from_files, the rest of the file still counts.
        return statefile.load_json(path, missing=None, finite=False, want=dict)
    except DataError as err:
        warnings.append(f"{err}; scored from the README or logs instead")
        return None


def log_val_bpb(folder: Path) -> float | None:
    """The final score of a records folder's training logs: `train.log` when there is one, else the
    mean over its `*.log` files (one per seed, as submissions report the seed mean)."""
    logs = [folder / "train.log"] if (folder / "train.log").is_file() else sorted(folder.glob("*.log"))
    scores = []
    for path in logs:
        with contextlib.suppress(DataError):
            if (value := parse_log(path).val_bpb) is not None and _MIN_BPB <= value <= _MAX_BPB:
                scores.append(value)
    return sum(scores) / len(scores) if scores else None


def scan_record_folder(folder: Path, *, label: str | None = None, use_json: bool = True,
                       use_logs: bool = True, track: str | None = None,
                       warnings: list[str] | None = None) -> CompetitorEntry | None:
    """The entry of one records folder on disk; None when no submission.json, README or scored log
    describes it. Unreadable files are reported in `warnings`."""
    submission = _read_submission(folder / "submission.json", warnings if warnings is not None else []) \
        if use_json else None
    readme_path = folder / "README.md"
    readme = readme_path.read_text(encoding="utf-8", errors="replace") if readme_path.is_file() else None
    return record_from_files(
        label or folder.name, track or folder.parent.name, submission=submission, readme=readme,
        log_score=(lambda: log_val_bpb(folder)) if use_logs else None,
    )


def _skip_reason(folder: Path) -> str:
    files = sorted(p.name for p in folder.iterdir())
    listing = ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
    return ("no usable submission.json or README.md, and no training log with a final val_bpb"
            + (f" (has {listing})" if files else " (empty)"))


def record_folders(root: Path) -> list[tuple[Path, str]]:
    """Every `<track>/<record>` folder under a records tree, a clone, or a single track folder."""
    root = Path(root)
    candidates = [root / "records"] if (root / "records").is_dir() else [root]
    found: list[tuple[Path, str]] = []
    for base in candidates:
        tracks = [base] if normalize_track(base.name) else [p for p in sorted(base.iterdir())
                                                             if p.is_dir() and normalize_track(p.name)]
        for track_dir in tracks:
            found += [(p, track_dir.name) for p in sorted(track_dir.iterdir()) if p.is_dir()]
    return found


def scan_records_tree(root: Path, *, use_json: bool = True, use_logs: bool = True) -> ScanReport:
    """Entries for every records folder under `root` (a records tree or a clone of the challenge repo);
    a folder nothing describes is listed in `skipped` with the reason, never dropped silently."""
    report = ScanReport(entries=[])
    for folder, track in record_folders(Path(root)):
        label = f"records/{track}/{folder.name}"
        entry = scan_record_folder(folder, label=label, use_json=use_json, use_logs=use_logs, track=track,
                                   warnings=report.warnings)
        if entry is None:
            report.skipped.append(SkippedFolder(label, _skip_reason(folder)))
        else:
            report.entries.append(entry)
    return report


# -- the challenge README ---------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)]+)\)")
_PR_URL = re.compile(r"github\.com/([\w.-]+/[\w.-]+)/pull/(\d+)")
_RECORD_PATH = re.compile(r"(records/track_[\w-]+/[^/)\s]+)")
_TABLE_HEADER = re.compile(r"^\|\s*Run\s*\|\s*Score\s*\|", re.I)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _info_target(info: str) -> str:
    for link in _LINK.findall(info):
        pr = _PR_URL.search(link)
        if pr:
            return f"PR #{pr.group(2)}"
        path = _RECORD_PATH.search(link)
        if path:
            return path.group(1)
    return info


def parse_challenge_readme(text: str) -> list[CompetitorEntry]:
    """Every row of the leaderboard tables: the first is the record track, the next the non-record one."""
    entries: list[CompetitorEntry] = []
    lines = text.splitlines()
    table_index = -1
    i = 0
    while i < len(lines):
        if not _TABLE_HEADER.match(lines[i]):
            i += 1
            continue
        table_index += 1
        track = TRACKS[min(table_index, len(TRACKS) - 1)]
        header = [c.lower() for c in _cells(lines[i])]
        i += 2  # header and separator
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            row = dict(zip(header, _cells(lines[i]), strict=False))
            i += 1
            try:
                value = float(row.get("score", ""))
            except ValueError:
                continue
            entries.append(CompetitorEntry(
                pr_or_folder=_info_target(row.get("info", "")), author=row.get("author") or None,
                name=row.get("run", ""), val_bpb=value, date=row.get("date") or None, track=track,
                state="merged", source="challenge-readme",
            ))
    if table_index < 0:
        raise DataError("no leaderboard table (a `| Run | Score | ...` header) found")
    return entries


# -- scanning any path ------------------------------------------------------------------------------

def scan_path(path: Path) -> ScanReport:
    """Competitors from a records tree, a clone of the challenge repo, or the challenge README."""
    path = Path(path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise DataError(f"{path}: cannot read ({err.strerror})") from None
        try:
            return ScanReport(entries=parse_challenge_readme(text))
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    report = scan_records_tree(path)
    readme = path / "README.md"
    if readme.is_file() and (path / "records").is_dir():
        # A clone whose README lost its tables still has its records.
        with contextlib.suppress(DataError):
            report.entries += parse_challenge_readme(readme.read_text(encoding="utf-8", errors="replace"))
    if report.skipped and not report.entries:
        first = report.skipped[0]
        raise DataError(f"{path}: none of {len(report.skipped)} records folders has a score "
                        f"({first.folder}: {first.reason})")
    if not report.entries:
        raise DataError(f"{path}: no records folders (records/<track>/<name>/) or leaderboard found")
    return report


# -- PRs from the research store -------------------------------------------------------------------

_PR_NUMBER = re.compile(r"#(\d+)$")


def from_pr_item(item: Any) -> CompetitorEntry | None:
    """An entry from a stored GitHub PR item of the challenge repository, scored by its title."""
    extra = getattr(item, "extra", None) or {}
    title = getattr(item, "title", "") or ""
    number = _PR_NUMBER.search(getattr(item, "id", "") or "")
    if not number:
        return None
    value = title_val_bpb(title)
    if value is None:
        return None
    track = normalize_track(" ".join(str(extra.get(k, "")) for k in ("track", "records_path")))
    if track is None:
        track = NON_RECORD_TRACK if "non-record" in title.lower() or "non_record" in title.lower() \
            else RECORD_TRACK
    state = extra.get("state")
    if extra.get("merged") or extra.get("merged_at"):
        state = "merged"
    published = getattr(item, "published", None)
    return CompetitorEntry(
        pr_or_folder=f"PR #{number.group(1)}", author=extra.get("author") or extra.get("user"),
        name=title, val_bpb=value, date=published[:10] if published else None, track=track,
        state=state, source="pr-title",
    )


# -- merging and the frontier ----------------------------------------------------------------------

def _identity(entry: CompetitorEntry) -> tuple[str, str]:
    return entry.track, entry.pr_or_folder


def merge_entries(*groups: Iterable[CompetitorEntry]) -> list[CompetitorEntry]:
    """One entry per (track, PR or folder), the most trusted source winning; sorted by score."""
    merged: dict[tuple[str, str], CompetitorEntry] = {}
    for group in groups:
        for entry in group:
            key = _identity(entry)
            current = merged.get(key)
            if current is None or SOURCE_RANK.get(entry.source, 9) <= SOURCE_RANK.get(current.source, 9):
                merged[key] = entry
    return sort_entries(merged.values())


def sort_entries(entries: Iterable[CompetitorEntry]) -> list[CompetitorEntry]:
    """By track (record first), then score (unscored last)."""
    return sorted(entries, key=lambda e: (TRACKS.index(e.track) if e.track in TRACKS else 9,
                                          e.val_bpb is None, e.val_bpb or 0.0, e.pr_or_folder))


def frontier(entries: Iterable[CompetitorEntry]) -> dict[str, CompetitorEntry]:
    """The best-scored entry of each track."""
    best: dict[str, CompetitorEntry] = {}
    for entry in entries:
        if entry.val_bpb is None or not math.isfinite(entry.val_bpb):
            continue
        current = best.get(entry.track)
        if current is None or entry.val_bpb < current.val_bpb:  # type: ignore[operator]
            best[entry.track] = entry
    return best


class CompetitorFile:
    """`.pgolf/competitors.json`: every scanned entry, merged, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> list[CompetitorEntry]:
        """The stored entries (none when the file does not exist); damage is one line naming the entry."""
        try:
            data = statefile.load_json(self.path, missing={}, finite=False, want=dict)
            return statefile.records(self.path, "entries", _stored_entry, data=data,
                                     describe=lambda e: str(e.get("pr_or_folder", "")))
        except DataError as err:
            raise DataError(f"{err}; delete it and scan again") from None

    def add(self, entries: Iterable[CompetitorEntry]) -> list[CompetitorEntry]:
        """Merge `entries` into the file; returns everything stored."""
        merged = merge_entries(self.load(), entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": 1, "entries": [e.as_dict() for e in merged]}
        atomic_write_text(self.path, json.dumps(payload, indent=1) + "\n")
        return merged


_STORED_FIELDS = {
    "pr_or_folder": (STRING, True, False), "author": (STRING, False, True), "name": (STRING, True, False),
    "val_bpb": (NUMBER, True, True), "date": (STRING, False, True), "track": (STRING, True, False),
    "state": (STRING, False, True), "source": (STRING, False, False),
}


def _stored_entry(raw: Any, where: str) -> CompetitorEntry:
    if isinstance(raw, dict) and isinstance(raw.get("val_bpb"), float) and not math.isfinite(raw["val_bpb"]):
        raw = {**raw, "val_bpb": None}  # an older pgolf stored a scan's NaN: it is no score
    data = statefile.check_fields(raw, _STORED_FIELDS, where)
    return CompetitorEntry.from_dict({"author": None, "date": None, "state": None, "source": "none", **data})


def competitors_path(state_dir: Path) -> Path:
    """Where a workspace keeps its scanned competitors."""
    return Path(state_dir) / "competitors.json"


# -- a workspace's competitors ---------------------------------------------------------------------

def _folder_track(folder: str) -> str:
    return next((t for part in folder.split("/") if (t := normalize_track(part) or "")), RECORD_TRACK)


def from_store(store: Any) -> list[CompetitorEntry]:
    """Entries from the research store: records folders kept from PRs, else scores in PR titles."""
    entries: list[CompetitorEntry] = []
    with_records: set[str] = set()
    for record in store.competitor_records():
        with_records.add(record.item_id)
        item = store.get(record.item_id)
        extra = record.extra or {}
        state = "merged" if extra.get("merged") or extra.get("merged_at") else extra.get("state")
        folder = record.folder if record.folder.startswith("records/") else f"records/{record.folder}"
        entry = record_from_files(
            folder, _folder_track(record.folder), submission=record.submission, readme=record.readme,
            pr_title=item.title if item else None, state=state,
        )
        if entry is not None:
            entry.author = entry.author or extra.get("author") or extra.get("user")
            entries.append(entry)
    for item in store.list():
        if item.kind == "pr" and item.id not in with_records and "parameter-golf" in item.id:
            entry = from_pr_item(item)
            if entry is not None:
                entries.append(entry)
    return entries


def workspace_competitors(state_dir: Path, store: Any | None = None) -> list[CompetitorEntry]:
    """Everything known about competitors: scanned entries merged with the research store's."""
    scanned = CompetitorFile(competitors_path(state_dir)).load()
    return merge_entries(scanned, from_store(store) if store is not None else [])
