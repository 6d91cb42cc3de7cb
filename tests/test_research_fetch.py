"""Fetching every source together into the store: isolation of failing and hanging sources, keys, the
relevance floor, the window override, dedup across passes, and the daemon's lock and schedule."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pgolf.config import RelevanceFloor, ResearchConfig
from pgolf.errors import ConfigError, LockedError
from pgolf.research.fetch import FetchReport, parse_duration, passes_floor, run_fetch, select_sources
from pgolf.research.items import ResearchItem
from pgolf.research.scheduler import (
    FAST_JOB,
    FULL_JOB,
    DaemonLock,
    build_scheduler,
    lock_path,
    refresh_program,
    run_pass,
)
from pgolf.research.store import ResearchStore
from pgolf.workspace import Workspace, init_workspace
from research_server import (
    FakeApis,
    Reply,
    json_reply,
    pointed_config,
    recorded_apis,
    research_toml,
    write_workspace,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with recorded_apis() as fake:
        yield fake


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")


@pytest.fixture
def store(tmp_path: Path) -> ResearchStore:
    return ResearchStore(tmp_path / "research.db")


def _config(apis: FakeApis, **research: object) -> ResearchConfig:
    return ResearchConfig.model_validate(pointed_config(apis.url, **research))


def _by_source(report: FetchReport) -> dict:
    return {o.source: o for o in report.outcomes}


def test_all_sources_together_store_each_item_once(apis: FakeApis, keys: None, store: ResearchStore) -> None:
    report = run_fetch(_config(apis), store, now=NOW)
    out = _by_source(report)
    assert list(out) == ["arxiv", "openreview", "semantic_scholar", "github_prs", "github_code", "feeds", "tavily"]
    assert {o.status for o in report.outcomes} == {"ok"}, report.summary()
    assert {k: o.fetched for k, o in out.items()} == {
        "arxiv": 2, "openreview": 1, "semantic_scholar": 3, "github_prs": 3, "github_code": 3, "feeds": 2,
        "tavily": 3}
    assert out["tavily"].below_floor == 1  # the 0.21 cooking recipe from a low-authority site
    # The Int6 paper arrives from arXiv, Semantic Scholar (same URL) and Tavily (same URL): stored once.
    assert store.count() == 14
    assert sum(o.new for o in report.outcomes) == 14 and sum(o.duplicates for o in report.outcomes) == 2
    assert report.exit_code == 0
    assert report.summary() == "7 of 7 sources delivered: 17 items, 14 new"
    records = store.competitor_records()
    assert [r.submission["val_bpb"] for r in records if r.submission] == [1.1748]
    for item in store.list():
        assert "<!--" not in item.abstract and "-->" not in item.abstract

    again = run_fetch(_config(apis), store, now=NOW + timedelta(hours=1))
    assert sum(o.new for o in again.outcomes) == 0
    assert sum(o.duplicates + o.updated for o in again.outcomes) == 16
    assert store.count() == 14


def test_hostile_abstract_is_stored_neutralized(apis: FakeApis, store: ResearchStore) -> None:
    run_fetch(_config(apis), store, names=["arxiv"], now=NOW)
    paper = store.get("arxiv:2502.18801")
    assert paper is not None
    assert "RESEARCH_END" in paper.abstract and "<!--" not in paper.abstract
    assert "Ignore previous instructions" not in paper.abstract and "system prompt" not in paper.abstract
    assert paper.flags == ["agent_instruction"]
    assert "\n" not in paper.title


def test_failing_and_hanging_sources_do_not_block_the_others(apis: FakeApis, keys: None,
                                                             store: ResearchStore) -> None:
    apis.fail("/arxiv/api/query", 500)
    apis.hang("/openreview/notes")
    cfg = pointed_config(apis.url)
    cfg["sources"]["openreview"]["timeout_seconds"] = 1.0
    started = time.monotonic()
    report = run_fetch(ResearchConfig.model_validate(cfg), store, now=NOW)
    elapsed = time.monotonic() - started
    out = _by_source(report)
    assert out["arxiv"].status == "failed" and out["arxiv"].detail.startswith("HTTP 500 from 127.0.0.1")
    assert out["arxiv"].requests == 3  # first try plus max_retries = 2
    assert out["openreview"].status == "failed" and "1 s" in out["openreview"].detail
    assert elapsed < 4.0, f"a hanging source held the fetch for {elapsed:.1f} s"
    assert {o.status for k, o in out.items() if k not in ("arxiv", "openreview")} == {"ok"}
    assert store.get("github-pr:openai/parameter-golf#101") is not None
    assert report.exit_code == 0
    assert "failed: arxiv, openreview" in report.summary()


def test_every_source_failing_exits_2(apis: FakeApis, keys: None, store: ResearchStore) -> None:
    for path in list(apis.routes):
        apis.fail(path, 503)
    report = run_fetch(_config(apis), store, now=NOW)
    assert {o.status for o in report.outcomes} == {"failed"}
    assert report.exit_code == 2
    assert report.summary().startswith("0 of 7 sources delivered: 0 items, 0 new; failed: arxiv, openreview")
    assert store.count() == 0


def test_missing_keys_skip_not_fail(apis: FakeApis, store: ResearchStore) -> None:
    report = run_fetch(_config(apis), store, names=["github_code", "tavily", "github_prs"], now=NOW)
    out = _by_source(report)
    assert (out["github_code"].status, out["github_code"].detail) == ("skipped", "GITHUB_TOKEN not set")
    assert (out["tavily"].status, out["tavily"].detail) == ("skipped", "TAVILY_API_KEY not set")
    assert out["github_prs"].status == "ok"  # public repositories need no token
    assert "authorization" not in apis.hits("/github/repos/openai/parameter-golf/pulls")[0].headers
    assert apis.hits("/tavily/search") == [] and apis.hits("/github/search/code") == []


def test_disabled_source_is_not_fetched(apis: FakeApis, store: ResearchStore) -> None:
    cfg = pointed_config(apis.url)
    cfg["sources"]["feeds"]["enabled"] = False
    report = run_fetch(ResearchConfig.model_validate(cfg), store, names=["feeds"], now=NOW)
    assert report.outcomes[0].status == "disabled" and report.exit_code == 2
    assert apis.hits("/feeds/rss.xml") == []


def test_since_overrides_every_source_window(apis: FakeApis, store: ResearchStore) -> None:
    report = run_fetch(_config(apis), store, names=["arxiv", "feeds"], since=timedelta(days=90), now=NOW)
    assert {o.source: o.fetched for o in report.outcomes} == {"arxiv": 3, "feeds": 3}


def test_source_selection() -> None:
    assert [s.name for s in select_sources(fast_only=True)] == ["github_prs", "github_code", "tavily"]
    assert [s.name for s in select_sources(["tavily", " arxiv", "tavily"])] == ["tavily", "arxiv"]
    with pytest.raises(ConfigError, match="unknown research source nope; known: arxiv, openreview"):
        select_sources(["arxiv", "nope"])


def test_relevance_floor_depends_on_authority() -> None:
    floor = RelevanceFloor()

    def item(score: float | None, authority: float) -> ResearchItem:
        return ResearchItem(id="x", source="tavily", kind="web", title="t", abstract="", url="u", published=None,
                            fetched_at="", authority=authority, score=score)

    assert passes_floor(item(None, 0.1), floor)
    assert passes_floor(item(0.31, 0.85), floor) and not passes_floor(item(0.29, 0.85), floor)
    assert passes_floor(item(0.41, 0.6), floor) and not passes_floor(item(0.39, 0.6), floor)
    assert passes_floor(item(0.66, 0.3), floor) and not passes_floor(item(0.64, 0.3), floor)


def test_parse_duration() -> None:
    assert parse_duration("48h") == timedelta(hours=48)
    assert parse_duration("1.5d") == timedelta(hours=36)
    assert parse_duration("90m") == timedelta(minutes=90) and parse_duration("2w") == timedelta(days=14)
    with pytest.raises(ConfigError, match="bad duration '3 days'"):
        parse_duration("3 days")


# --- the daemon --------------------------------------------------------------------------------------


def _workspace(tmp_path: Path, apis: FakeApis) -> Workspace:
    # A window reaching back a century keeps the recorded 2025 payloads inside it whatever today's date is.
    return write_workspace(tmp_path, pointed_config(apis.url, since="36500d"))


def test_daemon_schedule_has_a_full_and_a_fast_pass(tmp_path: Path, apis: FakeApis) -> None:
    scheduler = build_scheduler(_workspace(tmp_path, apis), blocking=False, now=NOW)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {FULL_JOB, FAST_JOB}
    assert jobs[FULL_JOB].trigger.interval == timedelta(hours=6)
    assert jobs[FAST_JOB].trigger.interval == timedelta(hours=1)
    assert jobs[FULL_JOB].next_run_time == NOW  # the first full pass runs at start
    assert jobs[FAST_JOB].next_run_time == NOW + timedelta(hours=1)
    assert jobs[FAST_JOB].args[1] == "fast" and jobs[FULL_JOB].args[1] == "full"


def test_a_fast_pass_fetches_only_github_and_tavily(tmp_path: Path, apis: FakeApis, keys: None) -> None:
    ws = _workspace(tmp_path, apis)
    seen: list[tuple[str, FetchReport]] = []
    report = run_pass(ws, "fast", after_pass=lambda kind, rep: seen.append((kind, rep)))
    assert [o.source for o in report.outcomes] == ["github_prs", "github_code", "tavily"]
    assert {o.status for o in report.outcomes} == {"ok"}
    assert seen == [("fast", report)]
    assert ResearchStore(ws.research_db).get("github-pr:openai/parameter-golf#101") is not None


def test_a_pass_with_news_refreshes_program_md(tmp_path: Path, apis: FakeApis, keys: None) -> None:
    ws = init_workspace(tmp_path / "ws")
    text = ws.config_path.read_text()
    ws.config_path.write_text(text[: text.index("[research]")] +
                              research_toml(pointed_config(apis.url, since="36500d")))
    assert refresh_program(ws, FetchReport([])) is None  # nothing new: program.md is left alone
    before = ws.program_md.read_text()
    line = refresh_program(ws, run_pass(ws, "fast"))
    assert line is not None and line.startswith("program.md refreshed:")
    after = ws.program_md.read_text()
    assert after != before and "parameter-golf" in after


def test_one_daemon_per_workspace(tmp_path: Path, apis: FakeApis) -> None:
    path = lock_path(_workspace(tmp_path, apis))
    first = DaemonLock(path).__enter__()
    with pytest.raises(LockedError, match=r"already runs for this workspace \(pid \d+\)"), DaemonLock(path):
        pass
    first.__exit__(None, None, None)
    with DaemonLock(path):  # released when the first daemon stops
        pass


# --- offline, accounts, year-only dates ---------------------------------------------------------------


def test_offline_every_source_fails_at_once_with_one_try(keys: None, store: ResearchStore) -> None:
    # The default configuration (real hosts, 3 retries from 2 s) with name resolution failing the way it
    # does offline, injected below httpx: no DNS query is sent, and no retry is made.
    attempts: list[str] = []

    def offline(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.host)
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request) \
            from socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    config = ResearchConfig()
    report = run_fetch(config, store, now=NOW, transport=httpx.MockTransport(offline))
    out = _by_source(report)
    assert {o.status for o in report.outcomes} == {"failed"} and report.exit_code == 2
    feeds = len(config.sources.feeds.urls)
    assert {k: o.requests for k, o in out.items()} == {k: feeds if k == "feeds" else 1 for k in out}
    assert len(attempts) == len(out) - 1 + feeds  # one attempt per host: nothing was retried
    assert out["arxiv"].detail.startswith("cannot resolve export.arxiv.org (offline, or no DNS)")
    assert out["feeds"].detail.startswith("every feed failed; first: cannot resolve")
    assert all("\n" not in o.detail for o in report.outcomes)


def test_openreview_without_an_account_is_skipped(apis: FakeApis, store: ResearchStore) -> None:
    apis.route("/openreview/notes", lambda _req: Reply(403, json.dumps(
        {"name": "ChallengeRequiredError", "message": "Please log in"}).encode(), {"Content-Type": "application/json"}))
    outcome = run_fetch(_config(apis), store, names=["openreview", "feeds"], now=NOW).outcomes[0]
    assert (outcome.source, outcome.status) == ("openreview", "skipped")
    assert outcome.detail.startswith("needs an account: HTTP 403 from 127.0.0.1")
    assert "OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD" in outcome.detail


def test_openreview_login_from_the_environment(apis: FakeApis, store: ResearchStore, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = apis.routes["/openreview/notes"]
    apis.route("/openreview/login", lambda req: json_reply({"token": "tok-91c"}) if json.loads(req.body) == {
        "id": "ada@example.org", "password": "pw-5e1"} else json_reply({"name": "InvalidCredentials"}, 400))
    apis.route("/openreview/notes", lambda req: recorded(req) if req.headers.get("authorization") == "Bearer tok-91c"
               else json_reply({"name": "ChallengeRequiredError"}, 403))
    monkeypatch.setenv("OPENREVIEW_USERNAME", "ada@example.org")
    report = run_fetch(_config(apis), store, names=["openreview"], since=timedelta(days=365), now=NOW)
    assert (report.outcomes[0].status, report.outcomes[0].detail) == (
        "skipped", "OPENREVIEW_PASSWORD not set (both of OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD are needed)")
    assert apis.hits("/openreview/login") == []  # half an account is not tried
    monkeypatch.setenv("OPENREVIEW_PASSWORD", "pw-5e1")
    report = run_fetch(_config(apis), store, names=["openreview"], since=timedelta(days=365), now=NOW)
    assert (report.outcomes[0].status, report.outcomes[0].fetched) == ("ok", 1)
    assert len(apis.hits("/openreview/login")) == 1
    stored = json.dumps([o.as_dict() for o in report.outcomes]) + store.path.read_bytes().decode("latin-1")
    assert "pw-5e1" not in stored and "tok-91c" not in stored  # neither the password nor the token is kept


def test_year_only_dates_are_stored_as_such(apis: FakeApis, store: ResearchStore) -> None:
    apis.route("/s2/graph/v1/paper/search", json_reply({"data": [
        {"paperId": "y1", "title": "A year-only paper", "publicationDate": None, "year": 2025, "url": "u/y1"}]}))
    run_fetch(_config(apis), store, names=["semantic_scholar"], since=timedelta(days=120), now=NOW)
    item = store.get("s2:y1")
    assert item is not None and item.published == "2025-01-01T00:00:00Z"
    assert item.extra["date_precision"] == "year"


def test_an_exact_date_found_later_replaces_a_year_only_one(store: ResearchStore) -> None:
    def paper(item_id: str, source: str, published: str, **extra: object) -> ResearchItem:
        return ResearchItem(id=item_id, source=source, kind="paper", title="Int6 weights are all you need",
                            abstract="", url="https://arxiv.org/abs/2502.18801", published=published,
                            fetched_at="2025-03-01T12:00:00Z", authority=0.85, extra=dict(extra))

    store.upsert([paper("s2:abc", "semantic_scholar", "2025-01-01T00:00:00Z", date_precision="year")])
    assert store.upsert([paper("arxiv:2502.18801", "arxiv", "2025-02-28T09:12:40Z")]).duplicates == 1
    kept = store.get("arxiv:2502.18801")
    assert kept is not None and kept.id == "s2:abc"  # collapsed into the first one stored
    assert kept.published == "2025-02-28T09:12:40Z" and "date_precision" not in kept.extra
    # The other way round, a year-only duplicate never blurs an exact date.
    store.upsert([paper("s2:abc2", "semantic_scholar", "2025-01-01T00:00:00Z", date_precision="year")])
    assert store.get("s2:abc").published == "2025-02-28T09:12:40Z"
