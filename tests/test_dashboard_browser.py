"""The dashboard and the report in a real headless Chromium: charts render, tables show the fixture's
rows, nothing logs an error, the workspace is untouched, and the report needs no network.

Needs Debian's `chromium` (driven by Playwright over CDP; `playwright install` is not used). Skips when
it is missing, unless PGOLF_REQUIRE_SHARED_DATA=1 (CI), where its absence fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard_fixture import (
    COMPETITORS,
    PR_COMPETITOR,
    RESEARCH_ITEMS,
    fixture_runs,
    make_dashboard_workspace,
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
