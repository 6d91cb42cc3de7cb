"""`pgolf agent setup claude|codex`: the documented files, merged into what the user already has."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pgolf import git
from pgolf.agents.setup import GUIDE, SECTION_END, SECTION_START, setup_agent
from pgolf.workspace import init_workspace

CMD = ["/opt/bin/pgolf"]


def _pgolf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_claude_setup_in_a_fresh_workspace(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    proc = _pgolf("agent", "setup", "claude", "--workspace", str(ws.root), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    server = json.loads((ws.root / ".mcp.json").read_text())["mcpServers"]["pgolf"]
    assert server["type"] == "stdio" and server["args"][-3:] == ["--workspace", str(ws.root), "mcp"]
    assert Path(server["command"]).is_absolute()
    settings = json.loads((ws.root / ".claude" / "settings.json").read_text())
    (group,) = settings["hooks"]["PreToolUse"]
    assert set(group["matcher"].split("|")) == {"Bash", "Write", "Edit", "MultiEdit", "NotebookEdit"}
    (hook,) = group["hooks"]
    assert hook["type"] == "command" and hook["command"].endswith(" hook pre-tool") and hook["timeout"] <= 60
    assert "mcp__pgolf__brief" in settings["permissions"]["allow"]
    assert "mcp__pgolf__run_experiment" not in settings["permissions"]["allow"]  # acting still asks
    assert settings["enabledMcpjsonServers"] == ["pgolf"]
    guide = (ws.root / "CLAUDE.md").read_text()
    for word in ("run_experiment", "brief", "results.tsv", "train_gpt.py"):
        assert word in guide
    # nothing setup wrote shows up in git: the loop's commits and resets never see it
    assert git.git(ws.root, "status", "--porcelain") == ""


def test_the_installed_hook_command_runs_and_denies(tmp_path: Path):
    """The command written into settings.json is a working hook: run it as Claude Code would (via sh)."""
    ws = init_workspace(tmp_path / "ws")
    setup_agent(ws, "claude", [sys.executable, "-m", "pgolf"])
    command = json.loads((ws.root / ".claude" / "settings.json").read_text())["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    payload = {"session_id": "s", "transcript_path": "/tmp/t", "cwd": str(ws.root), "permission_mode": "default",
               "hook_event_name": "PreToolUse", "tool_name": "Bash",
               "tool_input": {"command": "python train_gpt.py"}, "tool_use_id": "t1"}
    proc = subprocess.run(["sh", "-c", command], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=60, cwd=ws.root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_setup_merges_and_is_idempotent(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    (ws.root / ".mcp.json").write_text(json.dumps({"mcpServers": {"docs": {"command": "docs-mcp"}}}))
    (ws.root / ".claude").mkdir()
    mine = {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "my-check"}]}]},
            "permissions": {"allow": ["Bash(ls:*)"], "deny": ["Read(./.env)"]}, "model": "opus"}
    (ws.root / ".claude" / "settings.json").write_text(json.dumps(mine))
    (ws.root / "CLAUDE.md").write_text("# My project notes\n\nUse tabs.\n")
    first = {c.path.name: c.action for c in setup_agent(ws, "claude", CMD)}
    assert first == {"exclude": "updated", ".mcp.json": "updated", "settings.json": "updated", "CLAUDE.md": "updated"}
    servers = json.loads((ws.root / ".mcp.json").read_text())["mcpServers"]
    assert servers["docs"] == {"command": "docs-mcp"} and servers["pgolf"]["command"] == CMD[0]
    settings = json.loads((ws.root / ".claude" / "settings.json").read_text())
    assert settings["model"] == "opus" and settings["permissions"]["deny"] == ["Read(./.env)"]
    assert "Bash(ls:*)" in settings["permissions"]["allow"]
    assert [g["hooks"][0]["command"] for g in settings["hooks"]["PreToolUse"]] == ["my-check", "/opt/bin/pgolf hook pre-tool"]
    text = (ws.root / "CLAUDE.md").read_text()
    assert text.startswith("# My project notes\n\nUse tabs.\n") and text.count(SECTION_START) == 1
    snapshot = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file() and ".git" not in p.parts[-3:-1]}
    again = {c.path.name: c.action for c in setup_agent(ws, "claude", CMD)}
    assert set(again.values()) == {"unchanged"}
    assert snapshot == {p: p.read_bytes() for p in snapshot}


def test_an_old_guide_section_is_replaced_in_place(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    (ws.root / "AGENTS.md").write_text(f"intro\n\n{SECTION_START}\nold text\n{SECTION_END}\n\nmy footer\n")
    setup_agent(ws, "codex", CMD)
    text = (ws.root / "AGENTS.md").read_text()
    assert text == "intro\n\n" + GUIDE.rstrip("\n") + "\n\nmy footer\n"


def test_files_it_cannot_read_are_left_alone(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    (ws.root / ".mcp.json").write_text("{not json")
    (ws.root / ".codex").mkdir()
    (ws.root / ".codex" / "config.toml").write_text("model = \n")
    claude = {c.path.name: c for c in setup_agent(ws, "claude", CMD)}
    codex = {c.path.name: c for c in setup_agent(ws, "codex", CMD)}
    assert claude[".mcp.json"].action == "kept" and (ws.root / ".mcp.json").read_text() == "{not json"
    assert codex["config.toml"].action == "kept" and (ws.root / ".codex" / "config.toml").read_text() == "model = \n"


def test_codex_config_is_appended_as_documented(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    (ws.root / ".codex").mkdir()
    (ws.root / ".codex" / "config.toml").write_text('model = "o4"\n\n[mcp_servers.docs]\ncommand = "docs"\n')
    setup_agent(ws, "codex", CMD)
    text = (ws.root / ".codex" / "config.toml").read_text()
    assert text.startswith('model = "o4"\n\n[mcp_servers.docs]\ncommand = "docs"\n')
    data = tomllib.loads(text)
    assert data["mcp_servers"]["docs"] == {"command": "docs"}
    ours = data["mcp_servers"]["pgolf"]
    assert ours["command"] == CMD[0] and ours["args"] == ["--workspace", str(ws.root), "mcp"]
    assert ours["tool_timeout_sec"] >= 3600
    assert {c.action for c in setup_agent(ws, "codex", CMD)} == {"unchanged"}
    (ws.root / ".codex" / "config.toml").write_text('[mcp_servers.pgolf]\ncommand = "other"\n')
    assert {c.path.name: c.action for c in setup_agent(ws, "codex", CMD)}["config.toml"] == "kept"


def test_unknown_agent_and_no_workspace_are_one_line(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    proc = _pgolf("agent", "setup", "cursor", cwd=ws.root)
    assert proc.returncode == 2 and "claude, codex" in proc.stderr and "Traceback" not in proc.stderr
    proc = _pgolf("agent", "setup", "claude", cwd=tmp_path)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_setup_cli_json(tmp_path: Path, agent: str):
    ws = init_workspace(tmp_path / "ws")
    proc = _pgolf("agent", "setup", agent, "--json", cwd=ws.root)
    assert proc.returncode == 0, proc.stderr
    actions = json.loads(proc.stdout)
    assert all(a["action"] in ("created", "updated") for a in actions)
