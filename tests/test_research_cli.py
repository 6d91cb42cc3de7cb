"""`pgolf research …` as a user runs it: the real CLI in a subprocess against the 127.0.0.1 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pgolf.cli.app import app
from pgolf.errors import PgolfError
from pgolf.research.scheduler import DaemonLock, lock_path
from pgolf.workspace import Workspace
from research_server import FakeApis, Reply, json_reply, pointed_config, recorded_apis, write_workspace


def cli(ws: Workspace, *args: str) -> Result:
    """The CLI in this process (quicker than a subprocess) for one workspace."""
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args], env={"COLUMNS": "200"})


def pgolf(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess; no keys unless given, a wide terminal so lines do not wrap."""
    base = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "TAVILY_API_KEY", "S2_API_KEY")}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], cwd=cwd, capture_output=True, text=True,
                          env={**base, "COLUMNS": "200", **env}, timeout=60)


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with recorded_apis() as fake:
        yield fake


@pytest.fixture
def ws(tmp_path: Path, apis: FakeApis) -> Workspace:
    # A century-wide window keeps the recorded 2025 payloads inside it whatever today's date is.
    cfg = pointed_config(apis.url, since="36500d")
    for table in cfg["sources"].values():
        table["since"] = "36500d"  # openreview, semantic_scholar and feeds have windows of their own
    cfg["sources"]["openreview"]["timeout_seconds"] = 1.5
    return write_workspace(tmp_path, cfg)


def test_fetch_survives_a_failing_and_a_hanging_source(ws: Workspace, apis: FakeApis) -> None:
    apis.fail("/arxiv/api/query", 500)
    apis.hang("/openreview/notes")
    done = pgolf("research", "fetch", cwd=ws.root, GITHUB_TOKEN="ghp-test")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "failed arxiv" in out and "HTTP 500 from 127.0.0.1" in out
    assert "failed openreview" in out and "timeout" in out
    assert "skipped tavily" in out and "TAVILY_API_KEY not set" in out
    assert "4 of 7 sources delivered" in out and "failed: arxiv, openreview; not run: tavily" in out



def test_every_source_failing_exits_2_with_a_summary(ws: Workspace, apis: FakeApis) -> None:
    for path in list(apis.routes):
        apis.fail(path, 502)
    done = cli(ws, "research", "fetch", "--sources", "arxiv,feeds,github_prs")
    assert done.exit_code == 2
    assert done.stderr.strip() == "0 of 3 sources delivered: 0 items, 0 new; failed: arxiv, feeds, github_prs"


def test_without_network_the_report_is_per_source_not_a_traceback(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, as when there is no network
    cfg = pointed_config(closed, max_retries=3, retry_base_seconds=2.0)  # retries would take 2 + 4 + 8 s
    write_workspace(tmp_path, cfg)
    done = pgolf("research", "fetch", cwd=tmp_path, GITHUB_TOKEN="ghp-test", TAVILY_API_KEY="tvly-test")
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    for source in ("arxiv", "openreview", "semantic_scholar", "github_prs", "github_code", "feeds", "tavily"):
        assert f"failed {source}" in done.stdout
    assert "cannot connect to 127.0.0.1:9/arxiv/api/query: Connection refused" in done.stdout
    assert done.stderr.startswith("0 of 7 sources delivered")
    report = json.loads(pgolf("research", "fetch", "--json", cwd=tmp_path, GITHUB_TOKEN="ghp-test",
                              TAVILY_API_KEY="tvly-test").stdout)
    # One try per host: a connection that cannot be made is never retried.
    assert {s["source"]: s["requests"] for s in report["sources"]} == {
        "arxiv": 1, "openreview": 1, "semantic_scholar": 1, "github_prs": 1, "github_code": 1, "feeds": 2,
        "tavily": 1}


def test_a_failed_query_and_a_year_only_date_as_the_user_sees_them(ws: Workspace, apis: FakeApis) -> None:
    cfg_path = ws.root / "pgolf.toml"
    cfg_path.write_text(cfg_path.read_text().replace('queries = ["quantization"]',
                                                     'queries = ["quantization", "broken"]'))
    apis.route("/s2/graph/v1/paper/search", lambda req: Reply(200, b"<html>oops</html>") if req.query["query"] ==
               "broken" else json_reply({"data": [{"paperId": "y1", "title": "A year-only paper",
                                                   "publicationDate": None, "year": 2024, "url": "u/y1"}]}))
    done = pgolf("research", "fetch", "--sources", "semantic_scholar", cwd=ws.root)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if "semantic_scholar" in x)
    assert "ok semantic_scholar" in line and "1 items, 1 new" in line
    assert "query 'broken' failed: malformed JSON from 127.0.0.1" in line
    listed = cli(ws, "research", "list", "--source", "semantic_scholar").stdout
    row = next(x for x in listed.splitlines() if "s2:y1" in x)
    assert "2024 " in row and "2024-01-01" not in row  # only the year is known, only the year is shown
    shown = cli(ws, "research", "show", "s2:y1").stdout
    assert "published 2024 (the source gives only the year)" in shown


