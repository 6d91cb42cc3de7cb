"""Each research source against recorded payloads served on 127.0.0.1: parsing, pagination, the window,
malformed answers; and the polite client's retries."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pgolf.config import ResearchConfig
from pgolf.research.fetch import PoliteClient
from pgolf.research.items import ResearchItem
from pgolf.research.sources import SOURCES
from pgolf.research.sources.base import NeedsAccount, SourceContext, SourceError, Unreachable
from research_server import (
    PULLS,
    RECORD,
    FakeApis,
    Reply,
    json_reply,
    payload,
    pointed_config,
    recorded_apis,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with recorded_apis() as fake:
        yield fake


def run_source(apis: FakeApis, name: str, *, since: timedelta = timedelta(hours=48), key: str | None = None,
               login: tuple[str, str] | None = None, **overrides: Any) -> tuple[list[ResearchItem], SourceContext]:
    """One source's fetch function, over a real client, against the fake server."""
    cfg = getattr(ResearchConfig.model_validate(pointed_config(apis.url)).sources, name)
    cfg = cfg.model_copy(update=overrides)

    async def go() -> tuple[list[ResearchItem], SourceContext]:
        async with httpx.AsyncClient() as client:
            ctx = SourceContext(http=PoliteClient(client, max_retries=1, base_delay=0.01), since=NOW - since,
                                now=NOW, key=key, login=login)
            return await SOURCES[name].fetch(ctx, cfg), ctx

    return asyncio.run(go())


def test_arxiv_pages_until_the_window_ends(apis: FakeApis) -> None:
    items, _ = run_source(apis, "arxiv")
    assert [i.id for i in items] == ["arxiv:2502.18801", "arxiv:2502.17710"]  # the 2025-02-14 paper is older
    first = items[0]
    assert first.title.startswith("Int6 Weights Are All You Need") and "\n" in first.title  # store flattens it
    assert first.url == "https://arxiv.org/abs/2502.18801"
    assert first.published == "2025-02-28T09:12:40Z"
    assert first.extra["authors"] == ["Ada Example", "Grace Sample"]
    assert first.extra["categories"] == ["cs.LG", "cs.CL"]
    hits = apis.hits("/arxiv/api/query")
    assert [h.query["start"] for h in hits] == ["0", "2"]
    query = hits[0].query["search_query"]
    assert 'all:"language model quantization"' in query and "(cat:cs.LG OR cat:cs.CL)" in query
    assert "submittedDate:[202502271200 TO 202503011200]" in query
    assert hits[0].query["sortBy"] == "submittedDate"


def test_arxiv_wider_window_reads_every_page(apis: FakeApis) -> None:
    items, _ = run_source(apis, "arxiv", since=timedelta(days=30))
    assert "arxiv:2502.10001" in {i.id for i in items}


def test_arxiv_error_feed_and_malformed_xml(apis: FakeApis) -> None:
    apis.route("/arxiv/api/query", payload("arxiv_error.xml"))
    with pytest.raises(SourceError, match="arXiv rejected the query: max_results must be non-negative"):
        run_source(apis, "arxiv")
    apis.route("/arxiv/api/query", Reply(200, b"<feed><entry>unclosed"))
    with pytest.raises(SourceError, match="malformed XML from arXiv"):
        run_source(apis, "arxiv")
    apis.route("/arxiv/api/query", Reply(200, b'<!DOCTYPE lolz [<!ENTITY a "aaaa">]><feed>&a;</feed>'))
    with pytest.raises(SourceError, match="refused XML from arXiv: it declares entity 'a'"):
        run_source(apis, "arxiv")


def test_openreview_filters_by_venueid_keywords_and_window(apis: FakeApis) -> None:
    items, _ = run_source(apis, "openreview", since=timedelta(days=365))
    assert [i.id for i in items] == ["openreview:Xq1bV9kLmN"]  # protein paper: no keyword; 2021 paper: too old
    paper = items[0]
    assert paper.url == "https://openreview.net/forum?id=Xq1bV9kLmN"
    assert paper.extra["venue"] == "ICLR 2025 Poster"
    assert paper.extra["matched"] == ["quantization", "compression"]
    hits = apis.hits("/openreview/notes")
    assert [(h.query["content.venueid"], h.query["offset"]) for h in hits] == [
        ("ICLR.cc/2025/Conference", "0"), ("ICLR.cc/2025/Conference", "2")]
    # A narrower window drops the January paper too.
    assert run_source(apis, "openreview", since=timedelta(days=7))[0] == []


