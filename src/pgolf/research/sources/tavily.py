"""Tavily web search (needs `TAVILY_API_KEY`): the scheduled queries, within the window.

Tavily scores each result's relevance (0..1); the fetcher drops results under the relevance floor of
their authority band, which comes from the result's domain here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pgolf.config import TavilySource
from pgolf.research.items import ResearchItem, normalize_url
from pgolf.research.sources.base import (
    SourceContext,
    SourceError,
    each_query,
    iso_or_none,
    keep_if_recent,
    short_hash,
)

ACADEMIC_DOMAINS = ("arxiv.org", "openreview.net", "semanticscholar.org", "aclanthology.org", "aclweb.org",
                    "proceedings.mlr.press", "papers.nips.cc", "neurips.cc", "jmlr.org")
COMMUNITY_DOMAINS = ("github.com", "huggingface.co", "paperswithcode.com")


def domain_authority(url: str) -> float:
    """How much a result's site is trusted: academic 0.85, code and model hubs 0.6, the rest 0.3."""
    host = urlsplit(url).netloc.lower().removeprefix("www.")
    if any(host == d or host.endswith("." + d) for d in ACADEMIC_DOMAINS):
        return 0.85
    if any(host == d or host.endswith("." + d) for d in COMMUNITY_DOMAINS):
        return 0.6
    return 0.3


def time_range(window: timedelta) -> str:
    """Tavily's coarse `time_range` that covers the window."""
    for name, span in (("day", timedelta(days=1)), ("week", timedelta(days=7)), ("month", timedelta(days=31))):
        if window <= span:
            return name
    return "year"


def _item(result: dict[str, Any], ctx: SourceContext, query: str) -> ResearchItem | None:
    url, title = result.get("url"), result.get("title")
    if not url or not title:
        return None
    score = result.get("score")
    return ResearchItem(
        id=f"tavily:{short_hash(normalize_url(str(url)))}", source="tavily", kind="web", title=str(title),
        abstract=str(result.get("content") or ""), url=str(url),
        published=iso_or_none(result.get("published_date")), fetched_at=ctx.fetched_at,
        authority=domain_authority(str(url)), score=float(score) if isinstance(score, int | float) else None,
        extra={"query": query, "domain": urlsplit(str(url)).netloc},
    )


async def fetch_tavily(ctx: SourceContext, cfg: TavilySource) -> list[ResearchItem]:
    """One search per scheduled query; results dated before the window are dropped; a bad answer loses
    only its own query."""
    found: dict[str, ResearchItem] = {}

    async def one(query: str) -> None:
        body = await ctx.http.post_json(
            f"{cfg.base_url.rstrip('/')}/search", headers={"Authorization": f"Bearer {ctx.key}"},
            body={"query": query, "search_depth": cfg.search_depth, "max_results": cfg.max_results,
                  "topic": "general", "time_range": time_range(ctx.now - ctx.since),
                  "include_answer": False, "include_raw_content": False})
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise SourceError(f"Tavily answered without a results list for {query!r}")
        for result in results:
            item = _item(result, ctx, query) if isinstance(result, dict) else None
            keep_if_recent(found, item, ctx)

    await each_query(ctx, "query", cfg.queries, one, found)
    return list(found.values())[: cfg.max_items]
