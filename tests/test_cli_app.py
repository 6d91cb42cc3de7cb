"""The `pgolf` entry point: lazy command table, the fast hook path, one help renderer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from pgolf.cli import app as cli_app
from pgolf.cli import entry
from pgolf.cli.help import first_paragraph
from pgolf.workspace import init_workspace

# What `pgolf --help` must not pay for (each is tens to hundreds of milliseconds).
HEAVY = ("numpy", "torch", "pydantic", "httpx", "rich", "pgolf.config", "pgolf.budget", "pgolf.workspace",
         "pgolf.research", "pgolf.submission", "pgolf.loop", "pgolf.dashboard")


def _run(*args: str, cwd: Path, stdin: str = "", python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"} | {"COLUMNS": "80"}
    return subprocess.run([sys.executable, *python_flags, *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _imported(importtime_stderr: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*(\S+)$", importtime_stderr, re.M)}


def _heavy(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)}


def test_help_lists_every_command_without_importing_any(tmp_path: Path) -> None:
    out = _run("-m", "pgolf", "--help", cwd=tmp_path, python_flags=("-X", "importtime"))
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())
    for name, command in cli_app.COMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} ", out.stdout, re.M), name
        assert " ".join(command.help.split()) in flat, name
    imported = _imported(out.stderr)
    assert "pgolf.cli.app" in imported  # the measurement saw the app itself
    assert not _heavy(imported), sorted(_heavy(imported))
    assert not {m for m in imported if m.startswith("pgolf.cli.") and m not in
                {"pgolf.cli.app", "pgolf.cli.entry", "pgolf.cli.help"}}


def test_every_table_line_is_the_commands_own_first_paragraph() -> None:
    for name, entry_ in cli_app.COMMANDS.items():
        command = cli_app.resolve(name, entry_)
        assert command.name == name
        assert " ".join(entry_.help.split()) == first_paragraph(command.help), name


def test_status_json_imports_no_research_submission_numpy_or_network(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    out = _run("-m", "pgolf", "status", "--json", cwd=ws.root, python_flags=("-X", "importtime"))
    assert out.returncode == 0, out.stderr
    assert '"runs": 0' in out.stdout
    # The loop's light readers (its state, the noise floor) may load; its machinery may not.
    heavy = _heavy(_imported(out.stderr), ("numpy", "torch", "httpx", "optuna", "starlette", "pgolf.research",
                                           "pgolf.submission", "pgolf.dashboard", "pgolf.compute.runpod", "pgolf.compute.ssh",
                                           "pgolf.loop.proposers", "pgolf.loop.supervisor"))
    assert not heavy, sorted(heavy)


def test_unknown_command_is_suggested_from_the_whole_table(tmp_path: Path) -> None:
    out = _run("-m", "pgolf", "statu", cwd=tmp_path)
    assert out.returncode == 2
    assert "No such command 'statu'. Did you mean 'status'" in out.stderr


def test_no_arguments_prints_the_help(tmp_path: Path) -> None:
    out = _run("-m", "pgolf", "budget", cwd=tmp_path)
    assert "Usage: pgolf budget [OPTIONS] COMMAND [ARGS]..." in out.stdout + out.stderr
    assert "history" in out.stdout + out.stderr


def test_typer_still_sees_a_group_for_tests_and_runners() -> None:
    group = typer.main.get_command(cli_app.app)
    assert group.list_commands(None) == list(cli_app.COMMANDS)
    assert group.get_command(None, "ledger").name == "ledger"
    assert group.get_command(None, "nope") is None


# --- the fast hook path -------------------------------------------------------------------------------

_STUB_RUNNER = """
import sys
import pgolf
pgolf.__path__.insert(0, sys.argv[1])  # the stand-in `pgolf.agents` wins over any real one
from pgolf.cli.entry import main
main(sys.argv[2:])
"""


def _stub_agents(root: Path, hook_source: str) -> Path:
    package = root / "stub" / "agents"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "hook.py").write_text(hook_source)
    return root / "stub"


def test_hook_pre_tool_runs_before_typer_rich_or_pydantic(tmp_path: Path) -> None:
    stub = _stub_agents(tmp_path, (
        "import json, sys\n"
        "def main(argv):\n"
        "    loaded = sorted(m for m in ('typer', 'rich', 'pydantic', 'pgolf.cli.app') if m in sys.modules)\n"
        "    payload = json.load(sys.stdin)\n"
        "    print(json.dumps({'argv': argv, 'loaded': loaded, 'tool': payload['tool_name']}))\n"
        "    return 3\n"))
    out = _run("-c", _STUB_RUNNER, str(stub), "hook", "pre-tool", "--flag", cwd=tmp_path,
               stdin='{"tool_name": "Bash"}')
    assert out.returncode == 3, out.stderr
    assert out.stdout.strip() == '{"argv": ["--flag"], "loaded": [], "tool": "Bash"}'


def test_a_broken_hook_module_is_an_error_not_a_silent_fall_through(tmp_path: Path) -> None:
    stub = _stub_agents(tmp_path, "import pgolf_no_such_dependency\ndef main(argv):\n    return 0\n")
    out = _run("-c", _STUB_RUNNER, str(stub), "hook", "pre-tool", cwd=tmp_path)
    assert out.returncode == 1
    assert "No module named 'pgolf_no_such_dependency'" in out.stderr


def test_without_the_hook_module_typer_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pgolf.agents", None)  # what an install without the package sees
    monkeypatch.delitem(sys.modules, "pgolf.agents.hook", raising=False)
    assert entry._fast_hook(["hook", "pre-tool"]) is None
    assert entry._fast_hook(["hook", "pre-tool", "--help"]) is None
    assert entry._fast_hook(["status"]) is None


# --- the help renderer --------------------------------------------------------------------------------

def _help(*args: str, cwd: Path) -> str:
    out = _run("-m", "pgolf", *args, "--help", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_shows_values_not_annotations_and_keeps_brackets(tmp_path: Path) -> None:
    pages = {args: _help(*args, cwd=tmp_path) for args in
             [(), ("ledger",), ("measure",), ("logs", "parse"), ("research", "grade"), ("run",),
              ("check",), ("competitors", "scan")]}
    for args, page in pages.items():
        assert "<bool>" not in page and "<list[" not in page and "<path>" not in page, args
        assert max(len(line) for line in page.splitlines()) <= 80, args
        assert "--install-completion" not in page, args
    assert "--json  " in pages[("ledger",)] or re.search(r"^  --json\s+Print JSON", pages[("ledger",)], re.M)
    assert re.search(r"^  --model PATH\s", pages[("measure",)], re.M)
    assert "Usage: pgolf logs parse [OPTIONS] FILES..." in pages[("logs", "parse")]
    assert "Usage: pgolf check [OPTIONS] [PATH]" in pages[("check",)]
    grade = " ".join(pages[("research", "grade")].split())
    assert "(through pgolf.toml's [llm])" in grade and "[default: pgolf.toml's [research] grader]" in grade
    assert "[default: --save]" in pages[("competitors", "scan")]


def test_help_rewraps_sentences_broken_in_the_source() -> None:
    from pgolf.cli.help import render_help

    page = render_help(usage="Usage: x", params=[], width=60,
                       help_text="A first sentence that the source\nbroke in the middle.\n\n"
                                 "    verbatim   example\n    kept as written\n")
    assert "A first sentence that the source broke in the middle." in page
    assert "    verbatim   example\n    kept as written" in page
