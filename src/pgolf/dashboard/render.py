"""HTML shared by the web app and the report: one Jinja2 environment, its filters, and where links point."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pgolf.dashboard.charts import STATUS_COLORS, all_figures
from pgolf.dashboard.data import DashboardData

PAGES = ("overview", "experiments", "research", "competitors")


@dataclass(frozen=True)
class Links:
    """Where each page lives: URLs in the web app, anchors inside the one-file report."""

    pages: dict[str, str]
    run_prefix: str
    files: bool  # whether a run's raw files can be opened on their own

    def run(self, run_id: str) -> str:
        """The link to one run's details."""
        return f"{self.run_prefix}{run_id}"


APP_LINKS = Links({"overview": "/", "experiments": "/experiments", "research": "/research",
                   "competitors": "/competitors"}, "/runs/", files=True)
REPORT_LINKS = Links({p: f"#{p}" for p in PAGES}, "#run-", files=False)


def _bpb(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.2f}"


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _when(ts: float | None) -> str:
    return "–" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short_time(text: str) -> str:
    """An ISO timestamp from the ledger, shortened to the minute."""
    return text.replace("T", " ")[:16] if text else "–"


def _web_url(url: str | None) -> str:
    """The URL when it is http(s), else "": fetched items must not smuggle javascript: links in."""
    return url if url and urlsplit(url.strip()).scheme.lower() in {"http", "https"} else ""


def _json_script(value: Any) -> Markup:
    """JSON safe to place inside a <script> element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@cache
def environment() -> Environment:
    """The Jinja2 environment over the package's templates."""
    env = Environment(
        loader=PackageLoader("pgolf.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(bpb=_bpb, usd=_usd, count=_count, when=_when, short_time=_short_time,
                       json_script=_json_script, web_url=_web_url)
    env.globals.update(status_colors=STATUS_COLORS)
    return env


def static_text(name: str) -> str:
    """One of the dashboard's own static files (CSS, JS)."""
    return resources.files("pgolf.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def page_context(data: DashboardData, links: Links) -> dict[str, Any]:
    """What every template needs besides the page's own details."""
    return {"data": data, "links": links, "figures": all_figures(data), "workspace_name": data.workspace.name}


def render(template: str, **context: Any) -> str:
    """Render one template to text."""
    return environment().get_template(template).render(**context)
