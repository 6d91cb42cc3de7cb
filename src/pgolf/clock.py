"""The one timestamp format pgolf writes into its records."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(moment: datetime) -> str:
    """A moment in UTC, to the second: `2026-04-19T12:34:56Z` (the ledger's `finished_at`)."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def utc_now_iso() -> str:
    """Now, as `iso_utc` writes it."""
    return iso_utc(datetime.now(UTC))
