"""`.pgolf/research.db`: research items deduplicated by id and near-duplicate title, their grades, and
the competitors' records folders kept from parameter-golf PRs.

Tables:
- `items` — one row per distinct item (text neutralized on the way in, see `sanitize`), with
  `first_seen`/`last_seen` and the normalized title and URL used for deduplication.
- `aliases` — ids that were collapsed into an existing item (same normalized URL, or near-duplicate
  title for papers, posts and web results); fetching an alias again only bumps the item's `last_seen`.
- `grades` — one grade per (item, grading context hash); the newest is the item's tier and score.
- `competitor_records` — README.md and submission.json of each records folder a parameter-golf PR adds.
  A source hands them over in `item.extra["records"]`; the store moves them into this table and leaves
  only `extra["record_folders"]` (their names) on the item.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.clock import iso_utc
from pgolf.errors import DataError
from pgolf.research.items import DATE_PRECISION, ResearchItem, authority_tier, normalize_url
from pgolf.research.sanitize import (
    ABSTRACT_LIMIT,
    AGENT_INSTRUCTION_FLAG,
    DOCUMENT_LIMIT,
    TITLE_LIMIT,
    clean_text,
)

# Titles of these kinds are prose about an idea: two of them with nearly the same title are one idea.
# PRs, records and code hits are identified by their id alone (two PRs may share a title).
TITLE_DEDUP_KINDS = frozenset({"paper", "post", "web"})
TITLE_SIMILARITY = 0.92
_TEXT_KINDS_SQL = "(" + ",".join(f"'{k}'" for k in sorted(TITLE_DEDUP_KINDS)) + ")"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    abstract TEXT NOT NULL,
    url TEXT NOT NULL,
    published TEXT,
    fetched_at TEXT NOT NULL,
    authority REAL NOT NULL,
    score REAL,
    extra TEXT NOT NULL,
    norm_title TEXT NOT NULL,
    norm_url TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_norm_title ON items(norm_title);
CREATE INDEX IF NOT EXISTS items_norm_url ON items(norm_url);
CREATE INDEX IF NOT EXISTS items_source ON items(source);
CREATE TABLE IF NOT EXISTS aliases (
    alias_id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES items(id),
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grades (
    item_id TEXT NOT NULL REFERENCES items(id),
    context_hash TEXT NOT NULL,
    grade_json TEXT NOT NULL,
    tier TEXT NOT NULL,
    score REAL NOT NULL,
    graded_at TEXT NOT NULL,
    PRIMARY KEY (item_id, context_hash)
);
CREATE TABLE IF NOT EXISTS competitor_records (
    item_id TEXT NOT NULL REFERENCES items(id),
    folder TEXT NOT NULL,
    readme TEXT NOT NULL,
    submission_json TEXT NOT NULL,
    url TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (item_id, folder)
);
"""

# The newest grade of each item: its tier and score.
_LATEST_GRADE = """
LEFT JOIN (
    SELECT g.item_id, g.tier, g.score FROM grades g
    WHERE g.graded_at = (SELECT MAX(g2.graded_at) FROM grades g2 WHERE g2.item_id = g.item_id)
    GROUP BY g.item_id
) latest ON latest.item_id = items.id
"""

_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+")
_STOPWORDS = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "is", "of", "on", "or", "the",
                        "to", "via", "with"})


@dataclass
class StoredItem(ResearchItem):
    """An item as stored: plus when it was first and last fetched, and its newest grade if any."""

    first_seen: str = ""
    last_seen: str = ""
    tier: str | None = None
    grade_score: float | None = None

    @property
    def flags(self) -> list[str]:
        """Warnings the store attached (e.g. `agent_instruction` when such text was cut out)."""
        return list(self.extra.get("flags", []))


@dataclass(frozen=True)
class UpsertReport:
    """What one upsert did: `new` items inserted, `updated` ones changed, `duplicates` already known."""

    new: int = 0
    updated: int = 0
    duplicates: int = 0
    new_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grade:
    """One grade of one item under one grading context."""

    item_id: str
    context_hash: str
    grade: dict[str, Any]
    tier: str
    score: float
    graded_at: str


@dataclass(frozen=True)
class CompetitorRecord:
    """A records folder a parameter-golf PR adds: its README.md and submission.json (parsed if valid)."""

    item_id: str
    folder: str
    readme: str
    submission: dict[str, Any] | None
    submission_text: str
    url: str
    updated_at: str
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_title(title: str) -> str:
    """Lowercase words without accents or punctuation: the key of exact title duplicates."""
    decomposed = unicodedata.normalize("NFKD", title)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(_WORD.findall(folded))


def _utc_now() -> datetime:
    return datetime.now(UTC)





