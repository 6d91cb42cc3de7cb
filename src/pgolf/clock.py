"""The one timestamp format pgolf writes into its records."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now_iso() -> str:
    """Now, in UTC, to the second: `2026-04-19T12:34:56Z` (the ledger's `finished_at`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