def test_bad_options_are_config_errors(ws: Workspace) -> None:
    for args, message in ((("fetch", "--since", "soon"), "bad duration 'soon'"),
                          (("fetch", "--sources", "arxiv,myspace"), "unknown research source myspace"),
                          (("list", "--source", "myspace"), "unknown research source myspace"),
                          (("list", "--tier", "Z"), "unknown tier 'Z'"),
                          (("export",), "--jsonl"),
                          (("show", "arxiv:0000.00000"), "no research item 'arxiv:0000.00000'")):
        done = cli(ws, "research", *args)
        assert isinstance(done.exception, PgolfError) and message in str(done.exception), args
        assert done.exception.exit_code == (1 if args[0] == "show" else 2)


def test_an_unknown_tier_is_one_line_and_exit_2(ws: Workspace) -> None:
    done = pgolf("research", "list", "--tier", "Z", cwd=ws.root)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: unknown tier 'Z': use A, B or C"


def test_list_show_export_after_a_fetch(ws: Workspace) -> None:
    fetched = cli(ws, "research", "fetch", "--sources", "github_prs,feeds", "--json")
    report = json.loads(fetched.stdout)
    assert fetched.exit_code == 0 and report["exit_code"] == 0
    assert [(s["source"], s["new"]) for s in report["sources"]] == [("github_prs", 4), ("feeds", 3)]

    listed = json.loads(cli(ws, "research", "list", "--source", "github_prs", "--json").stdout)
    # Seen in the same fetch, so newest publication first.
    assert [i["id"] for i in listed] == ["github-pr:openai/parameter-golf#102", "github-pr:openai/parameter-golf#101",
                                        "github-pr:openai/parameter-golf#95", "github-pr:openai/parameter-golf#80"]
    assert all(i["first_seen"] and i["last_seen"] and i["flags"] == [] for i in listed)
    assert len(json.loads(cli(ws, "research", "list", "-n", "2", "--json").stdout)) == 2
    assert json.loads(cli(ws, "research", "list", "--tier", "A", "--json").stdout) == []
    assert json.loads(cli(ws, "research", "list", "--tier", "b", "--json").stdout) == []  # case-insensitive
    table = cli(ws, "research", "list").stdout
    assert "github-pr:openai/parameter-golf#101" in table and "How we fit a 20M model in 16MB" in table

    shown = cli(ws, "research", "show", "github-pr:openai/parameter-golf#101")
    assert shown.exit_code == 0 and "Record: 1.1748 val_bpb" in shown.stdout and "record_folders" in shown.stdout

    target = ws.root / "out" / "raw_cache.jsonl"
    exported = cli(ws, "research", "export", "--jsonl", "--out", str(target))
    assert exported.exit_code == 0 and exported.stdout.startswith("wrote 7 items")
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 7
    assert {"id", "source", "title", "abstract", "url", "published_date", "fetched_at"} <= set(rows[0])
    assert cli(ws, "research", "export", "--jsonl").exit_code == 0
    assert len((ws.state_dir / "raw_cache.jsonl").read_text().splitlines()) == 7


def test_a_second_daemon_is_refused(ws: Workspace) -> None:
    with DaemonLock(lock_path(ws)):
        second = pgolf("research", "daemon", cwd=ws.root)
    assert second.returncode == 1
    assert "a research daemon already runs for this workspace" in second.stderr


def test_openreview_needs_an_account_then_logs_in(ws: Workspace, apis: FakeApis) -> None:
    recorded = apis.routes["/openreview/notes"]
    apis.route("/openreview/login", lambda req: json_reply({"token": "tok-cli-42"})
               if json.loads(req.body) == {"id": "ada", "password": "pw-cli-42"} else json_reply({}, 400))
    apis.route("/openreview/notes", lambda req: recorded(req) if req.headers.get("authorization") ==
               "Bearer tok-cli-42" else json_reply({"name": "ChallengeRequiredError", "message": "log in"}, 403))
    anonymous = pgolf("research", "fetch", "--sources", "openreview", cwd=ws.root)
    assert anonymous.returncode == 2 and "Traceback" not in anonymous.stdout + anonymous.stderr
    assert "skipped openreview" in anonymous.stdout and "needs an account: HTTP 403" in anonymous.stdout
    assert "set OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD" in anonymous.stdout
    logged_in = pgolf("research", "fetch", "--sources", "openreview", "--json", cwd=ws.root,
                      OPENREVIEW_USERNAME="ada", OPENREVIEW_PASSWORD="pw-cli-42")
    report = json.loads(logged_in.stdout)
    assert logged_in.returncode == 0 and report["sources"][0]["status"] == "ok" and report["sources"][0]["new"] == 2
    seen = logged_in.stdout + logged_in.stderr + (ws.state_dir / "research.db").read_bytes().decode("latin-1")
    assert "pw-cli-42" not in seen and "tok-cli-42" not in seen
