"""OpenReview API v2: papers published at the configured venues that match a keyword.

The venue filter is `content.venueid` (v2 notes keep every content field as `{"value": ...}`): it names
the papers a venue accepted, unlike the submission invitation, which also lists rejected and withdrawn
ones. Keywords are matched, case-insensitively, in the title, abstract and the authors' keywords.

Since late 2026 api2.openreview.net may answer anonymous `/notes` calls with 403 `ChallengeRequiredError`:
with OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD set, the source logs in first (`POST /login`) and sends
the token it gets as a bearer token (held in memory for this fetch only: never printed or stored);
without them such a 403 skips the source as "needs an account".
"""

from __future__ import annotations

from typing import Any

from pgolf.config import OpenReviewSource
from pgolf.research.items import ResearchItem
from pgolf.research.sources.base import (
    HTTPStatusError,
    NeedsAccount,
    SourceContext,
    SourceError,
    each_query,
    iso,
    keep_if_recent,
    parse_time,
)

LOGIN_ENV = ("OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD")


def field(content: dict[str, Any], name: str) -> Any:
    """A content field's value, for v2 (`{"value": x}`) and v1 (plain `x`) notes alike."""
    value = content.get(name)
    return value.get("value") if isinstance(value, dict) else value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value) if value is not None else ""


def matched_keywords(content: dict[str, Any], keywords: list[str]) -> list[str]:
    """The configured keywords found in the note's title, abstract or keywords."""
    haystack = " ".join(_text(field(content, k)) for k in ("title", "abstract", "keywords")).lower()
    return [k for k in keywords if k.lower() in haystack]


def _item(note: dict[str, Any], ctx: SourceContext, venue: str, matched: list[str]) -> ResearchItem | None:
    content = note.get("content")
    note_id = note.get("id")
    if not isinstance(content, dict) or not note_id or not field(content, "title"):
        return None
    when = parse_time(note.get("pdate") or note.get("cdate"))
    forum = note.get("forum") or note_id
    return ResearchItem(
        id=f"openreview:{note_id}", source="openreview", kind="paper", title=_text(field(content, "title")),
        abstract=_text(field(content, "abstract")), url=f"https://openreview.net/forum?id={forum}",
        published=iso(when) if when else None, fetched_at=ctx.fetched_at, authority=0.9,
        extra={"venue": _text(field(content, "venue")), "venueid": venue,
               "keywords": [str(k) for k in field(content, "keywords") or []][:20],
               "authors": [str(a) for a in field(content, "authors") or []][:10], "matched": matched},
    )


async def _login_headers(ctx: SourceContext, base: str) -> dict[str, str]:
    """The bearer header from `POST /login` with the configured account, or {} without one."""
    if ctx.login is None:
        return {}
    user, password = ctx.login
    try:
        body = await ctx.http.post_json(f"{base}/login", body={"id": user, "password": password})
    except HTTPStatusError as err:
        # The API's message is left out: nothing the server echoes about the attempt is repeated.
        raise SourceError(f"OpenReview login as {user} failed: HTTP {err.status}"
                          f"{f' {err.name}' if err.name else ''} (check {' and '.join(LOGIN_ENV)})") from None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise SourceError(f"OpenReview login as {user} answered without a token")
    return {"Authorization": f"Bearer {token}"}


async def fetch_openreview(ctx: SourceContext, cfg: OpenReviewSource) -> list[ResearchItem]:
    """Each venue's notes, page by page, kept when a keyword matches and they fall in the window; a bad
    page loses only its own venue's pages from there on."""
    base = cfg.base_url.rstrip("/")
    headers = await _login_headers(ctx, base)
    found: dict[str, ResearchItem] = {}

    async def one(venue: str) -> None:
        offset = 0
        for _page in range(cfg.max_pages):
            try:
                body = await ctx.http.get_json(f"{base}/notes", headers=headers, params={
                    "content.venueid": venue, "limit": cfg.page_size, "offset": offset})
            except HTTPStatusError as err:
                if err.status == 403 and not headers:
                    raise NeedsAccount(f"needs an account: {err}{f' ({err.name})' if err.name else ''} — "
                                       f"set {' and '.join(LOGIN_ENV)}") from None
                raise
            notes = body.get("notes") if isinstance(body, dict) else None
            if not isinstance(notes, list):
                raise SourceError(f"OpenReview answered without a notes list for {venue}")
            for note in notes:
                if not isinstance(note, dict) or not isinstance(note.get("content"), dict):
                    continue
                matched = matched_keywords(note["content"], cfg.keywords)
                item = _item(note, ctx, venue, matched) if matched else None
                keep_if_recent(found, item, ctx)
            offset += len(notes)
            total = body.get("count")
            if (len(notes) < cfg.page_size or (isinstance(total, int) and offset >= total)
                    or len(found) >= cfg.max_items):
                break  # a short page is the last one (`count` can be a capped estimate)

    await each_query(ctx, "venue", cfg.venues, one, found)
    return list(found.values())[: cfg.max_items]
