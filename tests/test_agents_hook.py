"""`pgolf hook pre-tool`: Claude Code's documented PreToolUse JSON in, the documented decision out.

Every case runs the real hook process with the JSON Claude Code sends (hooks reference: session_id,
transcript_path, cwd, permission_mode, hook_event_name, tool_name, tool_input, tool_use_id).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgolf.agents import hook
from pgolf.program import _MARKER, template_text

TRAINING = "run_experiment"
POD = "promote"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace-shaped folder: the records the hook guards, and scripts that hide a launch."""
    root = tmp_path_factory.mktemp("ws")
    (root / "pgolf.toml").write_text('ruleset = "track_10min_16mb"\n')
    (root / "results.tsv").write_text("commit\ttier\n")
    (root / ".pgolf" / "runs" / "r0001").mkdir(parents=True)
    (root / ".pgolf" / "budget.json").write_text("{}")
    (root / ".pgolf" / "slots" / "s1").mkdir(parents=True)
    (root / "program.md").write_text(template_text().replace(
        "<!-- BEST_START -->\n", "<!-- BEST_START -->\nbest: r0001 1.2345\n"))
    (root / "train_gpt.py").write_text("class Hyperparameters:\n    pass\n\ndef main():\n    pass\n")
    (root / "copy.py").write_text("class Hyperparameters:\n    pass\n\ndef main():\n    pass\n")
    (root / "launch.sh").write_text("#!/bin/sh\nset -e\ntorchrun --standalone train_gpt.py\n")
    (root / "wrapper.py").write_text("import subprocess\nsubprocess.run(['torchrun', 'train_gpt.py'])\n")
    (root / "analyse.py").write_text("import csv\nprint(list(csv.reader(open('results.tsv'), delimiter='\\t')))\n")
    (root / "notes.md").write_text("notes\n")
    os.mkfifo(root / "pipe")  # opening it for reading would block the hook forever
    return root


def _payload(tool: str, tool_input: dict, cwd: Path) -> dict:
    return {
        "session_id": "abc123", "transcript_path": str(cwd / "transcript.jsonl"), "cwd": str(cwd),
        "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": tool,
        "tool_input": tool_input, "tool_use_id": "toolu_01ABC123",
    }


def _call(payload: dict, *extra: str, entry: str = "module") -> subprocess.CompletedProcess:
    argv = ([sys.executable, "-m", "pgolf.agents.hook"] if entry == "module"
            else [sys.executable, "-m", "pgolf", "hook"]) + ["pre-tool", *extra]
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"}
    return subprocess.run(argv, input=json.dumps(payload), capture_output=True, text=True, timeout=60, env=env)


