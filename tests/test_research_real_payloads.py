"""Every source against the real responses in ../shared/data/real-payloads (served from 127.0.0.1, read at
test time, never copied here), paged as each recording allows. What each item should say is worked out
here from the payload itself (with minidom and json, not the sources' parsers), then compared."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.dom import minidom

import httpx
import pytest

from pgolf.config import ResearchConfig
from pgolf.research.fetch import PoliteClient, run_fetch
from pgolf.research.items import ResearchItem, normalize_url
from pgolf.research.sources import SOURCES
from pgolf.research.sources.base import SourceContext
from pgolf.research.store import ResearchStore
from research_server import (
    REAL_FEEDS,
    REAL_PULLS,
    REAL_TAVILY,
    FakeApis,
    Reply,
    install_real_routes,
    real_config,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
EVER = timedelta(days=365 * 200)  # every recording (the oldest paper is from 1937) is inside this window


@pytest.fixture(scope="module")
def real(shared_data: Path) -> Path:
    root = shared_data / "real-payloads"
    if not root.is_dir():
        if os.environ.get("PGOLF_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"PGOLF_REQUIRE_SHARED_DATA=1 but {root} is missing")
        pytest.skip(f"{root} not present")
    return root


@pytest.fixture
def apis(real: Path) -> Iterator[FakeApis]:
    fake = FakeApis()
    with fake.serving():
        install_real_routes(fake, real)
        yield fake


def run_source(apis: FakeApis, name: str, *, since: timedelta = EVER, key: str | None = "k",
               **overrides: Any) -> tuple[list[ResearchItem], SourceContext]:
    cfg = getattr(ResearchConfig.model_validate(real_config(apis.url)).sources, name).model_copy(update=overrides)

    async def go() -> tuple[list[ResearchItem], SourceContext]:
        async with httpx.AsyncClient() as client:
            ctx = SourceContext(http=PoliteClient(client, max_retries=0), since=NOW - since, now=NOW, key=key)
            return await SOURCES[name].fetch(ctx, cfg), ctx

    return asyncio.run(go())


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def texts(node: minidom.Element, tag: str) -> list[str]:
    return ["".join(t.data for t in el.childNodes if t.nodeType in (t.TEXT_NODE, t.CDATA_SECTION_NODE)).strip()
            for el in node.getElementsByTagName(tag)]


def first(node: minidom.Element, tag: str) -> str:
    found = texts(node, tag)
    return found[0] if found else ""


def children(node: minidom.Element, tag: str) -> list[minidom.Element]:
    return [c for c in node.childNodes if getattr(c, "tagName", None) == tag]


# --- arXiv -------------------------------------------------------------------------------------------


def arxiv_expected(path: Path) -> list[dict[str, Any]]:
    out = []
    for entry in minidom.parse(str(path)).getElementsByTagName("entry"):
        arxiv_id = re.sub(r"v\d+$", "", first(entry, "id").rsplit("/abs/", 1)[1])
        out.append({"id": f"arxiv:{arxiv_id}", "title": first(entry, "title"),
                    "url": f"https://arxiv.org/abs/{arxiv_id}",
                    "published": z(datetime.fromisoformat(first(entry, "published"))),
                    "authors": [first(a, "name") for a in entry.getElementsByTagName("author")][:10]})
    return out


def as_seen(items: list[ResearchItem], keys: tuple[str, ...] = ("id", "title", "url", "published")) -> list[dict]:
    return [{**{k: getattr(i, k) for k in keys}, **({"authors": i.extra["authors"]} if "authors" in i.extra else {})}
            for i in items]


def test_arxiv_classic_and_2026_formats_with_paging(apis: FakeApis, real: Path) -> None:
    items, ctx = run_source(apis, "arxiv")
    expected = (arxiv_expected(real / "arxiv/2026-testing-start0.xml")
                + arxiv_expected(real / "arxiv/2026-testing-start10.xml")
                + arxiv_expected(real / "arxiv/2016-au_del_maestro.xml"))
    assert len(expected) == 30
    assert as_seen(items) == expected
    # Paged by `start` until the real empty feed; the 2016 query stops there too (31 claimed, 10 recorded).
    starts = [(re.search(r'all:"([^"]*)"', h.query["search_query"]).group(1), h.query["start"])
              for h in apis.hits("/arxiv/api/query")]
    assert starts == [("testing", "0"), ("testing", "10"), ("testing", "20"), ("del_maestro", "0"),
                      ("del_maestro", "10")]
    assert ctx.warnings == [] and ctx.failed_queries == []
    new_format = items[0]  # 2026: `https://arxiv.org/api/...` feed ids, a primary category without scheme
    assert new_format.extra["primary_category"] == "cs.SE" and new_format.extra["pdf_url"].startswith("https://")


# --- Semantic Scholar ---------------------------------------------------------------------------------


def s2_expected(papers: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for p in papers:
        arxiv_id = (p.get("externalIds") or {}).get("ArXiv")
        if p.get("publicationDate"):
            published, precision = f"{p['publicationDate']}T00:00:00Z", None
        elif p.get("year"):
            published, precision = f"{p['year']:04d}-01-01T00:00:00Z", "year"
        else:
            published, precision = None, None
        out.setdefault(f"s2:{p['paperId']}", {
            "title": p["title"], "url": f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else p["url"],
            "published": published, "precision": precision,
            "authors": [a["name"] for a in p.get("authors") or []][:10]})
    return out


def test_semantic_scholar_two_real_pages_and_year_only_dates(apis: FakeApis, real: Path) -> None:
    papers = [p for name in ("2023-search-turing-offset0.json", "2023-search-turing-offset100.json")
              for p in json.loads((real / "semantic_scholar" / name).read_text())["data"]]
    expected = s2_expected(papers)
    items, _ = run_source(apis, "semantic_scholar")
    seen = {i.id: {"title": i.title, "url": i.url, "published": i.published,
                   "precision": i.extra.get("date_precision"), "authors": i.extra["authors"]} for i in items}
    assert seen == expected and len(items) == len(expected)
    assert [h.query["offset"] for h in apis.hits("/s2/graph/v1/paper/search")] == ["0", "100", "200"]
    year_only = [i for i in items if i.extra.get("date_precision") == "year"]
    assert year_only, "the recordings hold papers with a year and no publicationDate"
    assert all(i.published == f"{i.extra['year']:04d}-01-01T00:00:00Z" for i in year_only)

    # The window now judges those papers by their year too: none older than its start passes.
    since = datetime(2020, 1, 1, tzinfo=UTC)
    recent, _ = run_source(apis, "semantic_scholar", since=NOW - since)
    assert {i.id for i in recent} == {k for k, e in expected.items()
                                      if e["published"] is None or e["published"] >= "2020-01-01T00:00:00Z"}
    assert not [i for i in recent if i.published and i.published < "2020-01-01"]


def test_semantic_scholar_real_empty_answer(apis: FakeApis) -> None:
    items, ctx = run_source(apis, "semantic_scholar", queries=["n0 r3sult s3arch t3rm"])
    assert items == [] and ctx.warnings == []  # `{"total": 0, "offset": 0}`: no data key, no error


# --- OpenReview ---------------------------------------------------------------------------------------


def test_openreview_real_v2_note(apis: FakeApis, real: Path) -> None:
    note = json.loads((real / "openreview/2025-notes-search-regml.json").read_text())["notes"][0]
    items, _ = run_source(apis, "openreview", since=EVER)
    assert as_seen(items) == [{
        "id": f"openreview:{note['id']}", "title": note["content"]["title"]["value"],
        "url": f"https://openreview.net/forum?id={note['forum']}",
        "published": z(datetime.fromtimestamp(note["pdate"] / 1000, UTC)),
        "authors": note["content"]["authors"]["value"]}]
    assert items[0].extra["venue"] == note["content"]["venue"]["value"]
    # `count` says 10000 but the page is short: the last one, no second request.
    assert [h.query["offset"] for h in apis.hits("/openreview/notes")] == ["0"]


# --- GitHub -------------------------------------------------------------------------------------------


def test_github_prs_real_2012_and_2020_pages_and_files(apis: FakeApis, real: Path) -> None:
    items, ctx = run_source(apis, "github_prs", key=None)
    expected = [{"id": f"github-pr:{repo}#{pr['number']}", "title": pr["title"], "url": pr["html_url"],
                 "published": pr["created_at"], "author": pr["user"]["login"]}
                for repo, name in REAL_PULLS.items()
                for pr in json.loads((real / "github_prs" / name).read_text())]
    assert [{"id": i.id, "title": i.title, "url": i.url, "published": i.published, "author": i.extra["author"]}
            for i in items] == expected
    assert len(items) == 4
    # The records repository's PRs have their files listed (45 real files, none under records/): no contents.
    files = [h.path for h in apis.requests if h.path.endswith("/files")]
    assert files == [f"/github/repos/PyGithub/PyGithub/pulls/{n}/files" for n in (39, 32, 31)]
    assert [i.extra["records"] for i in items[:3]] == [[], [], []] and "records" not in items[3].extra
    assert not [h for h in apis.requests if "/contents/" in h.path] and ctx.warnings == []


def code_expected(path: Path) -> list[dict]:
    return [{"id": f"github-code:{h['repository']['full_name']}/{h['path']}",
             "title": f"{h['path']} in {h['repository']['full_name']}", "url": h["html_url"],
             "published": None,
             "abstract": "\n…\n".join(m["fragment"] for m in h["text_matches"]) if "text_matches" in h
             else h["repository"]["description"] or ""}
            for h in json.loads(path.read_text())["items"]]


def test_github_code_search_real_text_matches(apis: FakeApis, real: Path) -> None:
    items, _ = run_source(apis, "github_code")
    assert as_seen(items, ("id", "title", "url", "published", "abstract")) == code_expected(
        real / "github_code/2018-search-code-text-match.json")
    assert len(items) == 5
    assert [h.query["page"] for h in apis.hits("/github/search/code")] == ["1"]  # 5 of total_count 5


def test_github_code_search_real_without_text_matches(apis: FakeApis, real: Path) -> None:
    apis.route("/github/search/code", Reply(200, (real / "github_code/2014-search-code.json").read_bytes()))
    items, _ = run_source(apis, "github_code")
    assert as_seen(items, ("id", "title", "url", "published", "abstract")) == code_expected(
        real / "github_code/2014-search-code.json")
    assert len(items) == 14


# --- feeds ------------------------------------------------------------------------------------------


def feed_expected(path: Path) -> list[dict]:
    doc = minidom.parse(str(path)).documentElement
    if doc.tagName == "rss":
        return [{"title": first(it, "title"), "url": first(it, "link"),
                 "published": z(parsedate_to_datetime(first(it, "pubDate")))}
                for it in doc.getElementsByTagName("item")]
    return [{"title": first(e, "title"), "url": children(e, "link")[0].getAttribute("href"),
             "published": z(datetime.fromisoformat(first(e, "published")))}
            for e in doc.getElementsByTagName("entry")]


def test_feeds_three_real_sites(apis: FakeApis, real: Path) -> None:
    items, ctx = run_source(apis, "feeds")
    expected = [e for name in REAL_FEEDS for e in feed_expected(real / "feeds" / name)]
    assert len(expected) == 53 + 6 + 2
    assert [{"title": i.title, "url": i.url, "published": i.published} for i in items] == expected
    assert ctx.warnings == []
    colah = [i for i in items if "colah" in i.url]
    assert colah[0].published == "2019-05-30T00:00:00Z"  # "Thurs, 30 May 2019 00:00:00 UTC"


# --- Tavily -------------------------------------------------------------------------------------------


def test_tavily_three_real_searches(apis: FakeApis, real: Path) -> None:
    items, _ = run_source(apis, "tavily")
    expected = [{"url": r["url"], "title": r["title"], "score": r["score"], "published": r.get("published_date")}
                for name in REAL_TAVILY.values()
                for r in json.loads((real / "tavily" / name).read_text())["results"]]
    assert [{"url": i.url, "title": i.title, "score": i.score, "published": i.published} for i in items] == expected
    assert len({normalize_url(e["url"]) for e in expected}) == len(items) == 12
    assert [json.loads(h.body)["query"] for h in apis.hits("/tavily/search")] == list(REAL_TAVILY)


# --- all of them into the store, and one bad answer among good ones --------------------------------------


def test_every_real_payload_into_the_store(apis: FakeApis, real: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    store = ResearchStore(tmp_path / "research.db")
    cfg = ResearchConfig.model_validate(real_config(apis.url))
    report = run_fetch(cfg, store, now=NOW, since=EVER)
    fetched = {o.source: o.fetched for o in report.outcomes}
    assert {o.status for o in report.outcomes} == {"ok"}, report.summary()
    assert fetched["arxiv"] == 30 and fetched["openreview"] == 1 and fetched["github_prs"] == 4
    assert fetched["github_code"] == 5 and fetched["feeds"] == 61 and fetched["tavily"] == 12
    papers = {p["paperId"]: p for name in ("2023-search-turing-offset0.json", "2023-search-turing-offset100.json")
              for p in json.loads((real / "semantic_scholar" / name).read_text())["data"]}
    assert fetched["semantic_scholar"] == len(papers)
    assert store.count() == sum(o.new for o in report.outcomes) > 0
    year_only = {i.id.removeprefix("s2:"): i for i in store.list(source="semantic_scholar", limit=1000)
                 if i.extra.get("date_precision") == "year"}
    assert set(year_only) == {k for k, p in papers.items() if not p.get("publicationDate") and p.get("year")}
    assert all(i.published == f"{papers[k]['year']:04d}-01-01T00:00:00Z" for k, i in year_only.items())


GARBAGE = Reply(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})


def _garbage_for(apis: FakeApis, path: str, bad: str, key: str) -> None:
    """Answer query `bad` (found under `key` of the request) with garbage; the rest as recorded."""
    real_route = apis.routes[path]

    def route(req: Any) -> Reply:
        asked = json.loads(req.body).get("query") if req.method == "POST" else req.query.get(key, "")
        return GARBAGE if bad in asked else real_route(req)

    apis.route(path, route)


@pytest.mark.parametrize(("source", "path", "key", "queries", "bad", "kept"), [
    ("tavily", "/tavily/search", "query", list(REAL_TAVILY), "attention mechanisms", 10),
    ("arxiv", "/arxiv/api/query", "search_query", ["testing", "broken", "del_maestro"], "broken", 30),
    ("semantic_scholar", "/s2/graph/v1/paper/search", "query", ["turing", "broken", "n0 r3sult s3arch t3rm"],
     "broken", None),
])
def test_one_of_three_queries_answered_with_garbage(apis: FakeApis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    source: str, path: str, key: str, queries: list[str], bad: str,
                                                    kept: int | None) -> None:
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    _garbage_for(apis, path, bad, key)
    cfg = real_config(apis.url)
    cfg["sources"][source]["queries"] = queries
    store = ResearchStore(tmp_path / "research.db")
    outcome = run_fetch(ResearchConfig.model_validate(cfg), store, names=[source], now=NOW,
                        since=EVER).outcomes[0]
    assert outcome.status == "ok" and outcome.failed_queries == [bad]
    assert f"query {bad!r} failed: " in outcome.detail and outcome.detail.count("failed") == 1
    stored = store.list(source=source, limit=1000)
    assert len(stored) == outcome.new > 0  # the store may still merge two items of one paper
    if kept is not None:
        assert outcome.fetched == kept
    assert {i.extra["query"] for i in stored} <= set(queries) - {bad}


def test_a_bad_second_page_keeps_the_first(apis: FakeApis, real: Path) -> None:
    real_route = apis.routes["/s2/graph/v1/paper/search"]
    apis.route("/s2/graph/v1/paper/search",
               lambda req: Reply(200, b'{"data": "oops"}') if req.query.get("offset") == "100" else real_route(req))
    items, ctx = run_source(apis, "semantic_scholar")
    first_page = json.loads((real / "semantic_scholar/2023-search-turing-offset0.json").read_text())["data"]
    assert {i.id for i in items} == {f"s2:{p['paperId']}" for p in first_page}
    assert ctx.failed_queries == ["turing"] and "without a data list" in ctx.warnings[0]
