"""What every command module shares: consoles, the workspace option, JSON output."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from pgolf.fmt import fmt_bpb, fmt_bytes, fmt_time, fmt_usd

if TYPE_CHECKING:  # pgolf.workspace loads pydantic: only the commands that open a workspace pay for it
    from pgolf.workspace import Workspace

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# Set by the app's callback from --workspace / PGOLF_WORKSPACE.
_workspace_dir: Path | None = None


def set_workspace_dir(path: Path | None) -> None:
    """Remember the --workspace option for this invocation."""
    global _workspace_dir
    _workspace_dir = path


def current_workspace() -> Workspace:
    """The workspace named by --workspace, else the one containing the current directory."""
    from pgolf.workspace import find_workspace

    return find_workspace(_workspace_dir)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    print(json.dumps(data, indent=2, default=_jsonable, allow_nan=False))


__all__ = ["fmt_bpb", "fmt_bytes", "fmt_time", "fmt_usd"]  # the formats live in pgolf.fmt