def _decision(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return "allow", ""
    out = json.loads(proc.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out["permissionDecision"], out["permissionDecisionReason"]


# (command, expected decision, a word the reason must contain)
BASH_CASES = [
    # allowed: reading, editing the script, pgolf itself, look-ups
    ("ls -la", "allow", ""),
    ("cat results.tsv", "allow", ""),
    ("tail -n 5 results.tsv | cut -f3", "allow", ""),
    ("sed 's/\\t/,/g' results.tsv > /tmp/results.csv", "allow", ""),
    ("git diff train_gpt.py | tee /tmp/change.patch", "allow", ""),
    ("git show pgolf/best:train_gpt.py > /tmp/best.py", "allow", ""),
    ("python -m py_compile train_gpt.py", "allow", ""),
    ("python3 -c 'import ast; ast.parse(open(\"train_gpt.py\").read())'", "allow", ""),
    ("python analyse.py", "allow", ""),
    ("pgolf status && pgolf ledger --last 5", "allow", ""),
    ("command -v torchrun", "allow", ""),
    ("grep -n torchrun README.md; echo 'python train_gpt.py'", "allow", ""),
    ("cat > notes.md <<'EOF'\nnext: try python train_gpt.py with MATRIX_LR=0.05; it's cheap\nEOF", "allow", ""),
    ("cp /tmp/x.py .pgolf/slots/s1/train_gpt.py", "allow", ""),
    ("tr ';' '|' < results.tsv", "allow", ""),
    ("pip install runpod", "allow", ""),
    # denied: writes to the records
    ("echo row >> results.tsv", "deny", "run_experiment"),
    ("printf 'x\\n' > ./results.tsv", "deny", "ledger"),
    ("sed -i 's/discard/keep/' results.tsv", "deny", "ledger"),
    ("sed -i.bak -e 's/a/b/' results.tsv", "deny", "ledger"),
    ("echo x | tee -a results.tsv >/dev/null", "deny", "ledger"),
    ("cp /tmp/forged.tsv results.tsv", "deny", "ledger"),
    ("mv results.tsv /tmp/old.tsv", "deny", "ledger"),
    ("rm -rf *", "deny", "ledger"),
    ("cd .pgolf && echo '{}' > budget.json", "deny", "state"),
    ("(cd .pgolf/runs/r0001; rm result.json)", "deny", "state"),
    ("dd if=/dev/zero of=.pgolf/budget.json", "deny", "state"),
    ("echo x > .pgolf/slots/s1/results.tsv", "deny", "ledger"),
    ("perl -pi -e 's/1.2/1.1/' program.md", "deny", "brief"),
    ("python3 -c \"open('results.tsv','a').write('forged')\"", "deny", "ledger"),
    ("git clean -fdx", "deny", "ledger"),
    ("git stash push --all", "deny", "ledger"),
    ("git stash -u", "allow", ""),
    ("git branch -f pgolf/best HEAD~1", "deny", "pgolf/best"),
    ("git update-ref refs/heads/pgolf/best HEAD", "deny", "pgolf/best"),
    ("find .pgolf -name '*.json' -delete", "deny", "state"),
    ("find . -name results.tsv -exec rm {} \\;", "deny", "ledger"),
    # denied: training outside pgolf, in every disguise
    ("python train_gpt.py", "deny", TRAINING),
    ("torchrun --standalone --nproc_per_node=8 train_gpt.py", "deny", TRAINING),
    ("/usr/bin/python3 ./train_gpt.py", "deny", TRAINING),
    ("env CUDA_VISIBLE_DEVICES=0 python3 train_gpt.py", "deny", TRAINING),
    ("NUM_LAYERS=4 MODEL_DIM=256 python -u train_gpt.py", "deny", TRAINING),
    ("env -i PATH=/usr/bin /usr/local/bin/torchrun train_gpt.py", "deny", TRAINING),
    ("python -m torch.distributed.run --nproc_per_node=2 train_gpt.py", "deny", TRAINING),
    ("python3.11 -um torch.distributed.launch train_gpt.py", "deny", TRAINING),
    ("bash -c 'cd /tmp && torchrun x.py'", "deny", TRAINING),
    ("sh -c \"bash -c 'python train_gpt.py'\"", "deny", TRAINING),
    ("git status && python train_gpt.py", "deny", TRAINING),
    ("false || torchrun train_gpt.py", "deny", TRAINING),
    ("ls; nohup python train_gpt.py > train.log 2>&1 &", "deny", TRAINING),
    ("echo $(torchrun train_gpt.py)", "deny", TRAINING),
    ("echo `python train_gpt.py`", "deny", TRAINING),
    ("(python train_gpt.py)", "deny", TRAINING),
    ("timeout 600 nice -n 10 python train_gpt.py", "deny", TRAINING),
    ("uv run train_gpt.py", "deny", TRAINING),
    ("S=train_gpt.py; python $S", "deny", TRAINING),
    ("tor''chrun train_gpt.py", "deny", TRAINING),
    ("\\torchrun train_gpt.py", "deny", TRAINING),
    ("eval 'torchrun train_gpt.py'", "deny", TRAINING),
    ("echo 'torchrun train_gpt.py' | bash", "deny", TRAINING),
    ("bash launch.sh", "deny", TRAINING),
    ("sh < launch.sh", "deny", TRAINING),
    ("python copy.py", "deny", TRAINING),
    ("python wrapper.py", "deny", TRAINING),
    ("python - <<'EOF'\nimport runpy\nrunpy.run_path('train_gpt.py')\nEOF", "deny", TRAINING),
    ("ssh gpu-box 'cd pg && torchrun --nproc_per_node=8 train_gpt.py'", "deny", TRAINING),
    ("accelerate launch train_gpt.py", "deny", TRAINING),
    # denied: pods outside pgolf
    ("runpodctl create pod --gpuType 'NVIDIA H100'", "deny", POD),
    ("/home/u/.local/bin/runpod pod create", "deny", POD),
    ("python -m runpod.cli pod create", "deny", POD),
    ("curl -s -X POST https://api.runpod.io/graphql -d '{}'", "deny", POD),
    ("sky launch -c golf task.yaml", "deny", POD),
    # more disguises: scripts run directly, containers, multiplexers, Python that hides a launch
    ("./launch.sh", "deny", TRAINING),
    ("python -m train_gpt", "deny", TRAINING),
    ("python -c \"$(cat train_gpt.py)\"", "deny", TRAINING),
    ("cat train_gpt.py | python -", "deny", TRAINING),
    ("python3 -c \"import subprocess; subprocess.run(['torchrun', 'train_gpt.py'])\"", "deny", TRAINING),
    ("python -c \"import train_gpt; train_gpt.main()\"", "deny", TRAINING),
    ("docker run --gpus all -v $PWD:/w pytorch/pytorch python /w/train_gpt.py", "deny", TRAINING),
    ("tmux new -d 'python train_gpt.py'", "deny", TRAINING),
    ("python -c \"from pathlib import Path; (Path('.pgolf') / 'budget.json').write_text('{}')\"", "deny", "state"),
    # and what an agent analysing its runs does is still allowed
    ("python -c \"import pandas as pd; pd.read_csv('results.tsv', sep='\\t').to_csv('/tmp/r.csv')\"", "allow", ""),
    ("python -c \"import train_gpt; print(train_gpt.Hyperparameters)\"", "allow", ""),
    ("docker ps", "allow", ""),
    ("head -c 100 /dev/urandom | cat /dev/zero - | sh < /dev/zero", "allow", ""),  # never read a device
    ("bash pipe; python pipe; cat pipe | sh", "allow", ""),  # a FIFO in the workspace is never opened
]


@pytest.mark.parametrize(("command", "expected", "word"), BASH_CASES, ids=[c[0][:50] for c in BASH_CASES])
def test_bash_commands(ws: Path, command: str, expected: str, word: str):
    decision, reason = _decision(_call(_payload("Bash", {"command": command, "description": "x"}, ws)))
    assert decision == expected, reason
    if expected == "deny":
        assert word in reason


def test_the_documented_cases_are_many():
    assert len(BASH_CASES) >= 30
    assert sum(1 for c in BASH_CASES if c[1] == "allow") >= 10


def _file_case(ws: Path, tool: str, tool_input: dict) -> tuple[str, str]:
    return _decision(_call(_payload(tool, tool_input, ws)))


def test_file_tools_on_the_records(ws: Path):
    assert _file_case(ws, "Write", {"file_path": str(ws / "results.tsv"), "content": "x"})[0] == "deny"
    assert _file_case(ws, "Edit", {"file_path": str(ws / ".pgolf" / "budget.json"), "old_string": "{}",
                                   "new_string": "[]"})[0] == "deny"
    assert _file_case(ws, "MultiEdit", {"file_path": str(ws / "results.tsv"),
                                        "edits": [{"old_string": "a", "new_string": "b"}]})[0] == "deny"
    assert _file_case(ws, "NotebookEdit", {"notebook_path": str(ws / ".pgolf" / "n.ipynb"),
                                           "new_source": "x"})[0] == "deny"
    # the agent's own files
    assert _file_case(ws, "Edit", {"file_path": str(ws / "train_gpt.py"), "old_string": "pass",
                                   "new_string": "return"})[0] == "allow"
    assert _file_case(ws, "Write", {"file_path": str(ws / "notes.md"), "content": "x"})[0] == "allow"
    assert _file_case(ws, "Write", {"file_path": str(ws / ".pgolf" / "slots" / "s1" / "train_gpt.py"),
                                    "content": "x"})[0] == "allow"


def test_program_md_sections_are_guarded_but_the_rest_is_editable(ws: Path):
    program = str(ws / "program.md")
    text = (ws / "program.md").read_text()
    denied = [
        ("Edit", {"file_path": program, "old_string": "best: r0001 1.2345", "new_string": "best: r0001 1.0"}),
        ("Edit", {"file_path": program, "old_string": "## Research\n", "new_string": "<!-- BEST_END -->"}),
        ("MultiEdit", {"file_path": program, "edits": [
            {"old_string": "# Research program", "new_string": "# Program"},
            {"old_string": "<!-- BUDGET_START -->\n<!-- BUDGET_END -->", "new_string": ""}]}),
        ("Write", {"file_path": program, "content": text.replace("best: r0001 1.2345", "best: forged")}),
    ]
    for tool, tool_input in denied:
        decision, reason = _file_case(ws, tool, tool_input)
        assert decision == "deny", (tool, tool_input)
        assert "brief" in reason
    allowed = [
        ("Edit", {"file_path": program, "old_string": "# Research program", "new_string": "# Research program\n\nMy notes."}),
        ("Write", {"file_path": program, "content": "My notes first.\n\n" + text}),
    ]
    for tool, tool_input in allowed:
        assert _file_case(ws, tool, tool_input)[0] == "allow", (tool, tool_input)


def test_other_tools_and_the_exit_code_form(ws: Path):
    assert _file_case(ws, "Read", {"file_path": str(ws / "results.tsv")})[0] == "allow"
    assert _file_case(ws, "mcp__pgolf__run_experiment", {"description": "x"})[0] == "allow"
    proc = _call(_payload("Bash", {"command": "torchrun train_gpt.py"}, ws), "--exit-code")
    assert proc.returncode == 2 and TRAINING in proc.stderr and proc.stdout == ""
    proc = _call(_payload("Bash", {"command": "ls"}, ws), "--exit-code")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_the_pgolf_console_entry_answers_the_same(ws: Path):
    """`pgolf hook pre-tool` (the command setup installs) gives the same decisions as the module."""
    assert _decision(_call(_payload("Bash", {"command": "torchrun train_gpt.py"}, ws), entry="cli"))[0] == "deny"
    assert _decision(_call(_payload("Bash", {"command": "ls"}, ws), entry="cli"))[0] == "allow"


@pytest.mark.parametrize("stdin", ["not json", "[1, 2]", ""])
def test_bad_input_is_one_line_and_not_a_block(ws: Path, stdin: str):
    proc = subprocess.run([sys.executable, "-m", "pgolf.agents.hook", "pre-tool"], input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # Claude Code: a non-blocking error, shown to the user
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_unparseable_commands_are_denied_only_when_they_name_what_is_guarded(ws: Path):
    assert _decision(_call(_payload("Bash", {"command": "echo 'unclosed"}, ws)))[0] == "allow"
    assert _decision(_call(_payload("Bash", {"command": "python train_gpt.py 'unclosed"}, ws)))[0] == "deny"


def test_marker_pattern_matches_pgolf_program():
    """The hook cannot import pgolf.program (stdlib only, for speed), so the two patterns must agree."""
    assert hook._MARKER.pattern == _MARKER.pattern


def test_hook_imports_only_the_standard_library():
    code = ("import sys; import pgolf.agents.hook; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pgolf', 'typer', 'rich', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == ["pgolf", "pgolf.agents", "pgolf.agents.hook"]


def test_main_takes_what_follows_pre_tool(ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """The console script's fast path calls main(argv after `hook pre-tool`); `-m` passes `pre-tool` too."""
    import io

    payload = json.dumps(_payload("Bash", {"command": "torchrun train_gpt.py"}, ws))
    for argv, code in (([], 0), (["pre-tool"], 0), (["--exit-code"], 2), (["pre-tool", "--exit-code"], 2)):
        monkeypatch.setattr(sys, "stdin", io.StringIO(payload))
        assert hook.main(argv) == code, argv
    assert hook.main(["--bogus"]) == 2
    assert hook.main(["--help"]) == 0