class _TitleIndex:
    """Near-duplicate lookup over normalized titles: a word index picks candidates, difflib decides."""

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        self._titles: dict[str, str] = {}
        self._by_word: dict[str, set[str]] = defaultdict(set)
        for item_id, norm in rows:
            self.add(item_id, norm)

    @staticmethod
    def _words(norm: str) -> set[str]:
        return {w for w in norm.split() if w not in _STOPWORDS}

    def add(self, item_id: str, norm: str) -> None:
        self._titles[item_id] = norm
        for word in self._words(norm):
            self._by_word[word].add(item_id)

    def match(self, norm: str) -> str | None:
        """The id of a stored title nearly equal to `norm`, if any."""
        words = self._words(norm)
        if not words:
            return None
        shared = Counter(i for w in words for i in self._by_word.get(w, ()))
        for item_id, count in shared.most_common():
            # Titles this similar share most of their words; fewer shared words cannot reach the bar.
            if count < 0.6 * len(words):
                break
            other = self._titles[item_id]
            # Numbers tell versions and results apart ("Llama 2" / "Llama 3"): they must agree.
            if _NUMBER.findall(norm) != _NUMBER.findall(other):
                continue
            if SequenceMatcher(None, norm, other).ratio() >= TITLE_SIMILARITY:
                return item_id
        return None


def _clean_item(item: ResearchItem) -> tuple[ResearchItem, list[dict[str, Any]]]:
    """The item with neutralized text, and the records folders split off its `extra`."""
    title, t_flag = clean_text(item.title, TITLE_LIMIT, single_line=True)
    abstract, a_flag = clean_text(item.abstract, ABSTRACT_LIMIT)
    extra = dict(item.extra)
    records = extra.pop("records", None) or []
    flags = set(extra.get("flags", []))
    if t_flag or a_flag:
        flags.add(AGENT_INSTRUCTION_FLAG)
    cleaned_records = []
    for rec in records:
        readme, r_flag = clean_text(str(rec.get("readme", "")), DOCUMENT_LIMIT)
        submission, s_flag = clean_text(str(rec.get("submission_json", "")), DOCUMENT_LIMIT)
        if r_flag or s_flag:
            flags.add(AGENT_INSTRUCTION_FLAG)
        cleaned_records.append({"folder": str(rec.get("folder", "")), "readme": readme,
                                "submission_json": submission, "url": str(rec.get("url", item.url))})
    if cleaned_records:
        extra["record_folders"] = [r["folder"] for r in cleaned_records]
    if flags:
        extra["flags"] = sorted(flags)
    clean = ResearchItem(
        id=item.id, source=item.source, kind=item.kind, title=title or "(untitled)", abstract=abstract,
        url=item.url.strip(), published=item.published, fetched_at=item.fetched_at,
        authority=float(item.authority), score=item.score, extra=extra,
    )
    return clean, cleaned_records


_ITEM_FIELDS = tuple(f.name for f in fields(ResearchItem))


def _row_to_item(row: sqlite3.Row) -> StoredItem:
    data = {name: row[name] for name in _ITEM_FIELDS}
    data["extra"] = json.loads(data["extra"])
    return StoredItem(**data, first_seen=row["first_seen"], last_seen=row["last_seen"],
                      tier=row["tier"], grade_score=row["grade_score"])