def test_openreview_malformed_answer(apis: FakeApis) -> None:
    apis.route("/openreview/notes", json_reply({"name": "NotFoundError", "message": "venue"}))
    with pytest.raises(SourceError, match="without a notes list"):
        run_source(apis, "openreview")


def test_semantic_scholar_follows_next_and_sends_key(apis: FakeApis) -> None:
    items, _ = run_source(apis, "semantic_scholar", since=timedelta(days=30), key="s2-secret")
    assert [i.id for i in items] == ["s2:8c1f9e0a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e",
                                     "s2:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
                                     "s2:ffeeddccbbaa99887766554433221100ffeeddcc"]
    assert items[0].url == "https://arxiv.org/abs/2502.18801"  # the arXiv page, so the store collapses it
    assert items[1].abstract == ""  # a null abstract is an empty one
    hits = apis.hits("/s2/graph/v1/paper/search")
    assert [h.query["offset"] for h in hits] == ["0", "2"]
    assert hits[0].headers["x-api-key"] == "s2-secret"
    assert hits[0].query["publicationDateOrYear"] == "2025-01-30:"
    # The window also applies to the dates in the answer, not only to the query.
    narrow, _ = run_source(apis, "semantic_scholar", since=timedelta(days=3))
    assert [i.id for i in narrow] == ["s2:8c1f9e0a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e"]


def test_semantic_scholar_without_key_sends_none(apis: FakeApis) -> None:
    run_source(apis, "semantic_scholar", since=timedelta(days=30))
    assert "x-api-key" not in apis.hits("/s2/graph/v1/paper/search")[0].headers


def test_semantic_scholar_malformed_json(apis: FakeApis) -> None:
    apis.route("/s2/graph/v1/paper/search", Reply(200, b"{not json"))
    with pytest.raises(SourceError, match="malformed JSON from 127.0.0.1"):
        run_source(apis, "semantic_scholar")


def test_github_prs_follow_link_pages_stop_at_window_and_read_records(apis: FakeApis) -> None:
    items, ctx = run_source(apis, "github_prs", key="ghp-secret")
    assert [i.id for i in items] == ["github-pr:openai/parameter-golf#101", "github-pr:openai/parameter-golf#102",
                                     "github-pr:openai/parameter-golf#95"]  # #80 was updated before the window
    assert [h.query.get("page") for h in apis.hits(PULLS)] == [None, "2"]
    assert apis.hits(PULLS)[0].headers["authorization"] == "Bearer ghp-secret"
    record_pr = items[0]
    assert record_pr.extra["merged"] is True and record_pr.authority == 0.95
    assert items[1].extra["merged"] is False and items[1].abstract == ""
    records = record_pr.extra["records"]
    assert [r["folder"] for r in records] == [RECORD]  # the removed folder is not read
    assert "val_bpb 1.1748" in records[0]["readme"]
    assert json.loads(records[0]["submission_json"])["val_bpb"] == 1.1748
    contents = [h for h in apis.requests if "/contents/" in h.path]
    assert {h.query["ref"] for h in contents} == {"a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"}
    assert ctx.warnings == []


def test_github_prs_keep_the_pr_when_its_records_fail(apis: FakeApis) -> None:
    apis.route(f"/github/repos/openai/parameter-golf/contents/{RECORD}/README.md", Reply(200, b"[]"))
    items, ctx = run_source(apis, "github_prs")
    assert len(items) == 3 and "records" not in items[0].extra
    assert ctx.warnings and "records of openai/parameter-golf#101" in ctx.warnings[0]


def test_github_prs_malformed_page(apis: FakeApis) -> None:
    apis.route(PULLS, json_reply({"message": "Moved"}))
    with pytest.raises(SourceError, match="where a list was expected"):
        run_source(apis, "github_prs")


