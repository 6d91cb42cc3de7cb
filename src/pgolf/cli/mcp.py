"""`pgolf mcp`: the MCP server (stdio) a coding agent starts to drive research through pgolf."""

from __future__ import annotations

import importlib.util

from pgolf.cli._common import current_workspace
from pgolf.errors import PgolfError


def mcp() -> None:
    """Serve this workspace over the Model Context Protocol on stdin/stdout (the agent starts it).

    Tools: status, ledger, show_run, noise_floor, budget, research_search, competitors, brief, check,
    measure (read); run_experiment, promote (act, holding the workspace lock of `pgolf run` per call).
    Resources: program.md, the best train_gpt.py, a run's log. `pgolf agent setup claude|codex` writes
    the agent's configuration for it.
    """
    if importlib.util.find_spec("mcp") is None:
        raise PgolfError("`pgolf mcp` needs the mcp package: install it with `pip install 'pgolf[agents]'`")
    ws = current_workspace()
    ws.config()  # a broken pgolf.toml is one line here, before the client sees a server
    from pgolf.agents.server import serve

    serve(ws)
