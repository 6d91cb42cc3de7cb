"""`pgolf hook pre-tool`: Claude Code's PreToolUse hook (the logic lives in `pgolf.agents.hook`).

The console script answers `pgolf hook ...` before typer is imported (the hook runs on every tool
call); this group exists for `pgolf hook --help` and for interpreters that enter through typer.
"""

from __future__ import annotations

from typing import Annotated

import typer

hook_app = typer.Typer(help="Hooks a coding agent calls; `pgolf agent setup` installs them.",
                       no_args_is_help=True)


@hook_app.command("pre-tool")
def pre_tool(
    exit_code: Annotated[bool, typer.Option(
        "--exit-code", help="Deny with exit code 2 and the reason on stderr instead of the JSON decision.")] = False,
) -> None:
    """Read Claude Code's PreToolUse JSON on stdin and deny writes to pgolf's records or training outside pgolf.

    Denied: writes to results.tsv, .pgolf/ and program.md's injected sections; torchrun, python
    train_gpt.py and other launchers; RunPod and other pod CLIs; moving pgolf's git refs. The reason
    names the pgolf MCP tool to call instead. Allowed calls print nothing.
    """
    from pgolf.agents import hook

    raise typer.Exit(hook.main(["--exit-code"] if exit_code else []))