def test_github_code_search_pages_and_snippets(apis: FakeApis) -> None:
    items, _ = run_source(apis, "github_code", key="ghp-secret")
    assert [i.id for i in items] == ["github-code:someone/pg-fork/train_gpt.py", "github-code:other/golf/src/quant.py",
                                     "github-code:third/val-bpb/README.md"]
    assert "int6 quantization of the MLP weights" in items[0].abstract
    hits = apis.hits("/github/search/code")
    assert [h.query["page"] for h in hits] == ["1", "2"]
    assert hits[0].headers["accept"] == "application/vnd.github.text-match+json"
    apis.route("/github/search/code", json_reply({"total_count": 1}))
    with pytest.raises(SourceError, match="without an items list"):
        run_source(apis, "github_code", key="k")


def test_feeds_rss_and_atom_within_window(apis: FakeApis) -> None:
    items, ctx = run_source(apis, "feeds")
    by_title = {i.title: i for i in items}
    assert set(by_title) == {"How we fit a 20M model in 16MB", "New record: value embeddings"}
    rss = by_title["How we fit a 20M model in 16MB"]
    assert rss.abstract == "Quantize to int6, then zstd the rest."
    assert rss.url == "https://mlblog.example.com/posts/fit-16mb" and rss.published == "2025-02-28T15:30:00Z"
    atom = by_title["New record: value embeddings"]
    assert atom.url == "https://speedrun.example.org/2025/02/value-embeddings"
    wide, _ = run_source(apis, "feeds", since=timedelta(days=90))
    assert "Holiday post" in {i.title for i in wide}
    assert ctx.warnings == []


def test_one_broken_feed_is_a_warning_all_broken_is_a_failure(apis: FakeApis) -> None:
    apis.route("/feeds/atom.xml", Reply(200, b"<html><body>not a feed</body></html>"))
    items, ctx = run_source(apis, "feeds")
    assert len(items) == 1 and "neither RSS 2.0 nor Atom" in ctx.warnings[0]
    apis.fail("/feeds/rss.xml", 404)
    with pytest.raises(SourceError, match="every feed failed"):
        run_source(apis, "feeds")


def test_tavily_posts_queries_with_the_key(apis: FakeApis) -> None:
    items, _ = run_source(apis, "tavily", key="tvly-secret")
    assert {i.url for i in items} == {"https://example-blog.dev/parameter-golf-notes", "https://recipes.example.com/soup",
                                      "https://arxiv.org/abs/2502.18801"}  # "Old news" predates the window
    by_url = {i.url: i for i in items}
    assert by_url["https://arxiv.org/abs/2502.18801"].authority == 0.85
    assert by_url["https://recipes.example.com/soup"].score == 0.21
    hit = apis.hits("/tavily/search")[0]
    assert hit.method == "POST" and hit.headers["authorization"] == "Bearer tvly-secret"
    body = json.loads(hit.body)
    assert body["query"] == "parameter golf" and body["time_range"] == "week"
    apis.route("/tavily/search", json_reply({"detail": {"error": "Unauthorized"}}))
    with pytest.raises(SourceError, match="without a results list"):
        run_source(apis, "tavily", key="k")


# --- the polite client -------------------------------------------------------------------------------


def _polite(apis: FakeApis, path: str, **kwargs: Any) -> tuple[list[float], Any]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))

    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            http = PoliteClient(client, sleep=sleep, **kwargs)
            return await http.get_json(f"{apis.url}{path}")

    try:
        return slept, asyncio.run(go())
    except SourceError as err:
        return slept, err


def _sequence(*replies: Reply):
    queue = list(replies)
    return lambda _req: queue.pop(0) if len(queue) > 1 else queue[0]


def test_retry_after_is_honoured_on_429(apis: FakeApis) -> None:
    apis.route("/x", _sequence(Reply(429, b"", {"Retry-After": "7"}), json_reply({"ok": 1})))
    slept, body = _polite(apis, "/x", max_retries=3, base_delay=0.5, max_delay=60)
    assert body == {"ok": 1} and slept == [7.0]


