"""A scripted coding agent (no LLM) that drives research in a pgolf workspace through `pgolf mcp` alone.

Run: python tests/mcp_scripted_agent.py WORKSPACE REPORT.json VALUE [VALUE ...]

It does what the guide `pgolf agent setup` writes tells an agent to do: call `brief`, edit
train_gpt.py (starting from the best script, read through the server's resource), call
`run_experiment` with a one-line description, read the decision, repeat. One experiment per VALUE: the
MATRIX_LR default of the script is set to it. The report lists every decision and the last brief.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

_LR = re.compile(r'("MATRIX_LR",\s*)([0-9.eE+-]+)')


async def drive(workspace: Path, values: list[float]) -> dict:
    server = StdioServerParameters(command=sys.executable, args=["-m", "pgolf", "--workspace", str(workspace), "mcp"])
    decisions, progress = [], []
    async with Client(server) as client:
        first = (await client.call_tool("brief", {})).structured_content
        for value in values:
            best = (await client.read_resource("pgolf://best/train_gpt.py")).contents[0].text
            edited, count = _LR.subn(rf"\g<1>{value}", best)
            if count != 1:
                raise SystemExit("the script has no MATRIX_LR default to change")
            (workspace / "train_gpt.py").write_text(edited, encoding="utf-8")

            async def heard(done: float, total: float | None, message: str | None) -> None:
                progress.append(message)

            result = await client.call_tool("run_experiment", {"description": f"MATRIX_LR {value}"},
                                            progress_callback=heard)
            if result.is_error:
                raise SystemExit(f"run_experiment failed: {result.content[0].text}")
            decision = result.structured_content
            decisions.append({k: decision[k] for k in ("run_id", "status", "kept", "val_bpb", "gain", "verdict",
                                                       "decision", "working_copy")})
        last = (await client.call_tool("brief", {})).structured_content
    return {"first_brief": first, "decisions": decisions, "last_brief": last, "progress_messages": len(progress)}


def main() -> int:
    workspace, report, *values = sys.argv[1:]
    out = asyncio.run(drive(Path(workspace), [float(v) for v in values]))
    Path(report).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
