"""What `pgolf init` says about a train_gpt.py it adopts: that it kept it, what it needs and reads."""

from __future__ import annotations

import ast
from dataclasses import dataclass

# Variables pgolf sets for every run from pgolf.toml, so the script's own defaults do not matter.
SET_BY_PGOLF = {"DATA_PATH": "[data] dataset_dir", "TOKENIZER_PATH": "[data] tokenizer_path"}
_PATH_WORDS = ("PATH", "DIR", "FILE")


@dataclass(frozen=True)
class EnvRead:
    """One `os.environ.get("NAME", default)` (or `os.getenv`) in the script."""

    name: str
    default: str | None
    line: int


def _env_name(node: ast.Call) -> str | None:
    func = node.func
    is_get = (isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(func.value, ast.Attribute)
              and func.value.attr == "environ")
    is_getenv = isinstance(func, ast.Attribute) and func.attr == "getenv"
    if (is_get or is_getenv) and node.args and isinstance(node.args[0], ast.Constant):
        return node.args[0].value if isinstance(node.args[0].value, str) else None
    return None


def path_reads(source: str) -> list[EnvRead]:
    """The environment variables naming files or folders that the script reads, first read first."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: dict[str, EnvRead] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (name := _env_name(node)) and any(w in name for w in _PATH_WORDS):
            default = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
            if name not in found or node.lineno < found[name].line:
                found[name] = EnvRead(name, None if default is None else str(default), node.lineno)
    return sorted(found.values(), key=lambda r: r.line)


def adoption_notes(source: str) -> list[str]:
    """One line per thing a user should know about the adopted script: the device it needs, its inputs."""
    from pgolf.loop.setup_check import script_needs_cuda

    notes = []
    if cuda := script_needs_cuda(source):
        notes.append(f"needs CUDA ({cuda}); on a machine without a CUDA GPU `pgolf run` refuses it")
    for read in path_reads(source):
        default = f" (its default: {read.default})" if read.default else ""
        if read.name in SET_BY_PGOLF:
            notes.append(f"reads {read.name}{default}; pgolf sets it from pgolf.toml's {SET_BY_PGOLF[read.name]}")
        else:
            notes.append(f"reads {read.name}{default}; pgolf does not set it: add it to [tiers.local] env "
                         "if the default is wrong")
    return notes


def script_present(directory: object) -> bool:
    """Whether `pgolf init` will adopt a script already in `directory` (checked before it runs)."""
    from pathlib import Path

    from pgolf.workspace import TRAIN_SCRIPT

    return (Path(str(directory)).expanduser() / TRAIN_SCRIPT).is_file()


def init_lines(ws: object, *, adopted: bool) -> list[str]:
    """What init did with the script and the commit, for people (plain text, never markup)."""
    from pgolf import git

    root = ws.root  # type: ignore[attr-defined]
    lines = []
    if adopted:
        lines.append("Adopted the train_gpt.py already here as the starting point (pgolf's baseline was not "
                     "copied; `pgolf init --force` would replace it).")
        source = ws.train_script.read_text(encoding="utf-8", errors="replace")  # type: ignore[attr-defined]
        lines += [f"  It {note}." for note in adoption_notes(source)]
    author = git.git(root, "log", "-1", "--format=%an <%ae>", check=False)
    branch = git.git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False)
    if author:
        lines.append(f"Committed on branch {branch} as {author}.")
    return lines
