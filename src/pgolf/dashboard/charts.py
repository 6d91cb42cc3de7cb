"""The dashboard's charts as Plotly figure specs (plain dicts), built from one DashboardData snapshot.

Each function returns None when there is nothing to plot, so the page can say so instead. Plotly reads
hover text as a little HTML, so text from the ledger is escaped first.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import Any

from pgolf.dashboard.data import (
    MEASURED_STATUSES,
    NOT_RUN_STATUSES,
    DashboardData,
    pareto_front,
    running_best,
)
from pgolf.fmt import fmt_bytes
from pgolf.ledger import LedgerRow

Figure = dict[str, Any]

STATUS_COLORS = {
    "baseline": "#1f6feb", "keep": "#1a7f37", "discard": "#8c959f", "crash": "#cf222e",
    "oversize": "#d4700a", "timeout": "#8250df", "aborted": "#6e4b3a", "skipped": "#c8ccd1",
    "rejected": "#a0a7b0", "replicate": "#54aeff",
}
TIER_COLORS = ("#1f6feb", "#d4700a", "#8250df", "#1a7f37", "#cf222e")
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13, "color": "#24292f"}


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "font": _FONT,
        "margin": {"l": 64, "r": 24, "t": 48, "b": 110},
        "height": 420,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "closest",
        # Below the x-axis title, not over it: the legend's top sits under the bottom margin's text.
        "legend": {"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top"},
        "xaxis": {"title": {"text": x_title}, "gridcolor": "#eaeef2", "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eaeef2", "zeroline": False},
    }
    layout.update(extra)
    return layout


def _hover(position: int, row: LedgerRow) -> str:
    bpb = "no score" if row.val_bpb is None else f"val_bpb {row.val_bpb:.4f}"
    size = "" if row.artifact_bytes is None else f"<br>{fmt_bytes(row.artifact_bytes)} bytes"
    return (f"#{position} {escape(row.run_id or row.commit[:8])} ({escape(row.tier)})<br>{row.status}: "
            f"{bpb}{size}<br>{escape(_shorten(row.description))}")


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def experiment_positions(rows: list[LedgerRow]) -> list[tuple[int, LedgerRow]]:
    """(experiment number, row) for the runs that trained, in ledger order: runs that never trained
    (skipped, rejected) take no place on the experiment axis, so forty of them do not squash the rest."""
    trained = [r for r in rows if r.status not in NOT_RUN_STATUSES]
    return list(enumerate(trained, start=1))


def progress_figure(data: DashboardData) -> Figure | None:
    """val_bpb per experiment, coloured by status, with each tier's running best.

    Only complete measurements are drawn at their val_bpb; a crash, timeout or abort is a cross on a strip
    above the plot (its own axis), never at a score it did not earn.
    """
    positioned = experiment_positions(data.rows)
    if not positioned:
        return None
    traces: list[dict[str, Any]] = []
    for i, tier in enumerate(data.tiers):
        tier_rows = [(p, r) for p, r in positioned if r.tier == tier]
        steps = running_best(r for _, r in tier_rows)
        if steps:
            positions = [tier_rows[k - 1][0] for k, _ in steps] + [tier_rows[-1][0]]
            values = [v for _, v in steps] + [steps[-1][1]]
            traces.append({
                "type": "scatter", "mode": "lines", "name": f"best so far ({tier})", "x": positions,
                "y": values, "line": {"shape": "hv", "width": 2, "color": TIER_COLORS[i % len(TIER_COLORS)]},
                "hoverinfo": "skip",
            })
    by_status: dict[str, list[tuple[int, LedgerRow]]] = {}
    for position, row in positioned:
        by_status.setdefault(row.status, []).append((position, row))
    failed = False
    for status, items in by_status.items():
        scored = status in MEASURED_STATUSES
        points = [(p, r) for p, r in items if not scored or r.val_bpb is not None]
        if not points:
            continue
        failed = failed or not scored
        traces.append({
            "type": "scatter", "mode": "markers", "name": status if scored else f"{status} (no score)",
            "x": [p for p, _ in points],
            "y": [r.val_bpb if scored else 0.5 for _, r in points],
            **({} if scored else {"yaxis": "y2"}),
            "text": [_hover(p, r) for p, r in points], "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": STATUS_COLORS.get(status, "#57606a"), "size": 9 if scored else 10,
                       "symbol": "circle" if scored else "x", "line": {"width": 1, "color": "#ffffff"}},
        })
    hidden = sum(1 for r in data.rows if r.status in NOT_RUN_STATUSES)
    x_title = "experiment" + (f" ({hidden} skipped or rejected not shown)" if hidden else " (ledger order)")
    layout = _layout("val_bpb per experiment", x_title, "val_bpb (lower is better)")
    if failed:
        # The lower 86% of the height holds the scores; the strip above holds the runs without one.
        layout["yaxis"]["domain"] = [0, 0.86]
        layout["yaxis2"] = {"domain": [0.9, 1], "range": [0, 1], "showticklabels": False, "showgrid": False,
                            "zeroline": False, "fixedrange": True}
        layout["annotations"] = [{"x": 0, "y": 0.95, "xref": "paper", "yref": "paper", "xanchor": "right",
                                  "text": "no score ", "showarrow": False, "font": {"size": 11, "color": "#57606a"}}]
    layout["xaxis"]["rangemode"] = "tozero"
    return {"data": traces, "layout": layout}


def size_figure(data: DashboardData) -> Figure | None:
    """val_bpb against artifact bytes, the ruleset's artifact limit, and each tier's Pareto front.

    The x axis spans the points and the limit; when the points are far below the limit (a demo's
    100 kB models against 16 MB) it is logarithmic, so both stay readable.
    """
    points = [(p, r) for p, r in experiment_positions(data.rows)
              if r.val_bpb is not None and r.artifact_bytes is not None and r.status in MEASURED_STATUSES]
    if not points:
        return None
    limit = data.ruleset.artifact_limit_bytes
    traces: list[dict[str, Any]] = []
    for i, tier in enumerate(data.tiers):
        tier_points = [(p, r) for p, r in points if r.tier == tier]
        if not tier_points:
            continue
        color = TIER_COLORS[i % len(TIER_COLORS)]
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"{tier} runs",
            "x": [r.artifact_bytes for _, r in tier_points], "y": [r.val_bpb for _, r in tier_points],
            "text": [_hover(p, r) for p, r in tier_points], "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 9, "color": color, "opacity": 0.6,
                       "symbol": ["x" if r.status == "oversize" else "circle" for _, r in tier_points]},
        })
        front = pareto_front((r for _, r in tier_points), limit)
        if front:
            traces.append({
                "type": "scatter", "mode": "lines+markers", "name": f"Pareto front ({tier})",
                "x": [r.artifact_bytes for r in front], "y": [r.val_bpb for r in front],
                "line": {"shape": "hv", "width": 2.5, "color": color},
                "marker": {"size": 11, "color": color, "symbol": "diamond", "line": {"width": 1, "color": "#fff"}},
                "hoverinfo": "skip",
            })
    limit_line = {"type": "line", "xref": "x", "yref": "paper", "x0": limit, "x1": limit, "y0": 0, "y1": 1,
                  "line": {"color": "#cf222e", "width": 2, "dash": "dash"}}
    label = {"x": limit, "y": 1, "xref": "x", "yref": "paper", "yanchor": "bottom", "xanchor": "right",
             "text": f"artifact limit {fmt_bytes(limit)} bytes", "showarrow": False,
             "font": {"color": "#cf222e", "size": 12}}
    sizes: list[int] = [r.artifact_bytes for _, r in points]  # type: ignore[misc]
    layout = _layout("val_bpb against artifact size", "artifact bytes (code + compressed model)",
                     "val_bpb", shapes=[limit_line], annotations=[label])
    low, high = min(sizes), max(sizes)
    spread = high - low or high * 0.02
    if limit > 4 * high:  # far below the limit (a demo's models): a log axis shows both
        layout["xaxis"].update(type="log", range=[math.log10(low) - 0.15, math.log10(limit) + 0.1])
        layout["xaxis"]["title"]["text"] += " (log scale)"
    elif limit - high <= 3 * spread or high > limit:  # the limit is near the points: show both
        left, right = min(low, limit), max(high, limit)
        layout["xaxis"]["range"] = [left - 0.08 * (right - left), right + 0.05 * (right - left)]
    else:  # the points are clustered well below the limit: zoom on them, name the headroom
        layout["xaxis"]["range"] = [low - 0.15 * spread, high + 0.15 * spread]
        layout["shapes"] = []
        label.update(x=1, xref="paper", xanchor="right", text=f"artifact limit {fmt_bytes(limit)} bytes →<br>"
                     f"{fmt_bytes(limit - high)} bytes above the largest run")
    bpbs = [r.val_bpb for _, r in points]
    pad = (max(bpbs) - min(bpbs)) * 0.08 or 0.01  # type: ignore[operator]
    layout["yaxis"]["range"] = [min(bpbs) - pad, max(bpbs) + pad]  # type: ignore[operator]
    return {"data": traces, "layout": layout}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def budget_figure(data: DashboardData) -> Figure | None:
    """Cumulative money spent over time (paid runs and LLM calls), against the credits and the reserve."""
    spends = sorted(
        ((e.settled_at or e.created_at, e.actual_usd or 0.0, e.kind, e.description or e.run_id)
         for e in data.budget_entries if e.state == "settled"),
        key=lambda s: s[0],
    )
    if not spends or data.budget is None:
        return None
    total = 0.0
    xs, ys, text = [], [], []
    for when, usd, kind, what in spends:
        total += usd
        xs.append(_iso(when))
        ys.append(round(total, 4))
        text.append(f"{kind}: ${usd:,.2f} {escape(_shorten(what, 50))}<br>total ${total:,.2f}")
    traces: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "name": "spent", "x": xs, "y": ys, "text": text,
        "hovertemplate": "%{x}<br>%{text}<extra></extra>", "line": {"shape": "hv", "color": "#1f6feb", "width": 2},
        "fill": "tozeroy", "fillcolor": "rgba(31,111,235,0.08)", "marker": {"size": 7},
    }]
    st = data.budget
    levels = [("credits", st.total_usd, "#57606a")]
    if st.reserve_usd > 0:
        levels.append(("spendable (credits − reserve)", st.total_usd - st.reserve_usd, "#d4700a"))
    for name, value, color in levels:
        traces.append({"type": "scatter", "mode": "lines", "name": f"{name} ${value:,.2f}",
                       "x": [xs[0], xs[-1]], "y": [value, value], "hoverinfo": "skip",
                       "line": {"dash": "dash", "color": color, "width": 1.5}})
    return {"data": traces, "layout": _layout("Budget burn", "time (UTC)", "US dollars")}


def correlation_figure(data: DashboardData) -> Figure | None:
    """Local against remote val_bpb of promoted pairs, with y = x and y = x + mean offset."""
    corr = data.correlation
    if not corr.points:
        return None
    xs = [p[0] for p in corr.points]
    ys = [p[1] for p in corr.points]
    low, high = min(xs + ys), max(xs + ys)
    pad = (high - low) * 0.08 or 0.01
    span = [low - pad, high + pad]
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "remote = local", "x": span, "y": span,
         "line": {"color": "#8c959f", "dash": "dot", "width": 1.5}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "markers", "name": "promoted pairs", "x": xs, "y": ys,
         "marker": {"size": 11, "color": "#8250df", "line": {"width": 1, "color": "#ffffff"}},
         "hovertemplate": "local %{x:.4f}<br>remote %{y:.4f}<extra></extra>"},
    ]
    if corr.mean_offset is not None:
        off = corr.mean_offset
        traces.append({"type": "scatter", "mode": "lines", "name": f"mean offset {off:+.4f}",
                       "x": span, "y": [span[0] + off, span[1] + off], "hoverinfo": "skip",
                       "line": {"color": "#8250df", "dash": "dash", "width": 1.5}})
    r_text = "n/a" if corr.pearson_r is None else f"{corr.pearson_r:.3f}"
    title = f"Local vs remote val_bpb ({corr.pairs} pairs, Pearson r {r_text})"
    layout = _layout(title, "local val_bpb", "remote val_bpb")
    layout["xaxis"]["range"] = span
    layout["yaxis"]["range"] = span
    return {"data": traces, "layout": layout}


def all_figures(data: DashboardData) -> dict[str, Figure | None]:
    """Every chart by its id, in page order."""
    return {
        "progress": progress_figure(data),
        "size": size_figure(data),
        "budget": budget_figure(data),
        "correlation": correlation_figure(data),
    }
