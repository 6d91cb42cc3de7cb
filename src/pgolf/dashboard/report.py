"""`pgolf report`: the dashboard's content as one self-contained HTML file that opens offline."""

from __future__ import annotations

from pathlib import Path

from plotly.offline import get_plotlyjs

from pgolf.atomic import atomic_write_text
from pgolf.dashboard.data import gather, run_detail
from pgolf.dashboard.render import REPORT_LINKS, page_context, render, static_text
from pgolf.workspace import Workspace


def report_html(ws: Workspace) -> str:
    """The report of `ws`: every page, every run's details, the CSS, JS and Plotly inlined."""
    data = gather(ws)
    run_ids = list(dict.fromkeys([r.run_id for r in data.rows if r.run_id] + sorted(data.run_folders)))
    runs = [d for d in (run_detail(ws, run_id, data.rows) for run_id in run_ids) if d is not None]
    assets = {"css": static_text("dashboard.css"), "js": static_text("dashboard.js"),
              "plotly": get_plotlyjs().replace("</script", "<\\/script")}
    return render("report.html", active="", live=None, inline_assets=assets, runs=runs,
                  **page_context(data, REPORT_LINKS))


def write_report(ws: Workspace, out: Path) -> Path:
    """Write the report to `out` (atomically) and return its path."""
    out = Path(out)
    atomic_write_text(out, report_html(ws))
    return out
