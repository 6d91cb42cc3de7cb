"""The program.md sections the loop owns: best result, experiment history, tier correlation."""

from __future__ import annotations

from collections.abc import Sequence

from pgolf.ledger import LedgerRow, best_by_tier, last_runs, tier_correlation
from pgolf.loop.noise import NoiseFloor

HISTORY_ROWS = 15


def _bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def best_section(rows: Sequence[LedgerRow], noise: NoiseFloor | None) -> str:
    """The BEST section: the best scored run of each tier, and the noise floor."""
    best = best_by_tier(rows)
    if not best:
        return "No scored run yet."
    lines = []
    for tier, row in sorted(best.items()):
        size = "-" if row.artifact_bytes is None else f"{row.artifact_bytes:,}"
        lines.append(f"- {tier}: val_bpb {_bpb(row.val_bpb)}, artifact {size} bytes, commit "
                     f"{row.commit[:8]}, run {row.run_id} ({row.status}): {row.description}")
    if noise:
        lines.append(f"- noise floor (local): {noise.runs} baseline seeds, mean {noise.mean:.4f}, "
                     f"sigma {noise.sigma:.4f}; a change must gain more than {noise.threshold:.4f}")
    return "\n".join(lines)


def experiments_section(rows: Sequence[LedgerRow], n: int = HISTORY_ROWS) -> str:
    """The EXPERIMENTS section: the last runs as a table, then local/remote tier correlation."""
    recent = last_runs(rows, n)
    if not recent:
        return "No experiment yet."
    lines = [f"Last {len(recent)} of {len(rows)} runs (oldest first):", "",
             "| run | tier | status | val_bpb | artifact bytes | description |",
             "|---|---|---|---|---|---|"]
    for r in recent:
        size = "-" if r.artifact_bytes is None else f"{r.artifact_bytes:,}"
        text = r.description.replace("|", "/")
        lines.append(f"| {r.run_id} | {r.tier} | {r.status} | {_bpb(r.val_bpb)} | {size} | {text} |")
    corr = tier_correlation(rows)
    lines.append("")
    if corr.pairs:
        r_text = "n/a" if corr.pearson_r is None else f"{corr.pearson_r:.2f}"
        lines.append(f"Tier correlation: {corr.pairs} local/remote pairs, remote minus local "
                     f"{corr.mean_offset:+.4f} on average, Pearson r {r_text}.")
    else:
        lines.append("Tier correlation: no local/remote pair yet.")
    return "\n".join(lines)
