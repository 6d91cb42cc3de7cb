"""`pgolf agent setup claude|codex`: wire a coding agent to this workspace's MCP server and hook."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgolf.cli._common import console, current_workspace, err_console, print_json

agent_app = typer.Typer(help="Let a coding agent (Claude Code, Codex) drive research through pgolf.",
                        no_args_is_help=True)


@agent_app.command("setup")
def setup(
    agent: Annotated[str, typer.Argument(help="claude (Claude Code) or codex.")],
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", "-w", help="Workspace folder (default: the global --workspace, else the current one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write the agent's MCP server entry, pgolf's PreToolUse hook (Claude Code) and a short guide.

    claude: .mcp.json, .claude/settings.json (hook, read-tool permissions), CLAUDE.md.
    codex: .codex/config.toml ([mcp_servers.pgolf]; Codex reads it in trusted projects), AGENTS.md.
    Existing files are merged, never overwritten; running it again changes nothing.
    """
    from pgolf.agents.setup import setup_agent
    from pgolf.workspace import find_workspace

    ws = find_workspace(workspace) if workspace else current_workspace()
    changes = setup_agent(ws, agent)
    if as_json:
        print_json([{"path": str(c.path), "action": c.action, "detail": c.detail} for c in changes])
        return
    for change in changes:
        line = f"{change.action:<9} {change.path}" + (f"  ({change.detail})" if change.detail else "")
        (err_console if change.action == "kept" else console).print(line, markup=False, highlight=False)
    console.print(f"next: start {'claude' if agent == 'claude' else 'codex'} in {ws.root} and ask it to call "
                  "the pgolf `brief` tool first", markup=False)
