"""The normalized research item every source returns and every later stage reads."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ItemKind = Literal["paper", "pr", "code", "post", "web", "record"]

# `extra[DATE_PRECISION] == "year"`: the source gave only a year; `published` is that year's first
# instant, which the `since` window and the store both use as is. Absent: `published` is exact.
DATE_PRECISION = "date_precision"


def shown_date(published: str | None, extra: dict[str, Any]) -> str:
    """The day of `published` ("-" when none), or just the year when only the year is known."""
    if not published:
        return "-"
    return published[:4] if extra.get(DATE_PRECISION) == "year" else published[:10]


@dataclass
class ResearchItem:
    """One paper, pull request, code hit, feed post or web result.

    `id` is stable across fetches (e.g. "arxiv:2401.01234", "github-pr:openai/parameter-golf#123").
    `published` and `fetched_at` are ISO-8601 UTC strings. `authority` is 0..1: how much the source
    itself is trusted (a merged PR of the challenge repo is high, a random blog low). `score` is the
    source's own relevance score where it gives one (Tavily, Semantic Scholar), else None. Text fields
    hold untrusted fetched text and are neutralized by the store before they are saved.
    """

    id: str
    source: str
    kind: ItemKind
    title: str
    abstract: str
    url: str
    published: str | None
    fetched_at: str
    authority: float = 0.5
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


def authority_tier(authority: float) -> int:
    """The band of an authority in 0..1: 1 academic (>= 0.8), 2 community (>= 0.5), 3 general web."""
    return 1 if authority >= 0.8 else 2 if authority >= 0.5 else 3


def normalize_url(url: str) -> str:
    """Scheme, `www.`, trailing slash, fragment and arXiv version suffix dropped."""
    u = url.strip().lower().split("#", 1)[0]
    u = re.sub(r"^https?://(www\.)?", "", u).rstrip("/")
    return re.sub(r"(arxiv\.org/(?:abs|pdf)/[0-9.]+)v\d+(\.pdf)?$", r"\1", u)
