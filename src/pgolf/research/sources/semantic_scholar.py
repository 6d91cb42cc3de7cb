"""Semantic Scholar Graph API paper search; `S2_API_KEY`, when set, is sent as `x-api-key`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgolf.config import SemanticScholarSource
from pgolf.research.items import DATE_PRECISION, ResearchItem
from pgolf.research.sources.base import (
    SourceContext,
    SourceError,
    each_query,
    iso,
    iso_or_none,
    keep_if_recent,
)

FIELDS = "title,abstract,url,venue,year,publicationDate,externalIds,citationCount,authors"


def _item(paper: dict[str, Any], ctx: SourceContext, query: str) -> ResearchItem | None:
    paper_id, title = paper.get("paperId"), paper.get("title")
    if not paper_id or not title:
        return None
    external = paper.get("externalIds") if isinstance(paper.get("externalIds"), dict) else {}
    arxiv_id = external.get("ArXiv")
    # The arXiv page is the canonical URL when there is one, so the store collapses it with arXiv's item.
    url = f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else (paper.get("url") or
                                                                 f"https://www.semanticscholar.org/paper/{paper_id}")
    authors = paper.get("authors") if isinstance(paper.get("authors"), list) else []
    published, precision = _published_of(paper)
    extra = {"venue": paper.get("venue") or "", "year": paper.get("year"),
             "citations": paper.get("citationCount"), "external_ids": external,
             "authors": [a.get("name", "") for a in authors if isinstance(a, dict)][:10], "query": query}
    if precision:
        extra[DATE_PRECISION] = precision
    return ResearchItem(
        id=f"s2:{paper_id}", source="semantic_scholar", kind="paper", title=str(title),
        abstract=str(paper.get("abstract") or ""), url=url, published=published, fetched_at=ctx.fetched_at,
        authority=0.8, extra=extra,
    )


def _published_of(paper: dict[str, Any]) -> tuple[str | None, str | None]:
    """The paper's date and, when only its `year` is known, "year": that year's first instant stands in
    (an undated paper would pass any window; one from 1937 did)."""
    exact = iso_or_none(paper.get("publicationDate"))
    if exact:
        return exact, None
    year = paper.get("year")
    if isinstance(year, int) and not isinstance(year, bool) and 1 <= year <= 9999:
        return iso(datetime(year, 1, 1, tzinfo=UTC)), "year"
    return None, None


async def fetch_semantic_scholar(ctx: SourceContext, cfg: SemanticScholarSource) -> list[ResearchItem]:
    """Each query's results published since the window's start, following `next` page offsets; a bad
    page loses only its own query's pages from there on."""
    headers = {"x-api-key": ctx.key} if ctx.key else None
    found: dict[str, ResearchItem] = {}

    async def one(query: str) -> None:
        offset: int | None = 0
        while offset is not None and len(found) < cfg.max_items:
            body = await ctx.http.get_json(f"{cfg.base_url.rstrip('/')}/paper/search", headers=headers, params={
                "query": query, "offset": offset, "limit": cfg.page_size, "fields": FIELDS,
                "publicationDateOrYear": f"{ctx.since:%Y-%m-%d}:"})
            data = body.get("data", []) if isinstance(body, dict) else None  # no results: no "data" at all
            if not isinstance(data, list):
                raise SourceError(f"Semantic Scholar answered without a data list for {query!r}")
            for paper in data:
                item = _item(paper, ctx, query) if isinstance(paper, dict) else None
                keep_if_recent(found, item, ctx)
            following = body.get("next")
            offset = following if isinstance(following, int) and following > offset and data else None

    await each_query(ctx, "query", cfg.queries, one, found)
    return list(found.values())[: cfg.max_items]
