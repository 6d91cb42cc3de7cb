"""The dashboard and the report in a real headless Chromium: charts render, tables show the fixture's
rows, nothing logs an error, the workspace is untouched, and the report needs no network.

Needs Debian's `chromium` (driven by Playwright over CDP; `playwright install` is not used). Skips when
it is missing, unless PGOLF_REQUIRE_SHARED_DATA=1 (CI), where its absence fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard_fixture import (
    AGENT_LOG,
    AGENT_RUN,
    COMPETITORS,
    PR_COMPETITOR,
    RESEARCH_ITEMS,
    SKIPPED_RUNS,
    add_agent_files,
    fixture_runs,
    make_dashboard_workspace,
    make_skipped_workspace,
)
from pgolf.ledger import LedgerRow

pytestmark = pytest.mark.slow

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"]
VIEWPORT = {"width": 1440, "height": 1000}
# Plotly draws each chart into an SVG; these are its data traces.
DRAWN_CHARTS = """() => Array.from(document.querySelectorAll('div.chart')).filter(
    el => el.classList.contains('js-plotly-plot') && el.querySelectorAll('svg.main-svg g.trace').length > 0
).length"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (the dev extra)"
    if reason:
        if os.environ.get("PGOLF_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"PGOLF_REQUIRE_SHARED_DATA=1 but {reason}")
        pytest.skip(reason)
    return path  # type: ignore[return-value]


def _tree_hashes(root: Path) -> dict[str, str]:
    """Every file under `root` (the .git folder included) with the hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class _Server:
    """uvicorn serving an app on 127.0.0.1 in a background thread, on a free port."""

    def __init__(self, app) -> None:
        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


class _Page:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, context) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))

    def open(self, url: str, charts: int, screenshot: Path) -> None:
        """Load `url`, wait until `charts` charts have drawn their traces, screenshot the whole page."""
        self.page.goto(url, wait_until="load")
        if charts:
            self.page.wait_for_function(f"({DRAWN_CHARTS})() >= {charts}", timeout=15_000)
        self.page.screenshot(path=str(screenshot), full_page=True)
        assert self.errors == [], self.errors


def _cell_texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


def test_dashboard_pages_render_in_chromium(browser, tmp_path: Path) -> None:
    from pgolf.dashboard.app import create_app

    ws = make_dashboard_workspace(tmp_path / "ws")
    runs = [r.row for r in fixture_runs()]
    shots = tmp_path / "screens"
    shots.mkdir()
    before = _tree_hashes(ws.root)
    with _Server(create_app(ws, refresh_seconds=1)) as server:
        context = browser.new_context(viewport=VIEWPORT)
        view = _Page(context)
        page = view.page

        view.open(server.url + "/", charts=4, screenshot=shots / "overview.png")
        assert page.locator("div.chart").count() == 4
        best_cards = page.locator(".card").first.inner_text()
        assert "1.1994" in best_cards and "1.2648" in best_cards  # best remote and best local
        assert "l10-rope" in page.inner_text(".cards")  # the last promotion (pending)
        assert "loop idle" in page.inner_text(".topbar")

        view.open(server.url + "/experiments", charts=0, screenshot=shots / "experiments.png")
        assert _cell_texts(page, "#experiments-table tbody tr td:nth-child(2)") == [r.run_id for r in runs]
        page.click("#experiments-table th:nth-child(5)")  # val_bpb, ascending
        order = _cell_texts(page, "#experiments-table tbody tr td:nth-child(2)")
        scored = sorted((r for r in runs if r.val_bpb is not None), key=lambda r: r.val_bpb)
        assert order[: len(scored)] == [r.run_id for r in scored]
        page.fill("input.table-filter", "crash")
        assert page.locator("#experiments-table tbody tr:visible").count() == 1
        page.fill("input.table-filter", "")
        page.click("text=l05-qk")
        page.wait_for_url("**/runs/l05-qk")
        page.screenshot(path=str(shots / "run.png"), full_page=True)
        assert "QK-norm gain 1.5" in page.inner_text("pre.diff")
        assert "final_int8_zlib_roundtrip" in page.inner_text("pre.log")
        assert view.errors == []

        view.open(server.url + "/research", charts=0, screenshot=shots / "research.png")
        titles = _cell_texts(page, ".research-table td.desc")
        assert titles == [title for _, title, _, _ in RESEARCH_ITEMS]  # tier A first, by score

        view.open(server.url + "/competitors", charts=0, screenshot=shots / "competitors.png")
        names = _cell_texts(page, "#competitors-table td.desc")
        # The scanned leaderboard plus the challenge PR the research store holds, ranked by score.
        expected = sorted([(name, bpb) for name, _, bpb, _ in COMPETITORS] + [PR_COMPETITOR], key=lambda c: c[1])
        assert [n for n in names if not n.startswith("this project")] == [name for name, _ in expected]
        assert page.locator("#competitors-table tr.ours").inner_text().count("1.1994") == 1

        assert _tree_hashes(ws.root) == before, "the dashboard wrote to the workspace"

        # Live refresh: a new ledger row appears without touching the browser.
        page.goto(server.url + "/experiments")
        ws.ledger().append(LedgerRow(commit="f" * 40, tier="local", val_bpb=1.2601, artifact_bytes=8_000_000,
                                     memory_gb=None, status="keep", description="live row", run_id="l11-live"))
        page.wait_for_selector("text=l11-live", timeout=10_000)
        assert view.errors == []
        context.close()
    _keep_screenshots(shots)


def test_report_opens_offline_with_charts(browser, tmp_path: Path) -> None:
    from pgolf.dashboard.report import write_report

    ws = make_dashboard_workspace(tmp_path / "ws")
    out = write_report(ws, tmp_path / "report.html")
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    attempted: list[str] = []

    def _only_files(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    context.route("**/*", _only_files)
    view = _Page(context)
    view.open(out.as_uri(), charts=4, screenshot=tmp_path / "report.png")
    assert attempted == []
    for run in fixture_runs():
        assert view.page.locator(f"#experiments-table >> text={run.row.run_id}").count() == 1
    view.page.click("#experiments-table >> text=l08-int6")
    assert view.page.locator("#run-l08-int6").get_attribute("open") is not None
    assert "int6 export" in view.page.inner_text("#run-l08-int6 pre.diff")
    assert view.errors == []
    context.close()
    _keep_screenshots(tmp_path / "report.png")


def _keep_screenshots(source: Path) -> None:
    """Copy screenshots where a developer can look at them, when PGOLF_SCREENSHOTS names a folder."""
    target = os.environ.get("PGOLF_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for png in [source] if source.is_file() else sorted(source.glob("*.png")):
        shutil.copy(png, Path(target) / png.name)


def _figure_json(page, name: str) -> dict:
    return json.loads(page.inner_text(f"#fig-{name}"))


def test_run_page_shows_decision_preflight_and_agent_files(browser, tmp_path: Path) -> None:
    from pgolf.dashboard.app import create_app

    ws = make_dashboard_workspace(tmp_path / "ws")
    add_agent_files(ws)
    shots = tmp_path / "screens"
    shots.mkdir()
    with _Server(create_app(ws, refresh_seconds=60)) as server:
        context = browser.new_context(viewport=VIEWPORT)
        view = _Page(context)
        page = view.page
        view.open(f"{server.url}/runs/{AGENT_RUN}", charts=0, screenshot=shots / "run-agent-files.png")
        headings = _cell_texts(page, ".run-body h3")
        assert [h.split(" (")[0] for h in headings] == ["Decision", "Preflight", "Command", "Result", "Diff", "Log",
                                                       "Agent output"]
        decision = page.inner_text(".run-body table.json")
        assert "0.0193" in decision and "0.019312345678" not in decision  # numbers formatted
        assert "gain 0.0193 over the best beats the bar 0.0040" in decision
        assert "10,400,200 <= 16,000,000" in decision and "projected 10,398,112 bytes" in page.inner_text(".run-body")
        result = page.inner_text("table.result")
        assert "120,026.89" in result and "120026.89053999985" not in result and "1337" in result
        assert page.inner_text("pre.agent-log") == AGENT_LOG.rstrip("\n")
        page.click("details.handoff summary")
        assert "Best so far: l02-lr at 1.2895" in page.inner_text("pre.handoff-text")
        links = _cell_texts(page, "p.files a")
        assert links == ["command.txt", "diff.patch", "train.log", "result.json", "preflight.json", "decision.json",
                         "handoff.md", "agent.log"]
        for name in links:  # every link opens (none was a 404 before it was listed)
            response = page.request.get(f"{server.url}/runs/{AGENT_RUN}/files/{name}")
            assert response.status == 200, name
        assert page.request.get(f"{server.url}/runs/{AGENT_RUN}/files/promotion.json").status == 404
        view.open(f"{server.url}/runs/l04-mlp4x", charts=0, screenshot=shots / "run-crash.png")
        assert "decision.json" not in _cell_texts(page, "p.files a")  # no link to a file that is not there
        assert "Decision" not in page.inner_text(".run-body")
        assert view.errors == []
        context.close()
    _keep_screenshots(shots)


def test_forty_skipped_runs_and_a_crash_keep_the_scored_runs_readable(browser, tmp_path: Path) -> None:
    from pgolf.dashboard.app import create_app

    ws = make_skipped_workspace(tmp_path / "ws")
    shots = tmp_path / "screens"
    shots.mkdir()
    with _Server(create_app(ws, refresh_seconds=60)) as server:
        context = browser.new_context(viewport=VIEWPORT)
        view = _Page(context)
        page = view.page
        view.open(server.url + "/", charts=2, screenshot=shots / "overview-skipped.png")
        # Two charts have something to show; the two empty ones and the empty cards collapse to one line.
        assert page.locator("div.chart").count() == 2 and page.locator(".chart-empty").count() == 0
        collapsed = page.inner_text(".collapsed-panels")
        for what in ("no promotion yet", "no budget set", "nothing spent yet", "no promoted local/remote pair"):
            assert what in collapsed
        assert "Last promotion" not in page.inner_text(".cards") and "Money" not in page.inner_text(".cards")
        latest = _cell_texts(page, "table.grid tbody tr td:nth-child(1)")
        assert latest == ["s045-keep", "s044-discard", "s043-keep", "s042-crash", "s001-baseline", "s000-baseline"]
        assert "40 skipped or rejected runs" in page.inner_text("main")
        assert "1.0000" not in page.inner_text("table.grid")  # the crash's partial score is no score
        progress = _figure_json(page, "progress")
        xs = [x for trace in progress["data"] for x in trace["x"]]
        assert max(xs) == 6  # the six runs that trained; the forty skipped take no place on the axis
        assert f"{SKIPPED_RUNS} skipped or rejected not shown" in progress["layout"]["xaxis"]["title"]["text"]
        crash = next(t for t in progress["data"] if t["name"] == "crash (no score)")
        assert crash["yaxis"] == "y2"  # on the strip above the plot, not at its partial 1.0
        scored_y = [y for t in progress["data"] if t.get("yaxis") != "y2" for y in t["y"]]
        assert min(scored_y) == 1.287
        drawn = page.evaluate("() => document.getElementById('chart-progress')._fullLayout.yaxis.range")
        assert drawn[0] > 1.25, drawn  # the score axis is not stretched down to the crash's 1.0
        drawn_x = page.evaluate("() => document.getElementById('chart-progress')._fullLayout.xaxis.range")
        assert drawn_x[1] < 8, drawn_x
        size = page.evaluate("() => document.getElementById('chart-size')._fullLayout.xaxis.range")
        # Zoomed on the points (9,700,000 to 9,820,001 bytes), the limit named at the edge, not 0 to 16 MB.
        assert 9_600_000 < size[0] < 9_700_000 and 9_820_001 < size[1] < 9_900_000, size
        assert "6,179,999 bytes above the largest run" in page.inner_text("#chart-size")
        view.open(server.url + "/experiments", charts=0, screenshot=shots / "experiments-skipped.png")
        assert page.locator("#experiments-table tbody tr").count() == SKIPPED_RUNS + 6
        assert page.locator("#experiments-table tbody tr:visible").count() == 6  # skipped start hidden
        page.check("input.status-filter[value=skipped]")
        assert page.locator("#experiments-table tbody tr:visible").count() == SKIPPED_RUNS + 6
        page.fill("input.table-filter", "s04")
        assert page.locator("#experiments-table tbody tr:visible").count() == 6  # s040-s045: text and status
        assert view.errors == []
        context.close()
    _keep_screenshots(shots)


def test_loop_card_shows_the_run_in_flight_with_step_and_eta(browser, tmp_path: Path) -> None:
    from pgolf.dashboard.app import create_app
    from pgolf.loop.supervisor import workspace_lock

    ws = make_skipped_workspace(tmp_path / "ws")
    folder = ws.run_dir("s046-live")
    folder.mkdir()
    (folder / "command.txt").write_text("python train_gpt.py\n")
    (folder / "train.log").write_text("".join(
        f"step:{s}/200 train_loss:{3 - s / 100:.4f} train_time:{s * 500}ms step_avg:500.00ms\n" for s in range(0, 121, 10)))
    ws.running_dir.mkdir(parents=True, exist_ok=True)
    (ws.running_dir / "s046-live.json").write_text(json.dumps(
        {"run_id": "s046-live", "kind": "experiment", "commit": "c" * 40, "parent_commit": "p" * 40,
         "parent_run": "s045-keep", "seed": 1337, "description": "try RoPE base 20000", "phase": "running"}))
    shots = tmp_path / "screens"
    shots.mkdir()
    with workspace_lock(ws), _Server(create_app(ws, refresh_seconds=60)) as server:
        context = browser.new_context(viewport=VIEWPORT)
        view = _Page(context)
        view.open(server.url + "/", charts=2, screenshot=shots / "overview-inflight.png")
        card = view.page.inner_text(".card:has(h2:text('Loop'))")
        assert "running" in card and "s046-live" in card and "step 120/200" in card
        assert "ETA 40s" in card and "try RoPE base 20000" in card  # 80 steps left at 500 ms a step
        assert view.errors == []
        context.close()
    _keep_screenshots(shots)
