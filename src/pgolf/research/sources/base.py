"""What every source shares: the context it runs in, its error type, its registry entry, date parsing."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pgolf.clock import iso_utc
from pgolf.research.items import ResearchItem

if TYPE_CHECKING:  # httpx only in annotations: listing the sources (CLI help) never loads it
    import httpx

    from pgolf.research.fetch import PoliteClient


class SourceError(Exception):
    """A source could not deliver: the message is one line naming what failed (never a secret)."""


class Unreachable(SourceError):
    """No connection could be made (a name that does not resolve, no route, nothing listening): it would
    fail the same way for every query of the source, so the source fails at once, without retries."""


class NeedsAccount(SourceError):
    """The service answers only to a logged-in account: the source is skipped, like a missing key."""


class HTTPStatusError(SourceError):
    """A 4xx answer that retrying cannot fix; `status` and the API's error `name` (if any) let a source
    tell, e.g., "log in first" from "bad query"."""

    def __init__(self, message: str, status: int, name: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.name = name


@dataclass(frozen=True)
class SourceContext:
    """One source's run: its HTTP client, its time window, the clock, and its API key if it has one."""

    http: PoliteClient
    since: datetime
    now: datetime
    key: str | None = field(default=None, repr=False)  # secrets stay out of any repr or traceback
    login: tuple[str, str] | None = field(default=None, repr=False)  # (username, password) where a source logs in
    warnings: list[str] = field(default_factory=list)  # partial failures worth reporting
    failed_queries: list[str] = field(default_factory=list)  # queries/feeds/venues that delivered nothing

    @property
    def fetched_at(self) -> str:
        """The fetch time stamped on every item of this run."""
        return iso(self.now)


SourceFetch = Callable[[SourceContext, Any], Awaitable[list[ResearchItem]]]


@dataclass(frozen=True)
class SourceSpec:
    """A registered source: its name (= its `[research.sources.NAME]` table), how to fetch, what it needs."""

    name: str
    fetch: SourceFetch
    key_env: str | None = None
    key_required: bool = False
    login_env: tuple[str, str] | None = None  # optional (username, password) variables
    fast: bool = False  # part of the hourly fast pass


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z."""
    return iso_utc(moment)


def parse_time(value: Any) -> datetime | None:
    """A timestamp from an API (ISO-8601, RFC 822, a date, or epoch milliseconds) as UTC; None if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_or_none(value: Any) -> str | None:
    """`parse_time` rendered as ISO-8601, or None."""
    moment = parse_time(value)
    return iso(moment) if moment else None


def within(moment: datetime | None, ctx: SourceContext) -> bool:
    """True when an item's time is inside the window (an item without a time is kept).

    An approximate date (a year only, stored as that year's first instant) is compared like any
    other: the store shows the same instant the window judged."""
    return moment is None or moment >= ctx.since


def keep_if_recent(found: dict[str, ResearchItem], item: ResearchItem | None, ctx: SourceContext) -> None:
    """Add `item` to `found` (first one wins per id) when it exists and falls inside the window."""
    if item and within(parse_time(item.published), ctx):
        found.setdefault(item.id, item)


async def each_query(ctx: SourceContext, label: str, queries: Sequence[str],
                     fetch_one: Callable[[str], Awaitable[None]], found: Sized, *, concurrently: bool = False,
                     fatal: tuple[type[SourceError], ...] = (Unreachable, NeedsAccount)) -> None:
    """Run `fetch_one` for each query so that one bad answer only loses that query's pages from the bad
    one on: its failure goes into `ctx.warnings` and `ctx.failed_queries`. A `fatal` error stops the
    source at once (the next query would meet the same wall): it fails, unless earlier queries already
    `found` items (the collection `fetch_one` fills), which are kept, the queries not asked reported.
    When every query failed and nothing was found, the source fails with the first error."""

    async def guarded(query: str) -> str | None:
        try:
            await fetch_one(query)
        except fatal:
            raise
        except SourceError as err:
            return str(err)
        except Exception as err:  # noqa: BLE001 — a third party's odd payload must not sink the other queries
            return f"unexpected {type(err).__name__}: {' '.join(str(err).split())[:200]}"
        return None

    errors: list[str | None] = []
    if concurrently:
        errors = list(await asyncio.gather(*(guarded(q) for q in queries)))
    else:
        for query in queries:
            try:
                errors.append(await guarded(query))
            except fatal as err:
                if not found:
                    raise
                errors += [str(err)] * (len(queries) - len(errors))  # this query and those never asked
                break
    failed = [(q, e) for q, e in zip(queries, errors, strict=True) if e is not None]
    if failed and len(failed) == len(queries) and not found:
        raise SourceError(failed[0][1] if len(queries) == 1 else f"every {label} failed; first: {failed[0][1]}")
    for query, error in failed:
        ctx.failed_queries.append(query)
        ctx.warnings.append(f"{label} {query!r} failed: {error}")


def short_hash(text: str) -> str:
    """A stable 16-hex-digit id fragment for sources without ids of their own."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def endpoint(url: str) -> str:
    """Host and path of a URL: what error messages name (never the query, which may carry a key)."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def json_body(response: httpx.Response) -> Any:
    """A response's JSON; SourceError naming the endpoint when it is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SourceError(f"malformed JSON from {endpoint(str(response.url))}") from None
