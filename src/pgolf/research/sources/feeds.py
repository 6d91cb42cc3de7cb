"""RSS (0.91 to 2.0) and Atom feeds. One broken feed is reported as a warning (and in the outcome's failed
queries); the source fails only when all do. Each feed is a different site, so one that cannot be reached
does not stop the others."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pgolf.config import FeedsSource
from pgolf.research.items import ResearchItem
from pgolf.research.sanitize import strip_markup
from pgolf.research.sources.base import (
    SourceContext,
    SourceError,
    each_query,
    iso_or_none,
    parse_time,
    short_hash,
    within,
)
from pgolf.research.sources.xmlparse import ATOM, parse_xml, text_of


def _atom_link(entry: ET.Element) -> str:
    links = entry.findall(f"{ATOM}link")
    preferred = [link for link in links if link.get("rel", "alternate") == "alternate"] or links
    return preferred[0].get("href", "") if preferred else ""


def _post(ctx: SourceContext, feed_url: str, feed_title: str, *, key: str, title: str, summary: str, link: str,
          when: str) -> ResearchItem | None:
    if not title or not (link or key):
        return None
    return ResearchItem(
        id=f"feed:{short_hash(key or link)}", source="feeds", kind="post", title=strip_markup(title),
        abstract=strip_markup(summary), url=link, published=iso_or_none(when), fetched_at=ctx.fetched_at,
        authority=0.5, extra={"feed": feed_url, "feed_title": feed_title},
    )


def parse_feed(text: str, feed_url: str, ctx: SourceContext) -> list[ResearchItem]:
    """The posts of an RSS 2.0 or Atom document."""
    root = parse_xml(text, feed_url)
    posts: list[ResearchItem | None] = []
    if root.tag == "rss":
        channel = root.find("channel")
        name = text_of(channel, "title")
        for it in channel.findall("item") if channel is not None else []:
            link = text_of(it, "link")
            posts.append(_post(ctx, feed_url, name, key=text_of(it, "guid") or link, title=text_of(it, "title"),
                               summary=text_of(it, "description"), link=link, when=text_of(it, "pubDate")))
    elif root.tag == f"{ATOM}feed":
        name = text_of(root, f"{ATOM}title")
        for entry in root.findall(f"{ATOM}entry"):
            posts.append(_post(
                ctx, feed_url, name, key=text_of(entry, f"{ATOM}id"), title=text_of(entry, f"{ATOM}title"),
                summary=text_of(entry, f"{ATOM}summary") or text_of(entry, f"{ATOM}content"),
                link=_atom_link(entry),
                when=text_of(entry, f"{ATOM}published") or text_of(entry, f"{ATOM}updated")))
    else:
        raise SourceError(f"{feed_url} is neither RSS 2.0 nor Atom (root {root.tag!r})")
    return [p for p in posts if p is not None]


async def fetch_feeds(ctx: SourceContext, cfg: FeedsSource) -> list[ResearchItem]:
    """Every configured feed (read concurrently) and its posts published within the window."""
    posts: dict[str, list[ResearchItem]] = {}

    async def one(url: str) -> None:
        posts[url] = parse_feed(await ctx.http.get_text(url), url, ctx)

    await each_query(ctx, "feed", cfg.urls, one, posts, concurrently=True, fatal=())
    found: dict[str, ResearchItem] = {}
    for url in cfg.urls:  # config order, whichever feed answered first
        for post in posts.get(url, []):
            if within(parse_time(post.published), ctx):
                found.setdefault(post.id, post)
    return list(found.values())[: cfg.max_items]