def test_retry_after_zero_means_retry_now(apis: FakeApis) -> None:
    # 0 is a real answer ("retry at once"), not a missing header: no fallback to the backoff delay.
    apis.route("/x", _sequence(Reply(503, b"", {"Retry-After": "0"}), json_reply({"ok": 1})))
    slept, body = _polite(apis, "/x", max_retries=3, base_delay=0.5, max_delay=60)
    assert body == {"ok": 1} and slept == [0.0]


def test_5xx_backs_off_exponentially_then_gives_up(apis: FakeApis) -> None:
    apis.fail("/x", 503)
    slept, err = _polite(apis, "/x", max_retries=3, base_delay=0.5, max_delay=1.5)
    assert isinstance(err, SourceError) and str(err) == f"HTTP 503 from {apis.url[7:]}/x (4 tries)"
    assert slept == [0.5, 1.0, 1.5]  # doubled each time, capped
    assert len(apis.hits("/x")) == 4


def test_client_errors_are_not_retried(apis: FakeApis) -> None:
    apis.route("/x", json_reply({"message": "Bad credentials"}, 401))
    slept, err = _polite(apis, "/x", max_retries=3, base_delay=0.5)
    assert str(err).endswith("/x: Bad credentials") and "HTTP 401" in str(err)
    assert slept == [] and len(apis.hits("/x")) == 1


def _attempts(url: str, transport: httpx.AsyncBaseTransport | None = None) -> tuple[SourceError, int, list[float]]:
    """The error, the number of requests and the sleeps of a polite client with 3 retries."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> tuple[SourceError, int]:
        async with httpx.AsyncClient(transport=transport) as client:
            http = PoliteClient(client, max_retries=3, base_delay=2.0, sleep=sleep)
            try:
                await http.get_json(url)
            except SourceError as err:
                return err, http.requests
        raise AssertionError("the request succeeded")

    err, requests = asyncio.run(go())
    return err, requests, slept


def test_nothing_listening_is_one_clear_error_without_retries() -> None:
    # A port with nothing listening refuses the connection: the same answer every time, so one try.
    err, requests, slept = _attempts("http://127.0.0.1:9/")
    assert isinstance(err, Unreachable)
    assert str(err) == "cannot connect to 127.0.0.1:9/: Connection refused"
    assert (requests, slept) == (1, [])


def test_name_resolution_failure_is_not_retried() -> None:
    # The error the operating system gives offline, injected below httpx (no DNS query is ever sent).
    seen: list[httpx.Request] = []

    def offline(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request) \
            from socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    err, requests, slept = _attempts("https://export.arxiv.org/api/query", httpx.MockTransport(offline))
    assert isinstance(err, Unreachable)
    assert str(err).startswith("cannot resolve export.arxiv.org (offline, or no DNS)")
    assert (requests, len(seen), slept) == (1, 1, [])


def test_a_broken_exchange_is_still_retried() -> None:
    # Unlike a connection never made, a reset mid-answer may pass: it keeps its backoff.
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ReadError("Connection reset by peer", request=request)
        return httpx.Response(200, json={"ok": 1})

    async def go() -> tuple[Any, list[float]]:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        async with httpx.AsyncClient(transport=httpx.MockTransport(flaky)) as client:
            return await PoliteClient(client, max_retries=3, base_delay=2.0, sleep=sleep).get_json(
                "https://example.org/x"), slept

    body, slept = asyncio.run(go())
    assert body == {"ok": 1} and slept == [2.0, 4.0] and len(calls) == 3


def test_min_interval_spaces_requests(apis: FakeApis) -> None:
    apis.route("/x", json_reply([]))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            http = PoliteClient(client, min_interval=3.0, sleep=sleep)
            for _ in range(3):
                await http.get_json(f"{apis.url}/x")

    asyncio.run(go())
    assert len(slept) == 2 and all(2.5 < s <= 3.0 for s in slept)


def test_sources_do_not_depend_on_the_store() -> None:
    # A source only produces items; the store (SQLite, dedup) must stay a later stage it never imports.
    code = "import sys, pgolf.research.sources; print(sorted(m for m in sys.modules if m.startswith('pgolf.research')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pgolf.research.sources.tavily" in loaded and "pgolf.research.store" not in loaded


# --- issue 19: year-only dates, entity-safe feeds, OpenReview accounts -------------------------------


def test_semantic_scholar_year_stands_in_for_a_missing_date(apis: FakeApis) -> None:
    def paper(pid: str, date: str | None, year: object) -> dict:
        return {"paperId": pid, "title": f"paper {pid}", "publicationDate": date, "year": year, "url": f"u/{pid}"}

    apis.route("/s2/graph/v1/paper/search", json_reply({"total": 5, "offset": 0, "data": [
        paper("this-year", None, 2025), paper("old", None, 1937), paper("undated", None, None),
        paper("exact", "2025-02-20", 2025), paper("odd-year", None, "2025")]}))
    items, _ = run_source(apis, "semantic_scholar", since=timedelta(days=90))  # from 2024-12-01
    by_id = {i.id.removeprefix("s2:"): i for i in items}
    assert set(by_id) == {"this-year", "undated", "exact", "odd-year"}  # 1937 is no longer let through
    assert by_id["this-year"].published == "2025-01-01T00:00:00Z"
    assert by_id["this-year"].extra["date_precision"] == "year"
    assert by_id["exact"].published == "2025-02-20T00:00:00Z" and "date_precision" not in by_id["exact"].extra
    assert by_id["undated"].published is None and by_id["odd-year"].published is None  # not a number: no date
    # The window judges the year's first instant: a 30-day window (from 2025-01-30) no longer holds it.
    narrow, _ = run_source(apis, "semantic_scholar", since=timedelta(days=30))
    assert {i.id.removeprefix("s2:") for i in narrow} == {"undated", "exact", "odd-year"}


RSS_091 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old school</title><link>https://old.example.net/</link>
<description>An RSS 0.91 feed</description><language>en-us</language>
<item><title>Caf&eacute; notes on int6 &amp; zstd</title><link>https://old.example.net/cafe</link>
<description>Int6&nbsp;weights.</description><pubDate>Fri, 28 Feb 2025 10:00:00 GMT</pubDate></item>
</channel></rss>"""


