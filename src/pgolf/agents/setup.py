"""`pgolf agent setup claude|codex`: what a coding agent needs to drive research through pgolf.

Every file is merged, never clobbered: a user's own servers, hooks, settings and notes stay as they
were, pgolf's entries are added once (running setup again changes nothing), and a file pgolf cannot read
(broken JSON or TOML) is left untouched with one line saying so.

Formats, as the agents document them:
- Claude Code, project scope: `.mcp.json` `{"mcpServers": {NAME: {"type": "stdio", "command", "args",
  "env"}}}`; `.claude/settings.json` `{"hooks": {"PreToolUse": [{"matcher": REGEX, "hooks": [{"type":
  "command", "command", "timeout"}]}]}}` (timeout in seconds), `permissions.allow` rules such as
  `mcp__pgolf__status`, `enabledMcpjsonServers` (the project servers approved without a prompt), and
  `env` (the session's environment: `MCP_TOOL_TIMEOUT`, in ms, bounds one MCP tool call); `CLAUDE.md`.
- Codex: `.codex/config.toml` `[mcp_servers.NAME]` with `command`, `args`, `env`, `startup_timeout_sec`,
  `tool_timeout_sec` (read in trusted projects; `~/.codex/config.toml` takes the same table); `AGENTS.md`.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.errors import ConfigError
from pgolf.git import GitError
from pgolf.workspace import Workspace

SERVER_NAME = "pgolf"
AGENTS = ("claude", "codex")
HOOK_MATCHER = "Bash|Write|Edit|MultiEdit|NotebookEdit"
HOOK_TIMEOUT_SECONDS = 10
# One run_experiment waits for training, replicates included: allow hours, not the clients' defaults.
TOOL_TIMEOUT_SECONDS = 6 * 3600
# Tools that only read: a user need not approve each call. run_experiment and promote still ask.
READ_TOOLS = ("status", "ledger", "show_run", "noise_floor", "budget", "research_search", "competitors",
              "brief", "check", "measure")
SECTION_START = "<!-- PGOLF_AGENT_START -->"
SECTION_END = "<!-- PGOLF_AGENT_END -->"
# Files setup writes, kept out of the workspace's git: nothing the agent's tools read is ever committed.
IGNORED = (".mcp.json", ".claude/", ".codex/", "CLAUDE.md", "AGENTS.md")

GUIDE = f"""{SECTION_START}
## Working in this pgolf workspace

You propose changes; pgolf measures them and decides. The pgolf MCP server (`pgolf mcp`) is your
interface to everything that runs, scores or records.

1. Start with the `brief` tool (again after losing context): the best run, the bar a change must
   beat, runs in flight, dead ends and research. It holds everything the loop knows.
2. Edit only `train_gpt.py`. When a change is ready, call `run_experiment` with a one-line
   description. pgolf commits your edit, runs it through its scheduler (replicate seeds included)
   and returns the decision: keep or discard, with n, the means, sigma and the p-value.
3. Read the decision before the next edit. A kept change becomes `pgolf/best`; a discarded one is
   reverted in your working copy and stays reachable as `pgolf/exp/<run_id>`.
4. Never edit `results.tsv`, anything under `.pgolf/` or the marked sections of `program.md`, and never
   start training (`python train_gpt.py`, `torchrun`) or pods yourself: pgolf's hook denies those and
   names the tool to use instead. `promote(run_id, confirm)` sends a kept run to the paid tier,
   behind the budget's gates.

