"""GitHub code search (needs `GITHUB_TOKEN`). It has no date filter: re-found files are deduplicated by
id in the store, so the window does not apply here."""

from __future__ import annotations

from typing import Any

from pgolf.config import GithubCodeSource
from pgolf.research.items import ResearchItem
from pgolf.research.sources.base import SourceContext, SourceError, each_query
from pgolf.research.sources.github_api import github_headers

# Text-match fragments come with this media type: they are the snippet shown as the abstract.
TEXT_MATCH = "application/vnd.github.text-match+json"


def _item(hit: dict[str, Any], ctx: SourceContext, query: str) -> ResearchItem | None:
    repo = hit.get("repository") if isinstance(hit.get("repository"), dict) else {}
    full_name, path = repo.get("full_name"), hit.get("path")
    if not full_name or not path:
        return None
    matches = hit.get("text_matches") if isinstance(hit.get("text_matches"), list) else []
    snippet = "\n…\n".join(str(m.get("fragment", "")) for m in matches if isinstance(m, dict))
    return ResearchItem(
        id=f"github-code:{full_name}/{path}", source="github_code", kind="code", title=f"{path} in {full_name}",
        abstract=snippet or str(repo.get("description") or ""),
        url=str(hit.get("html_url") or f"https://github.com/{full_name}/blob/HEAD/{path}"),
        published=None, fetched_at=ctx.fetched_at, authority=0.6,
        extra={"repo": full_name, "path": path, "sha": hit.get("sha", ""), "query": query,
               "github_score": hit.get("score")},
    )


async def fetch_github_code(ctx: SourceContext, cfg: GithubCodeSource) -> list[ResearchItem]:
    """Each query's hits, page by page, until a short page or `max_items`; a bad page loses only its own
    query's pages from there on."""
    headers = github_headers(ctx.key, TEXT_MATCH)
    found: dict[str, ResearchItem] = {}

    async def one(query: str) -> None:
        page = 1
        while len(found) < cfg.max_items:
            body = await ctx.http.get_json(f"{cfg.base_url.rstrip('/')}/search/code", headers=headers, params={
                "q": query, "per_page": cfg.page_size, "page": page})
            hits = body.get("items") if isinstance(body, dict) else None
            if not isinstance(hits, list):
                raise SourceError(f"GitHub code search answered without an items list for {query!r}")
            for hit in hits:
                item = _item(hit, ctx, query) if isinstance(hit, dict) else None
                if item:
                    found.setdefault(item.id, item)
            total = body.get("total_count")
            if len(hits) < cfg.page_size or (isinstance(total, int) and page * cfg.page_size >= total):
                break
            page += 1

    await each_query(ctx, "query", cfg.queries, one, found)
    return list(found.values())[: cfg.max_items]