def _entity_feed(declaration: str, body: str) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{declaration}\n]>\n<rss version="2.0"><channel><title>t</title>'
            f"<item><title>{body}</title><link>https://evil.example/x</link>"
            "<pubDate>Fri, 28 Feb 2025 10:00:00 GMT</pubDate></item></channel></rss>").encode()


def test_a_feed_with_a_doctype_is_read(apis: FakeApis) -> None:
    apis.route("/feeds/rss091.xml", Reply(200, RSS_091, {"Content-Type": "application/rss+xml"}))
    items, ctx = run_source(apis, "feeds", urls=[f"{apis.url}/feeds/rss091.xml"])
    assert [(i.title, i.url, i.published) for i in items] == [
        ("Café notes on int6 & zstd", "https://old.example.net/cafe", "2025-02-28T10:00:00Z")]
    assert items[0].abstract == "Int6\xa0weights." and ctx.warnings == []
    assert not [r for r in apis.requests if "netscape" in r.path]  # the DTD is never fetched


def test_entity_expansion_attempts_are_refused_and_the_other_feeds_kept(apis: FakeApis) -> None:
    laughs = "\n".join(['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10)])
    hostile = {
        "laughs.xml": _entity_feed(laughs, "&lol9;"),  # a billion "lol"s if expanded
        "xxe.xml": _entity_feed('<!ENTITY secret SYSTEM "file:///etc/passwd">', "&secret;"),
        "remote-dtd.xml": _entity_feed(f'<!ENTITY % remote SYSTEM "{apis.url}/evil.dtd">\n%remote;', "x"),
    }
    for name, body in hostile.items():
        apis.route(f"/feeds/{name}", Reply(200, body, {"Content-Type": "application/rss+xml"}))
    apis.route("/evil.dtd", Reply(200, b'<!ENTITY leaked "LEAKED">'))
    urls = [f"{apis.url}/feeds/{n}" for n in ("rss.xml", *hostile)]
    items, ctx = run_source(apis, "feeds", urls=urls)
    assert [i.title for i in items] == ["How we fit a 20M model in 16MB"]  # the good feed, untouched
    assert ctx.failed_queries == urls[1:]
    assert len(ctx.warnings) == 3 and all("declares entity" in w and "never expanded" in w for w in ctx.warnings)
    assert apis.hits("/evil.dtd") == []  # no external reference was followed


def _openreview(apis: FakeApis, *, token: str = "tok-7f3a") -> list[dict]:
    """/login answers a token for ada/s3cret; /notes answers only that token, else 403 ChallengeRequired."""
    logins: list[dict] = []

    def login(req: Any) -> Reply:
        body = json.loads(req.body)
        logins.append(body)
        if body == {"id": "ada@example.org", "password": "s3cret"}:
            return json_reply({"token": token, "user": {"id": "~Ada_Example1"}})
        return json_reply({"name": "InvalidCredentials", "message": f"bad password {body.get('password')}"}, 400)

    recorded = apis.routes["/openreview/notes"]

    def notes(req: Any) -> Reply:
        if req.headers.get("authorization") != f"Bearer {token}":
            return json_reply({"name": "ChallengeRequiredError", "message": "Please log in to continue"}, 403)
        return recorded(req)

    apis.route("/openreview/login", login)
    apis.route("/openreview/notes", notes)
    return logins


def test_openreview_403_is_needs_an_account(apis: FakeApis) -> None:
    _openreview(apis)
    with pytest.raises(NeedsAccount, match="^needs an account: HTTP 403 from 127.0.0.1:\\d+/openreview/notes: "
                                           "Please log in to continue \\(ChallengeRequiredError\\) — set OPENREVIEW_USERNAME and "
                                           "OPENREVIEW_PASSWORD$"):
        run_source(apis, "openreview", since=timedelta(days=365),
                   venues=["ICLR.cc/2025/Conference", "ICML.cc/2025/Conference"])
    assert apis.hits("/openreview/login") == [] and len(apis.hits("/openreview/notes")) == 1  # not per venue


def test_openreview_login_round_trip(apis: FakeApis) -> None:
    logins = _openreview(apis)
    items, ctx = run_source(apis, "openreview", since=timedelta(days=365), login=("ada@example.org", "s3cret"))
    assert [i.id for i in items] == ["openreview:Xq1bV9kLmN"] and ctx.warnings == []
    assert logins == [{"id": "ada@example.org", "password": "s3cret"}]  # one login for every page
    assert {h.headers["authorization"] for h in apis.hits("/openreview/notes")} == {"Bearer tok-7f3a"}
    assert "s3cret" not in repr(ctx) and "tok-7f3a" not in repr(ctx)
    with pytest.raises(SourceError) as refused:
        run_source(apis, "openreview", login=("ada@example.org", "wrong-pw"))
    assert str(refused.value) == ("OpenReview login as ada@example.org failed: HTTP 400 InvalidCredentials "
                                  "(check OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD)")  # the echo is left out


def test_a_host_lost_mid_fetch_keeps_the_queries_already_read(apis: FakeApis) -> None:
    # Query 1 is answered; then the connection cannot be made any more: no retry, no further query,
    # and what query 1 found is kept.
    calls: list[str] = []

    def gone_after_one(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["query"])
        if len(calls) > 1:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        return httpx.Response(200, json={"data": [{"paperId": "p1", "title": "kept", "publicationDate": "2025-02-28"}]})

    cfg = ResearchConfig.model_validate(pointed_config("http://s2.test")).sources.semantic_scholar
    cfg = cfg.model_copy(update={"queries": ["one", "two", "three"]})

    async def go() -> tuple[list[ResearchItem], SourceContext]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(gone_after_one)) as client:
            ctx = SourceContext(http=PoliteClient(client, max_retries=3, base_delay=0.01), since=NOW - timedelta(days=7),
                                now=NOW)
            return await SOURCES["semantic_scholar"].fetch(ctx, cfg), ctx

    items, ctx = asyncio.run(go())
    assert [i.id for i in items] == ["s2:p1"] and calls == ["one", "two"]
    assert ctx.failed_queries == ["two", "three"]
    assert len(ctx.warnings) == 2, ctx.warnings
    assert all("cannot connect to s2.test/s2/graph/v1/paper/search" in w for w in ctx.warnings), ctx.warnings
