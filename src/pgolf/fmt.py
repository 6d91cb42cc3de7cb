"""Numbers and times for people: one format per kind, shared by the CLI, the dashboard and program.md."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def fmt_bytes(value: int | None, missing: str = "-") -> str:
    """A byte count, always exact with thousands separators (the limit is decimal: 16,000,000)."""
    return missing if value is None else f"{value:,}"


def fmt_bpb(value: float | None, missing: str = "-") -> str:
    """A val_bpb: four decimals (a number that is not finite is no score)."""
    return missing if value is None or not math.isfinite(value) else f"{value:.4f}"


def fmt_usd(value: float | None, missing: str = "-") -> str:
    """Dollars and cents; never "$nan"."""
    return missing if value is None or not math.isfinite(value) else f"${value:,.2f}"


def fmt_time(value: float | str | None, missing: str = "-") -> str:
    """A moment, as `2026-01-31 14:05 UTC`: from a Unix time or an ISO 8601 string (naive means UTC)."""
    if value is None or value == "":
        return missing
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            moment = datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return str(value)  # shown as written rather than hidden
    return moment.strftime("%Y-%m-%d %H:%M UTC")
