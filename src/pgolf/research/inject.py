"""program.md injection: every section rendered from the workspace's state, written once per refresh.

The renderers are plain functions over rows and records so that the experiment loop can reuse them;
`inject_all` is the one place that reads the whole workspace and rewrites program.md atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgolf.ledger import LedgerRow, best_by_tier, last_runs, tier_correlation

EXPERIMENT_ROWS = 8


def _bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _bytes(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render_best(rows: Sequence[LedgerRow]) -> str:
    """The BEST section: the best scored run of each tier, one line each."""
    best = best_by_tier(rows)
    if not best:
        return "No scored run yet."
    lines = []
    for tier in sorted(best, key=lambda t: (t != "local", t)):
        row = best[tier]
        lines.append(
            f"- {tier}: val_bpb {_bpb(row.val_bpb)} at commit {row.commit[:8] or '-'}"
            f" (run {row.run_id or '-'}, {_bytes(row.artifact_bytes)} bytes): {row.description or '-'}"
        )
    return "\n".join(lines)


def _correlation_line(rows: Sequence[LedgerRow]) -> str:
    corr = tier_correlation(rows)
    if corr.pairs == 0:
        return "Tier correlation: no paired local/remote runs yet."
    offset = "-" if corr.mean_offset is None else f"{corr.mean_offset:+.4f}"
    r = "-" if corr.pearson_r is None else f"{corr.pearson_r:.2f}"
    return (f"Tier correlation: {corr.pairs} paired run(s), remote minus local val_bpb {offset} "
            f"on average, Pearson r {r}.")


def render_experiments(rows: Sequence[LedgerRow], n: int = EXPERIMENT_ROWS) -> str:
    """The EXPERIMENTS section: the last `n` runs as a table, then the local/remote tier correlation."""
    recent = last_runs(rows, n)
    if not recent:
        return "No runs yet.\n\n" + _correlation_line(rows)
    lines = ["| run | tier | val_bpb | bytes | status | description |", "|---|---|---|---|---|---|"]
    for row in recent:
        description = row.description.replace("|", "/") or "-"
        lines.append(f"| {row.run_id or '-'} | {row.tier} | {_bpb(row.val_bpb)} | "
                     f"{_bytes(row.artifact_bytes)} | {row.status} | {description} |")
    return "\n".join(lines) + "\n\n" + _correlation_line(rows)
