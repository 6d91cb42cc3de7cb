"""What every source shares: the context it runs in, its error type, its registry entry, date parsing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from pgolf.clock import iso_utc
from pgolf.research.items import ResearchItem

if TYPE_CHECKING:
    from pgolf.research.fetch import PoliteClient


class SourceError(Exception):
    """A source could not deliver: the message is one line naming what failed (never a secret)."""


@dataclass(frozen=True)
class SourceContext:
    """One source's run: its HTTP client, its time window, the clock, and its API key if it has one."""

    http: PoliteClient
    since: datetime
    now: datetime
    key: str | None = None
    warnings: list[str] = field(default_factory=list)  # partial failures worth reporting

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
    """True when an item's time is inside the window (an item without a time is kept)."""
    return moment is None or moment >= ctx.since


def keep_if_recent(found: dict[str, ResearchItem], item: ResearchItem | None, ctx: SourceContext) -> None:
    """Add `item` to `found` (first one wins per id) when it exists and falls inside the window."""
    if item and within(parse_time(item.published), ctx):
        found.setdefault(item.id, item)


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
