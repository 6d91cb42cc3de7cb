"""arXiv API: the newest papers of the configured categories matching each query, within the window."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from pgolf.config import ArxivSource
from pgolf.research.items import ResearchItem
from pgolf.research.sources.base import (
    SourceContext,
    SourceError,
    each_query,
    iso_or_none,
    parse_time,
    within,
)
from pgolf.research.sources.xmlparse import ATOM, parse_xml, text_of

_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_ABS_ID = re.compile(r"arxiv\.org/abs/(.+?)(v\d+)?$")


def search_query(query: str, categories: list[str], ctx: SourceContext) -> str:
    """The `search_query` for one query: its phrase, any of the categories, submitted within the window."""
    parts = [f'all:"{query}"']
    if categories:
        parts.append("(" + " OR ".join(f"cat:{c}" for c in categories) + ")")
    parts.append(f"submittedDate:[{ctx.since:%Y%m%d%H%M} TO {ctx.now:%Y%m%d%H%M}]")
    return " AND ".join(parts)


def _item(entry: ET.Element, ctx: SourceContext, query: str) -> ResearchItem | None:
    match = _ABS_ID.search(text_of(entry, f"{ATOM}id"))
    title = text_of(entry, f"{ATOM}title")
    if not match or not title:
        return None  # an entry without an arXiv id or a title is unusable
    arxiv_id = match.group(1)
    pdf = next((link.get("href", "") for link in entry.findall(f"{ATOM}link") if link.get("title") == "pdf"), "")
    primary = entry.find(f"{_ARXIV}primary_category")
    return ResearchItem(
        id=f"arxiv:{arxiv_id}", source="arxiv", kind="paper", title=title,
        abstract=text_of(entry, f"{ATOM}summary"), url=f"https://arxiv.org/abs/{arxiv_id}",
        published=iso_or_none(text_of(entry, f"{ATOM}published")), fetched_at=ctx.fetched_at, authority=0.85,
        extra={
            "authors": [text_of(a, f"{ATOM}name") for a in entry.findall(f"{ATOM}author")][:10],
            "categories": [c.get("term", "") for c in entry.findall(f"{ATOM}category")],
            "primary_category": primary.get("term", "") if primary is not None else "",
            "updated": iso_or_none(text_of(entry, f"{ATOM}updated")),
            "pdf_url": pdf, "query": query,
        },
    )


async def fetch_arxiv(ctx: SourceContext, cfg: ArxivSource) -> list[ResearchItem]:
    """Every configured query, paged newest first until the window or `max_items` ends; a query whose
    answer is bad loses only its own later pages."""
    found: dict[str, ResearchItem] = {}

    async def one(query: str) -> None:
        start = 0
        while len(found) < cfg.max_items:
            root = parse_xml(await ctx.http.get_text(cfg.base_url, params={
                "search_query": search_query(query, cfg.categories, ctx), "start": start,
                "max_results": cfg.page_size, "sortBy": "submittedDate", "sortOrder": "descending"}), "arXiv")
            if root.tag != f"{ATOM}feed":
                raise SourceError(f"arXiv answered a {root.tag!r} document, not an Atom feed")
            entries = root.findall(f"{ATOM}entry")
            for entry in entries:
                if "/api/errors" in text_of(entry, f"{ATOM}id"):
                    raise SourceError(f"arXiv rejected the query: {text_of(entry, f'{ATOM}summary')[:200]}")
            total = _int(text_of(root, f"{_OPENSEARCH}totalResults"))
            past_window = False
            for entry in entries:
                item = _item(entry, ctx, query)
                if item is None:
                    continue
                if not within(parse_time(item.published), ctx):
                    past_window = True  # results are newest first: the rest are older still
                    continue
                found.setdefault(item.id, item)
            start += len(entries)
            if not entries or past_window or start >= total:
                break

    await each_query(ctx, "query", cfg.queries, one, found)
    return list(found.values())[: cfg.max_items]


def _int(text: str) -> int:
    """`totalResults` as a number; SourceError when it is not one."""
    try:
        return int(text or 0)
    except ValueError:
        raise SourceError(f"arXiv answered a totalResults of {text[:40]!r}") from None
