"""The dashboard's web app over HTTP and the `pgolf dashboard` / `pgolf report` commands."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dashboard_fixture import fixture_runs, make_dashboard_workspace
from pgolf.cli.app import app as cli_app
from pgolf.cli.app import main
from pgolf.cli.dashboard import _require
from pgolf.dashboard.app import create_app
from pgolf.errors import PgolfError
from pgolf.ledger import LedgerRow
from pgolf.research.items import ResearchItem
from pgolf.research.store import ResearchStore
from pgolf.workspace import Workspace, init_workspace

PAGES = ("/", "/experiments", "/research", "/competitors", "/runs/l05-qk", "/runs/l09-muon",
         "/runs/l05-qk/files/train.log", "/runs/l05-qk/files/result.json", "/api/state", "/api/data",
         "/assets/plotly.min.js", "/static/dashboard.css", "/static/dashboard.js")


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return make_dashboard_workspace(tmp_path / "ws")


def _client(ws: Workspace) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1:8765")


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_page_answers_and_nothing_in_the_workspace_changes(ws: Workspace) -> None:
    before = _tree_hashes(ws.root)
    client = _client(ws)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
    assert _tree_hashes(ws.root) == before


def test_experiments_page_lists_every_run_with_links(ws: Workspace) -> None:
    html = _client(ws).get("/experiments").text
    for run in fixture_runs():
        assert f'href="/runs/{run.row.run_id}"' in html
    assert html.count('class="over">') == 1  # the oversize run is over 16,000,000 bytes


def test_pages_use_only_local_assets(ws: Workspace) -> None:
    html = _client(ws).get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/assets/plotly.min.js" in sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert html.count('class="chart"') == 4


def test_unknown_runs_and_files_are_404(ws: Workspace) -> None:
    client = _client(ws)
    assert client.get("/runs/no-such-run").status_code == 404
    assert client.get("/runs/l05-qk/files/pgolf.toml").status_code == 404
    assert client.get("/runs/..%2F..%2Fpgolf.toml/files/train.log").status_code == 404
    assert client.get("/runs/l09-muon/files/train.log").status_code == 404  # no folder


def test_state_fingerprint_changes_when_the_ledger_does(ws: Workspace) -> None:
    client = _client(ws)
    first = client.get("/api/state").json()
    assert client.get("/api/state").json()["fingerprint"] == first["fingerprint"]
    time.sleep(0.01)  # a different mtime even on coarse clocks; the size changes anyway
    ws.ledger().append(LedgerRow(commit="e" * 40, tier="local", val_bpb=1.3, artifact_bytes=1, memory_gb=None,
                                 status="discard", run_id="l99"))
    second = client.get("/api/state").json()
    assert second["fingerprint"] != first["fingerprint"]
    assert second["runs"] == first["runs"] + 1


def test_other_host_headers_are_refused(ws: Workspace) -> None:
    client = _client(ws)
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8765"}).status_code == 200
    open_client = TestClient(create_app(ws, allowed_hosts=None), base_url="http://dash.lan")
    assert open_client.get("/").status_code == 200


def test_report_command_writes_one_offline_file(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    result = CliRunner().invoke(cli_app, ["--workspace", str(ws.root), "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Plotly" in html and html.count('class="chart"') == 4
    for run in fixture_runs():
        assert f'id="run-{run.row.run_id}"' in html
    # Research items link out, but nothing the page loads (scripts, styles) comes from the network.
    assert not re.findall(r'src="(?:https?:)?//|<link[^>]+href="(?:https?:)?//', html)


def _pgolf(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """The real entry point in this process: its exit code and what it printed on stderr."""
    monkeypatch.setattr(sys, "argv", ["pgolf", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    return ended.value.code, capsys.readouterr().err  # type: ignore[return-value]


def test_command_errors_are_one_line(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    root = str(ws.root)
    missing = _pgolf(capsys, monkeypatch, "-w", root, "report", "--out", str(tmp_path / "nowhere" / "r.html"))
    remote = _pgolf(capsys, monkeypatch, "-w", root, "dashboard", "--host", "0.0.0.0")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = _pgolf(capsys, monkeypatch, "-w", root, "dashboard", "--port", str(taken.getsockname()[1]))
    for (code, err), want_code, words in ((missing, 2, "does not exist"), (remote, 2, "--allow-remote"),
                                          (busy, 1, "already in use; pick another with --port")):
        assert code == want_code, err
        assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err


def test_missing_packages_are_named() -> None:
    with pytest.raises(PgolfError, match=r"needs no_such_pkg_pgolf: install them with .*pgolf\[dashboard\]"):
        _require(("jinja2", "no_such_pkg_pgolf"), "pgolf dashboard")


@pytest.mark.slow
def test_dashboard_command_serves_until_stopped(ws: Workspace) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "pgolf", "--workspace", str(ws.root), "dashboard", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + proc.stderr.read()  # type: ignore[union-attr]
        state = httpx.get(f"http://127.0.0.1:{match.group(1)}/api/state", timeout=10).json()
        assert state["runs"] == len(fixture_runs())
    finally:
        proc.terminate()
        proc.wait(10)


def test_untrusted_text_cannot_inject_markup_or_links(ws: Workspace) -> None:
    ResearchStore(ws.research_db).upsert([ResearchItem(
        id="web:evil", source="web", kind="web", title="Evil <img src=x onerror=alert(1)> trick",
        abstract="", url="javascript:alert(1)", published=None, fetched_at="2025-06-01T00:00:00Z")])
    ws.ledger().append(LedgerRow(commit="d" * 40, tier="local", val_bpb=1.3, artifact_bytes=1, memory_gb=None,
                                 status="discard", run_id="l98", description="<script>alert(1)</script>"))
    client = _client(ws)
    research = client.get("/research").text
    assert "Evil &lt;img" in research and "<img src=x" not in research
    assert "javascript:" not in research
    overview, experiments = client.get("/").text, client.get("/experiments").text
    assert "<script>alert(1)</script>" not in overview + experiments
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in experiments  # shown as text


def test_empty_research_and_competitors_pages_name_the_command_that_fills_them(tmp_path: Path) -> None:
    empty = init_workspace(tmp_path / "empty")
    client = _client(empty)
    assert "<code>pgolf research fetch</code> fills it" in client.get("/research").text
    competitors = client.get("/competitors").text
    assert "<code>pgolf competitors scan PATH</code> reads a clone of openai/parameter-golf" in competitors
    assert "<code>pgolf research fetch --sources github_prs</code>" in competitors
