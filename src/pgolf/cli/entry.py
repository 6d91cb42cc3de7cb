"""The `pgolf` console script: the fast hook path first, then the Typer app.

Nothing here imports typer, rich or pydantic: `pgolf hook pre-tool` runs on every tool call of an agent
and must answer within 100 ms, so it is handed to `pgolf.agents.hook.main(argv)` (stdlib only) before
anything else is loaded.
"""

from __future__ import annotations

import importlib
import sys

HOOK_FAST_PATH = ("hook", "pre-tool")
HOOK_MODULE = "pgolf.agents.hook"


def _fast_hook(args: list[str]) -> int | None:
    """The hook's exit code, or None when the hook module is not installed (typer then answers)."""
    if tuple(args[:2]) != HOOK_FAST_PATH or any(a in ("--help", "-h") for a in args[2:]):
        return None
    try:
        module = importlib.import_module(HOOK_MODULE)
    except ModuleNotFoundError as err:
        # Only the hook module (or its package) being absent falls through; a missing dependency
        # inside it is a real bug and is raised.
        if err.name in ("pgolf.agents", HOOK_MODULE):
            return None
        raise
    return module.main(args[2:])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `pgolf` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    code = _fast_hook(args)
    if code is not None:
        sys.exit(code)
    from pgolf.cli.app import run

    run(args)