class ResearchStore:
    """The research database of one workspace; safe to open from several processes."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = Path(path)
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(check_schema=True) as db:
            db.executescript(_SCHEMA)

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """Refuse a database that is someone else's (or an old, different layout) before adding tables to it."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return  # new: the schema is created
        if "items" not in tables:
            raise DataError(f"{self.path}: not a pgolf research database (tables {', '.join(sorted(tables))}); "
                            "move it aside and run `pgolf research fetch` again")
        have = {r[1] for r in db.execute("PRAGMA table_info(items)")}
        missing = sorted({*_ITEM_FIELDS, "first_seen", "last_seen", "norm_title", "norm_url"} - have)
        if missing:
            raise DataError(f"{self.path}: not a pgolf research database (its items table lacks "
                            f"{', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); move it aside and "
                            "run `pgolf research fetch` again")

    @contextmanager
    def _connect(self, *, check_schema: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as err:
            raise self._damaged(err) from None
        db.row_factory = sqlite3.Row
        try:
            if check_schema:
                self._check_schema(db)  # before the WAL switch: that rewrites the header of a foreign file
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.Error as err:  # garbage, a truncated file, a foreign schema, a folder
            raise self._damaged(err) from None
        finally:
            db.close()

    def _damaged(self, err: sqlite3.Error) -> DataError:
        return DataError(f"{self.path}: research database unreadable ({err}); move it aside and run "
                         "`pgolf research fetch` again")

    def upsert(self, items: Iterable[ResearchItem]) -> UpsertReport:
        """Insert new items, refresh known ones, collapse duplicates; all in one transaction."""
        now = iso_utc(self._clock())
        new: list[str] = []
        updated = duplicates = 0
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            index = _TitleIndex(db.execute(
                f"SELECT id, norm_title FROM items WHERE kind IN {_TEXT_KINDS_SQL}").fetchall())
            for raw in items:
                item, records = _clean_item(raw)
                target = self._known_id(db, item, index)
                if target is None:
                    self._insert(db, item, now)
                    if item.kind in TITLE_DEDUP_KINDS:
                        index.add(item.id, normalize_title(item.title))
                    new.append(item.id)
                elif target == item.id:
                    if self._refresh(db, item, now):
                        updated += 1
                    else:
                        duplicates += 1
                else:
                    db.execute("UPDATE items SET last_seen = ? WHERE id = ?", (now, target))
                    self._adopt_exact_date(db, target, item)
                    db.execute("INSERT OR IGNORE INTO aliases VALUES (?, ?, ?, ?, ?)",
                               (item.id, target, item.source, item.url, now))
                    duplicates += 1
                    continue
                for rec in records:
                    db.execute("INSERT OR REPLACE INTO competitor_records VALUES (?, ?, ?, ?, ?, ?)",
                               (item.id, rec["folder"], rec["readme"], rec["submission_json"], rec["url"], now))
        return UpsertReport(new=len(new), updated=updated, duplicates=duplicates, new_ids=tuple(new))

    @staticmethod
    def _adopt_exact_date(db: sqlite3.Connection, target: str, item: ResearchItem) -> None:
        """A duplicate with an exact date replaces the stored item's year-only one (an S2 paper dated
        only by its year, found again on arXiv)."""
        if not item.published or item.extra.get(DATE_PRECISION) == "year":
            return
        extra = json.loads(db.execute("SELECT extra FROM items WHERE id = ?", (target,)).fetchone()["extra"])
        if extra.pop(DATE_PRECISION, None) == "year":
            db.execute("UPDATE items SET published = ?, extra = ? WHERE id = ?",
                       (item.published, json.dumps(extra, sort_keys=True), target))

    @staticmethod
    def _known_id(db: sqlite3.Connection, item: ResearchItem, index: _TitleIndex) -> str | None:
        """The stored id this item is (itself, an alias, same URL, or near-duplicate title), if any."""
        if db.execute("SELECT 1 FROM items WHERE id = ?", (item.id,)).fetchone():
            return item.id
        alias = db.execute("SELECT item_id FROM aliases WHERE alias_id = ?", (item.id,)).fetchone()
        if alias:
            return alias[0]
        if item.kind not in TITLE_DEDUP_KINDS:
            return None
        if item.url:
            same_url = db.execute(f"SELECT id FROM items WHERE norm_url = ? AND kind IN {_TEXT_KINDS_SQL}",
                                  (normalize_url(item.url),)).fetchone()
            if same_url:
                return same_url[0]
        return index.match(normalize_title(item.title))

    @staticmethod
    def _values(item: ResearchItem) -> tuple[Any, ...]:
        return (item.source, item.kind, item.title, item.abstract, item.url, item.published,
                item.fetched_at, item.authority, item.score, json.dumps(item.extra, sort_keys=True),
                normalize_title(item.title), normalize_url(item.url))

    def _insert(self, db: sqlite3.Connection, item: ResearchItem, now: str) -> None:
        db.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (item.id, *self._values(item), now, now))

    def _refresh(self, db: sqlite3.Connection, item: ResearchItem, now: str) -> bool:
        """Update a known item's fields; True when its content changed (not just its fetch time)."""
        old = db.execute("SELECT title, abstract, url, published, score, extra FROM items WHERE id = ?",
                         (item.id,)).fetchone()
        changed = (old["title"], old["abstract"], old["url"], old["published"], old["score"],
                   old["extra"]) != (item.title, item.abstract, item.url, item.published, item.score,
                                     json.dumps(item.extra, sort_keys=True))
        db.execute("""UPDATE items SET source=?, kind=?, title=?, abstract=?, url=?, published=?,
                      fetched_at=?, authority=?, score=?, extra=?, norm_title=?, norm_url=?, last_seen=?
                      WHERE id=?""", (*self._values(item), now, item.id))
        return changed

    def _select(self, where: str = "", params: tuple[Any, ...] = (), tail: str = "") -> list[StoredItem]:
        sql = (f"SELECT items.*, latest.tier AS tier, latest.score AS grade_score FROM items {_LATEST_GRADE}"
               f" {where} {tail}")
        with self._connect() as db:
            return [_row_to_item(r) for r in db.execute(sql, params).fetchall()]

    def get(self, item_id: str) -> StoredItem | None:
        """One item by its id, or by the id of a duplicate that was collapsed into it."""
        found = self._select("WHERE items.id = ? OR items.id = (SELECT item_id FROM aliases WHERE alias_id = ?)",
                             (item_id, item_id))
        return found[0] if found else None

    def list(self, source: str | None = None, tier: str | None = None,
             limit: int | None = None) -> list[StoredItem]:
        """Items, newest first (by last fetch, then publication), optionally of one source or grade tier."""
        clauses, params = [], []
        if source:
            clauses.append("items.source = ?")
            params.append(source)
        if tier:
            clauses.append("latest.tier = ?")
            params.append(tier)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        tail = "ORDER BY items.last_seen DESC, items.published DESC, items.id"
        if limit is not None:
            tail += " LIMIT ?"
            params.append(int(limit))
        return self._select(where, tuple(params), tail)

    def count(self) -> int:
        """Number of distinct items stored."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def items_for_grading(self, context_hash: str | None = None, limit: int | None = None) -> list[StoredItem]:
        """Items without a grade (under `context_hash` when given: a changed context regrades), newest first."""
        if context_hash is None:
            where, params = "WHERE NOT EXISTS (SELECT 1 FROM grades WHERE grades.item_id = items.id)", ()
        else:
            where = ("WHERE NOT EXISTS (SELECT 1 FROM grades WHERE grades.item_id = items.id"
                     " AND grades.context_hash = ?)")
            params = (context_hash,)
        tail = "ORDER BY items.last_seen DESC, items.published DESC, items.id"
        if limit is not None:
            tail += f" LIMIT {int(limit)}"
        return self._select(where, params, tail)

    def save_grade(self, item_id: str, context_hash: str, grade_json: dict[str, Any] | str, tier: str,
                   score: float) -> None:
        """Record (or replace) an item's grade under one grading context."""
        text = grade_json if isinstance(grade_json, str) else json.dumps(grade_json, sort_keys=True)
        json.loads(text)  # a grade that is not JSON is a bug in the caller, not something to store
        with self._connect() as db:
            if not db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
                raise KeyError(f"no research item {item_id!r}")
            db.execute("INSERT OR REPLACE INTO grades VALUES (?, ?, ?, ?, ?, ?)",
                       (item_id, context_hash, text, tier, float(score), iso_utc(self._clock())))

    def get_grade(self, item_id: str, context_hash: str) -> Grade | None:
        """An item's grade under one grading context, if it was graded under it."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM grades WHERE item_id = ? AND context_hash = ?",
                             (item_id, context_hash)).fetchone()
        if row is None:
            return None
        return Grade(item_id=row["item_id"], context_hash=row["context_hash"],
                     grade=json.loads(row["grade_json"]), tier=row["tier"], score=row["score"],
                     graded_at=row["graded_at"])

    def competitor_records(self) -> list[CompetitorRecord]:
        """Every records folder kept from parameter-golf PRs, newest PR first."""
        with self._connect() as db:
            rows = db.execute("""SELECT r.*, i.extra AS item_extra FROM competitor_records r
                                 JOIN items i ON i.id = r.item_id
                                 ORDER BY i.published DESC, r.item_id, r.folder""").fetchall()
        records = []
        for row in rows:
            try:  # a PR's submission.json: remote text, so the state-file guards (nesting, size) apply
                submission = statefile.loads_json(row["submission_json"], f"{row['folder']}/submission.json",
                                                  finite=False)
            except DataError:
                submission = None
            records.append(CompetitorRecord(
                item_id=row["item_id"], folder=row["folder"], readme=row["readme"],
                submission=submission if isinstance(submission, dict) else None,
                submission_text=row["submission_json"], url=row["url"], updated_at=row["updated_at"],
                extra=json.loads(row["item_extra"])))
        return records

    def export_jsonl(self, path: Path) -> int:
        """Write every item as one JSON line in the `raw_cache.jsonl` shape; returns the count."""
        items = self.list()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            for item in items:
                out.write(json.dumps(raw_cache_record(item), ensure_ascii=False) + "\n")
        return len(items)


def raw_cache_record(item: StoredItem) -> dict[str, Any]:
    """One item in the `raw_cache.jsonl` shape other Parameter Golf research tools read."""
    return {
        "id": item.id,
        "source": item.source,
        "dimension": list(item.extra.get("dimension", [])),
        "title": item.title,
        "abstract": item.abstract,
        "url": item.url,
        "published_date": item.published or "",
        "fetched_at": item.fetched_at,
        "content_snippet": item.abstract[:500],
        "raw_type": item.kind,
        "tavily_score": item.score if item.score is not None else 0.0,
        "authority_tier": authority_tier(item.authority),
        "first_seen": item.first_seen,
        "last_seen": item.last_seen,
        "extra": {k: v for k, v in item.extra.items() if k != "dimension"},
    }


