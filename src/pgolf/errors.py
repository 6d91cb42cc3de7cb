"""Errors a user can cause. The CLI turns each into one line and its exit code, never a traceback."""

from __future__ import annotations


class PgolfError(Exception):
    """A problem the user can fix; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(PgolfError):
    """A broken or unknown setting in pgolf.toml or on the command line."""

    exit_code = 2


class WorkspaceError(PgolfError):
    """No workspace where one is needed, or one exists where it must not."""

    exit_code = 2


class DataError(PgolfError):
    """A malformed shard, tokenizer, dataset directory, or log."""


class BudgetRefused(PgolfError):
    """A paid run or LLM call the budget does not allow; the message says why."""


class LockedError(PgolfError):
    """Another pgolf process holds a lock this one needs."""
