"""Pull requests of the watched repositories, newest update first, within the window.

For the records repository (openai/parameter-golf) each PR's added records folders are read too: the
README.md and submission.json of every `records/<track>/<folder>/` it touches, at the PR's head commit,
handed to the store in `extra["records"]` for competitor intelligence.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import defaultdict
from typing import Any

from pgolf.config import GithubPrsSource
from pgolf.research.items import ResearchItem
from pgolf.research.sources.base import (
    NeedsAccount,
    SourceContext,
    SourceError,
    Unreachable,
    each_query,
    endpoint,
    iso_or_none,
    json_body,
    parse_time,
    within,
)
from pgolf.research.sources.github_api import github_headers, next_page

RECORD_FILE = re.compile(r"^(records/[^/]+/[^/]+)/(README\.md|submission\.json)$")
_RECORD_KEYS = {"README.md": "readme", "submission.json": "submission_json"}


def _authority(records_repo: bool, merged: bool) -> float:
    if records_repo:
        return 0.95 if merged else 0.8
    return 0.75 if merged else 0.6


def _item(pr: dict[str, Any], repo: str, ctx: SourceContext, records_repo: bool) -> ResearchItem | None:
    number, title = pr.get("number"), pr.get("title")
    if not isinstance(number, int) or not title:
        return None
    merged = bool(pr.get("merged_at"))
    head = pr.get("head") if isinstance(pr.get("head"), dict) else {}
    user = pr.get("user") if isinstance(pr.get("user"), dict) else {}
    labels = pr.get("labels") if isinstance(pr.get("labels"), list) else []
    return ResearchItem(
        id=f"github-pr:{repo}#{number}", source="github_prs", kind="pr", title=str(title),
        abstract=str(pr.get("body") or ""), url=str(pr.get("html_url") or f"https://github.com/{repo}/pull/{number}"),
        published=iso_or_none(pr.get("created_at")), fetched_at=ctx.fetched_at,
        authority=_authority(records_repo, merged),
        extra={"repo": repo, "number": number, "state": pr.get("state"), "merged": merged,
               "draft": bool(pr.get("draft")), "updated": iso_or_none(pr.get("updated_at")),
               "author": user.get("login", ""), "head_sha": head.get("sha", ""),
               "labels": [lb.get("name", "") for lb in labels if isinstance(lb, dict)]},
    )


async def _pages(ctx: SourceContext, url: str, params: dict[str, Any] | None, headers: dict[str, str],
                 max_pages: int):
    """Each page's JSON list, following `Link: rel="next"`."""
    for _ in range(max_pages):
        response = await ctx.http.request("GET", url, params=params, headers=headers)
        body = json_body(response)
        if not isinstance(body, list):
            raise SourceError(f"GitHub answered {type(body).__name__} where a list was expected at {endpoint(url)}")
        yield body
        following = next_page(response)
        if not following:
            return
        url, params = following, None  # the next link carries the query


async def _file_text(ctx: SourceContext, base: str, repo: str, path: str, ref: str,
                     headers: dict[str, str]) -> str:
    body = await ctx.http.get_json(f"{base}/repos/{repo}/contents/{path}", params={"ref": ref} if ref else None,
                                   headers=headers)
    if not isinstance(body, dict) or body.get("encoding") != "base64":
        raise SourceError(f"GitHub contents of {path} are not base64")
    try:
        return base64.b64decode(str(body.get("content", ""))).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise SourceError(f"GitHub contents of {path} are not valid base64") from None


async def records_of(ctx: SourceContext, cfg: GithubPrsSource, repo: str, number: int, ref: str,
                     headers: dict[str, str]) -> list[dict[str, str]]:
    """README.md and submission.json of each records folder the PR adds or changes."""
    base = cfg.base_url.rstrip("/")
    folders: dict[str, dict[str, str]] = defaultdict(dict)
    async for files in _pages(ctx, f"{base}/repos/{repo}/pulls/{number}/files", {"per_page": 100}, headers,
                              cfg.max_pages):
        for f in files:
            match = RECORD_FILE.match(str(f.get("filename", ""))) if isinstance(f, dict) else None
            if match and f.get("status") != "removed":
                folders[match.group(1)][_RECORD_KEYS[match.group(2)]] = match.group(0)
    records = []
    for folder, paths in sorted(folders.items()):
        record = {"folder": folder, "readme": "", "submission_json": "",
                  "url": f"https://github.com/{repo}/tree/{ref or 'main'}/{folder}"}
        for key, path in paths.items():
            record[key] = await _file_text(ctx, base, repo, path, ref, headers)
        records.append(record)
    return records


async def fetch_github_prs(ctx: SourceContext, cfg: GithubPrsSource) -> list[ResearchItem]:
    """Each watched repository's PRs updated within the window (plus records folders for the records repo);
    a bad page loses only its own repository's pages from there on."""
    headers = github_headers(ctx.key)
    base = cfg.base_url.rstrip("/")
    items: list[ResearchItem] = []

    async def one(repo: str) -> None:
        is_records = repo.lower() == cfg.records_repo.lower()
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": cfg.page_size}
        async for prs in _pages(ctx, f"{base}/repos/{repo}/pulls", params, headers, cfg.max_pages):
            fresh = [pr for pr in prs if isinstance(pr, dict) and within(parse_time(pr.get("updated_at")), ctx)]
            for pr in fresh:
                item = _item(pr, repo, ctx, is_records)
                if item is None:
                    continue
                if is_records:
                    try:
                        item.extra["records"] = await records_of(ctx, cfg, repo, item.extra["number"],
                                                                 item.extra["head_sha"], headers)
                    except (Unreachable, NeedsAccount):
                        raise
                    except SourceError as err:  # the PR itself is still worth keeping
                        ctx.warnings.append(f"records of {repo}#{item.extra['number']}: {err}")
                items.append(item)
            if len(fresh) < len(prs) or len(items) >= cfg.max_items:
                break  # sorted by update time: everything after this page is older than the window

    await each_query(ctx, "repository", cfg.repos, one, items)
    return items[: cfg.max_items]
