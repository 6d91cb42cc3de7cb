"""HTML shared by the web app and the report: one Jinja2 environment, its filters, and where links point."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from pgolf.dashboard.charts import STATUS_COLORS, all_figures
from pgolf.dashboard.data import MEASURED_STATUSES, NOT_RUN_STATUSES, DashboardData
from pgolf.fmt import fmt_bpb, fmt_bytes, fmt_time, fmt_usd

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


_MISSING = "–"


def _bpb(value: float | None) -> str:
    return fmt_bpb(value, _MISSING)


def _usd(value: float | None) -> str:
    return fmt_usd(value, _MISSING)


def _count(value: int | None) -> str:
    return fmt_bytes(value, _MISSING)


def _when(value: float | str | None) -> str:
    """A Unix time or an ISO timestamp (the ledger's), in the one format every page uses."""
    return fmt_time(value, _MISSING)


_PLAIN_INT_KEYS = re.compile(r"seed|(^|_)(id|pid|port)$")  # identifiers, not quantities: no separators


def _number(value: Any, key: str = "") -> str:
    """A value from a JSON file for people: numbers rounded to what matters, the rest as text."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value) if _PLAIN_INT_KEYS.search(key) else f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.2f}"
        if abs(value) >= 0.01:
            return f"{value:.4f}".rstrip("0").rstrip(".")
        return f"{value:.3g}"
    return str(value)


def _score(row: Any) -> str:
    """A run's val_bpb where it is a complete measurement; a crash's partial number is no score."""
    if row.val_bpb is None:
        return _MISSING
    return fmt_bpb(row.val_bpb) if row.status in MEASURED_STATUSES else "no score"


def _json_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The keys of a list of JSON objects, in the order they first appear: a table's columns."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return _MISSING
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")


def _web_url(url: str | None) -> str:
    """The URL when it is http(s), else "": fetched items must not smuggle javascript: links in."""
    return url if url and urlsplit(url.strip()).scheme.lower() in {"http", "https"} else ""


def _commands(text: str) -> Markup:
    """A note for people, its `commands` set as code (the rest escaped)."""
    return Markup(re.sub(r"`([^`\n]+)`", r"<code>\1</code>", str(escape(text))))


def _json_script(value: Any) -> Markup:
    """JSON safe to place inside a <script> element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@cache
def environment() -> Environment:
    """The Jinja2 environment over the package's templates."""
    env = Environment(
        loader=PackageLoader("pgolf.dashboard", "templates"),
        extensions=["jinja2.ext.do"],
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(bpb=_bpb, usd=_usd, count=_count, when=_when, num=_number, score=_score, commands=_commands,
                       duration=_duration, json_columns=_json_columns, json_script=_json_script,
                       web_url=_web_url)
    env.globals.update(status_colors=STATUS_COLORS, measured_statuses=MEASURED_STATUSES,
                       not_run_statuses=NOT_RUN_STATUSES)
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