Other tools: `status`, `ledger`, `show_run`, `noise_floor`, `budget`, `research_search`,
`competitors`, `check` and `measure` (on a path).
{SECTION_END}
"""


@dataclass(frozen=True)
class Change:
    """What setup did to one file: created, updated, unchanged, or kept (left as the user had it)."""

    path: Path
    action: str
    detail: str = ""


def pgolf_command() -> list[str]:
    """How an agent starts this pgolf: the console script beside the interpreter, else `python -m pgolf`.

    Absolute, because agents start servers and hooks without the user's virtualenv on PATH.
    """
    beside = Path(sys.executable).parent / "pgolf"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("pgolf")
    return [found] if found else [sys.executable, "-m", "pgolf"]


def _read_json(path: Path) -> dict | None:
    """The file's JSON object, {} when absent, None when it is not a JSON object (then left alone)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, before: dict, after: dict, existed: bool) -> Change:
    if existed and before == after:
        return Change(path, "unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(after, indent=2) + "\n")
    return Change(path, "updated" if existed else "created")


def _server_entry(ws: Workspace, command: list[str]) -> dict:
    return {"type": "stdio", "command": command[0], "args": [*command[1:], "--workspace", str(ws.root), "mcp"],
            "env": {}}


def merge_mcp_json(ws: Workspace, command: list[str]) -> Change:
    """`.mcp.json`: the pgolf server added beside the user's; a different pgolf entry is kept."""
    path = ws.root / ".mcp.json"
    data = _read_json(path)
    if data is None:
        return Change(path, "kept", "not a JSON object; add the pgolf server by hand")
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        return Change(path, "kept", "mcpServers is not an object")
    entry = _server_entry(ws, command)
    if SERVER_NAME in servers and servers[SERVER_NAME] != entry:
        return Change(path, "kept", f"it already defines a {SERVER_NAME!r} server")
    after = {**data, "mcpServers": {**servers, SERVER_NAME: entry}}
    return _write_json(path, data, after, path.exists())


def _hook_command(command: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in command) + " hook pre-tool"


def merge_claude_settings(ws: Workspace, command: list[str]) -> Change:
    """`.claude/settings.json`: the PreToolUse hook, read-tool permissions, the approved server."""
    path = ws.root / ".claude" / "settings.json"
    data = _read_json(path)
    if data is None:
        return Change(path, "kept", "not a JSON object; add the hook by hand")
    after = json.loads(json.dumps(data))
    hooks = after.setdefault("hooks", {})
    permissions = after.setdefault("permissions", {})
    if not isinstance(hooks, dict) or not isinstance(hooks.setdefault("PreToolUse", []), list) \
            or not isinstance(permissions, dict) or not isinstance(permissions.setdefault("allow", []), list):
        return Change(path, "kept", "its hooks or permissions have an unexpected shape")
    ours = _hook_command(command)
    present = any(isinstance(group, dict) and any(isinstance(h, dict) and h.get("command") == ours
                                                  for h in group.get("hooks", []) or [])
                  for group in hooks["PreToolUse"])
    if not present:
        hooks["PreToolUse"].append({"matcher": HOOK_MATCHER, "hooks": [
            {"type": "command", "command": ours, "timeout": HOOK_TIMEOUT_SECONDS}]})
    for tool in READ_TOOLS:
        rule = f"mcp__{SERVER_NAME}__{tool}"
        if rule not in permissions["allow"]:
            permissions["allow"].append(rule)
    enabled = after.setdefault("enabledMcpjsonServers", [])
    if isinstance(enabled, list) and SERVER_NAME not in enabled:
        enabled.append(SERVER_NAME)
    env = after.setdefault("env", {})
    if isinstance(env, dict):
        env.setdefault("MCP_TOOL_TIMEOUT", str(TOOL_TIMEOUT_SECONDS * 1000))
    return _write_json(path, data, after, path.exists())


def _codex_table(ws: Workspace, command: list[str]) -> str:
    args = ", ".join(json.dumps(a) for a in [*command[1:], "--workspace", str(ws.root), "mcp"])
    return (f"[mcp_servers.{SERVER_NAME}]\n"
            f"command = {json.dumps(command[0])}\n"
            f"args = [{args}]\n"
            f"startup_timeout_sec = 30\n"
            f"tool_timeout_sec = {TOOL_TIMEOUT_SECONDS}\n")


def merge_codex_config(ws: Workspace, command: list[str]) -> Change:
    """`.codex/config.toml`: the `[mcp_servers.pgolf]` table appended; the user's text is kept byte for byte."""
    path = ws.root / ".codex" / "config.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return Change(path, "kept", f"not valid TOML ({err}); add [mcp_servers.{SERVER_NAME}] by hand")
    table = _codex_table(ws, command)
    existing = data.get("mcp_servers", {}).get(SERVER_NAME) if isinstance(data.get("mcp_servers"), dict) else None
    if existing is not None:
        same = existing == tomllib.loads(table)["mcp_servers"][SERVER_NAME]
        return Change(path, "unchanged" if same else "kept",
                      "" if same else f"it already defines [mcp_servers.{SERVER_NAME}]")
    path.parent.mkdir(parents=True, exist_ok=True)
    joined = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_text(path, joined + ("\n" if joined else "") + table)
    return Change(path, "updated" if text else "created")


def merge_guide(path: Path) -> Change:
    """CLAUDE.md / AGENTS.md: pgolf's section between its markers, replaced there or appended."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start >= 0 and end > start:
        after = text[:start] + GUIDE.rstrip("\n") + text[end + len(SECTION_END):]
    elif start >= 0 or end >= 0:
        return Change(path, "kept", "its pgolf section markers are damaged; remove them and run setup again")
    else:
        after = (text.rstrip("\n") + "\n\n" if text.strip() else "") + GUIDE
    if after == text:
        return Change(path, "unchanged")
    atomic_write_text(path, after)
    return Change(path, "updated" if text else "created")


def merge_git_exclude(ws: Workspace) -> Change:
    """The agent's files stay out of the workspace's git, through `.git/info/exclude`.

    Not `.gitignore`: that file is tracked, and a change to it would leave the tree dirty.
    """
    try:
        path = Path(git.git(ws.root, "rev-parse", "--git-path", "info/exclude"))
    except GitError:
        return Change(ws.root / ".git", "kept", "not a git repository")
    path = path if path.is_absolute() else ws.root / path
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    have = {line.strip() for line in text.splitlines()}
    missing = [name for name in IGNORED if name not in have]
    if not missing:
        return Change(path, "unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, (text.rstrip("\n") + "\n" if text.strip() else "")
                      + "# coding-agent files (pgolf agent setup)\n" + "\n".join(missing) + "\n")
    return Change(path, "updated" if text else "created")


def setup_agent(ws: Workspace, agent: str, command: list[str] | None = None) -> list[Change]:
    """Write what `agent` needs to drive research in `ws` through pgolf; one Change per file."""
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r}: choose one of {', '.join(AGENTS)}")
    command = command or pgolf_command()
    changes = [merge_git_exclude(ws)]
    if agent == "claude":
        changes += [merge_mcp_json(ws, command), merge_claude_settings(ws, command), merge_guide(ws.root / "CLAUDE.md")]
    else:
        changes += [merge_codex_config(ws, command), merge_guide(ws.root / "AGENTS.md")]
    return changes
