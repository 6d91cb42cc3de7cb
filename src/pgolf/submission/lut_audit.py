"""The BPB byte-table audit: does a script count validation bytes the canonical way?

Statically, the script's table-building function is found in its AST (after peeling any self-extracting
wrapper) and interpreted by `lut_interp` on a probe vocabulary that holds every kind of piece (control,
unknown, unused, byte fallback, leading-space, multi-byte, padding), and on the real tokenizer when one is
given; the tables it yields are compared with `pgolf.scoring.luts.build_luts` entry by entry and every
difference is named. `execute=True` runs only that extracted function, in a subprocess with a timeout, on
the same probe and on the real tokenizer: a reviewer's explicit choice, since it runs the script's code.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgolf.errors import DataError
from pgolf.scoring.luts import LEADING_SPACE, ByteLUTs, build_luts, load_tokenizer, token_bytes
from pgolf.submission.lut_interp import TOKENIZER_METHODS, Array, Device, Interpreter, Unsupported
from pgolf.submission.probe import EXECUTE_TIMEOUT_S, ProbeTokenizer
from pgolf.submission.pysource import parse_tree
from pgolf.submission.wrappers import ReadSibling, unwrap

CORRECT, BUGGY, OBFUSCATED, UNKNOWN = "CORRECT", "BUGGY", "OBFUSCATED", "UNKNOWN"
# N/A: a byte-level model (every token is one byte: no tables to get wrong); FAIL: an empty script
NOT_APPLICABLE, FAILED = "N/A", "FAIL"
_TOKENIZER_MODULES = frozenset({"sentencepiece", "tiktoken", "tokenizers", "transformers"})
_BYTE_VOCAB_MAX = 260  # 256 byte values plus a few specials

# Every kind of piece a SentencePiece vocabulary holds, with pieces whose canonical counts differ.
PROBE_VOCAB: tuple[tuple[str, str], ...] = (
    ("<unk>", "unknown"), ("<s>", "control"), ("</s>", "control"), ("<0x41>", "byte"),
    ("<0xE2>", "byte"), (f"{LEADING_SPACE}the", "normal"), ("the", "normal"), (LEADING_SPACE, "normal"),
    ("é", "normal"), (f"{LEADING_SPACE}über", "normal"), ("<unused0>", "unused"), ("ing", "normal"),
)
PROBE_TABLE_SIZE = len(PROBE_VOCAB) + 2  # two padding entries, as a model with a padded vocab has

# The names a table-building function gives away by asking the tokenizer about pieces.
_PIECE_QUERIES = frozenset(k for k, v in TOKENIZER_METHODS.items()
                           if v in {"is_byte", "id_to_piece", "is_control", "is_unknown", "is_unused"})

_DEVIATION_TEXT = {
    "leading_space_plus_one": "a +1 is baked into the base bytes of leading-space pieces (the space is "
                              "then counted twice after a non-boundary token)",
    "leading_space_counted_as_bytes": 'the leading "▁" is counted as bytes (3 UTF-8 bytes) instead of '
                                      "being stripped",
    "leading_space_flag_wrong": "has_leading_space does not mark exactly the pieces that start with ▁",
    "byte_fallback_not_one": "byte-fallback pieces (<0xNN>) are not counted as 1 byte",
    "unused_not_boundary": "unused pieces are not boundaries (or count bytes)",
    "control_not_boundary": "control pieces (<s>, </s>) are not boundaries (or count bytes)",
    "unknown_not_boundary": "the unknown piece is not a boundary (or counts bytes)",
    "characters_not_utf8_bytes": "pieces are measured in characters, not UTF-8 bytes",
    "piece_bytes_wrong": "ordinary pieces have base bytes different from their UTF-8 length",
    "piece_marked_boundary": "ordinary pieces are marked as boundaries",
    "padding_not_boundary": "table entries beyond the vocabulary are not zero-byte boundaries",
    "table_size": "the tables do not cover the model's vocabulary",
}


@dataclass
class Deviation:
    """One named way the script's tables differ from the canonical rule, with examples."""

    code: str
    description: str
    examples: list[str] = field(default_factory=list)


@dataclass
class LutAudit:
    """The audit's verdict on one script."""

    status: str
    reason: str = ""
    function: str | None = None
    line: int | None = None
    deviations: list[Deviation] = field(default_factory=list)
    wrapper_layers: list[str] = field(default_factory=list)
    mode: str = "static"  # "static" or "execute"
    tokenizer: str | None = None
    mismatched_entries: int | None = None  # against the real tokenizer's canonical tables
    canonical_bytes: int | None = None
    script_bytes: int | None = None
    inflation: float | None = None  # script_bytes / canonical_bytes - 1 over the val tokens

    @property
    def deviation_codes(self) -> list[str]:
        """The deviations' codes, sorted."""
        return sorted(d.code for d in self.deviations)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


@dataclass(frozen=True)
class _Tables:
    base: list[int]
    lead: list[bool]
    boundary: list[bool]


class _RealTokenizer:
    """A SentencePiece model answering only the whitelisted queries."""

    def __init__(self, sp: Any) -> None:
        self.sp = sp

    def audit_query(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.sp, method)(*args)
        except (IndexError, TypeError, RuntimeError) as err:
            raise Unsupported(f"tokenizer query {method}{args}: {err}") from None


def _piece_kinds(sp: Any) -> list[tuple[str, str]]:
    out = []
    for i in range(sp.vocab_size()):
        kind = ("control" if sp.is_control(i) else "unknown" if sp.is_unknown(i)
                else "unused" if sp.is_unused(i) else "byte" if sp.is_byte(i) else "normal")
        out.append((sp.id_to_piece(i), kind))
    return out


def find_table_builder(tree: ast.Module) -> ast.FunctionDef | None:
    """The function that builds the byte tables: the one asking the tokenizer most about its pieces."""
    best: tuple[int, ast.FunctionDef] | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        queries = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and n.attr in _PIECE_QUERIES}
        if len(queries) >= 2 and (best is None or len(queries) > best[0]):
            best = (len(queries), node)
    return best[1] if best else None


def _roles(func: ast.FunctionDef) -> list[str] | None:
    """What each positional parameter receives: the tokenizer, the table size, or the device."""
    queried = {
        n.value.id for n in ast.walk(func)
        if isinstance(n, ast.Attribute) and n.attr in TOKENIZER_METHODS and isinstance(n.value, ast.Name)
    }
    devices = {  # parameters passed as `device=` or to `.to(...)`
        n.value.id for n in ast.walk(func) if isinstance(n, ast.keyword) and n.arg == "device"
        and isinstance(n.value, ast.Name)
    } | {
        a.id for n in ast.walk(func) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        and n.func.attr == "to" for a in n.args if isinstance(a, ast.Name)
    }
    params = func.args.posonlyargs + func.args.args
    n_required = len(params) - len(func.args.defaults)
    roles: list[str] = []
    for i, param in enumerate(params):
        name = param.arg.lower()
        if param.arg in queried:
            roles.append("tokenizer")
        elif "device" in name or param.arg in devices:
            roles.append("device")
        elif i >= n_required:
            break  # optional parameters keep their defaults
        elif name in {"self", "cls"}:
            return None
        else:
            roles.append("size")
    return roles if "tokenizer" in roles else None


def _as_tables(result: Any) -> _Tables:
    if isinstance(result, dict):
        keys = list(result)
        by_role = {}
        for role, words in (("base", ("byte", "base")), ("lead", ("space", "lead")), ("boundary", ("bound",))):
            match = [k for k in keys if any(w in str(k).lower() for w in words)]
            if len(match) != 1:
                raise Unsupported(f"cannot tell which returned table is {role}")
            by_role[role] = result[match[0]]
        result = (by_role["base"], by_role["lead"], by_role["boundary"])
    if not isinstance(result, tuple | list) or len(result) != 3:
        raise Unsupported("the function does not return three tables (base bytes, leading space, boundary)")
    tables = []
    for table in result:
        if isinstance(table, Array):
            tables.append(table.values)
        elif isinstance(table, list):
            tables.append(table)
        else:
            raise Unsupported(f"a returned table is a {type(table).__name__}")
    base, lead, boundary = tables
    return _Tables([int(v) for v in base], [bool(v) for v in lead], [bool(v) for v in boundary])


def _tables_from_lists(lists: list[list[int]]) -> _Tables:
    if len(lists) != 3:
        raise Unsupported("the function does not return three tables")
    return _Tables([int(v) for v in lists[0]], [bool(v) for v in lists[1]], [bool(v) for v in lists[2]])


def classify(tables: _Tables, canonical: ByteLUTs, vocab: Sequence[tuple[str, str]]) -> list[Deviation]:
    """Name every way `tables` differ from the canonical ones, by kind of piece."""
    found: dict[str, Deviation] = {}

    def add(code: str, example: str) -> None:
        dev = found.setdefault(code, Deviation(code, _DEVIATION_TEXT[code]))
        if len(dev.examples) < 3:
            dev.examples.append(example)

    size = len(canonical.base_bytes)
    if not (len(tables.base) == len(tables.lead) == len(tables.boundary)) or len(tables.base) < len(vocab):
        add("table_size", f"tables of {len(tables.base)}/{len(tables.lead)}/{len(tables.boundary)} entries "
                          f"for a vocabulary of {len(vocab)} (canonical {size})")
        return list(found.values())
    for i in range(min(size, len(tables.base))):
        want_b, want_l, want_x = int(canonical.base_bytes[i]), bool(canonical.has_leading_space[i]), \
            bool(canonical.is_boundary[i])
        got_b, got_l, got_x = tables.base[i], tables.lead[i], tables.boundary[i]
        if (got_b, got_l, got_x) == (want_b, want_l, want_x):
            continue
        piece, kind = vocab[i] if i < len(vocab) else ("", "padding")
        example = (f"id {i} {piece!r} ({kind}): base_bytes {got_b} lead {int(got_l)} boundary {int(got_x)}; "
                   f"canonical {want_b} {int(want_l)} {int(want_x)}")
        if kind in {"control", "unknown", "unused", "padding"}:
            add({"control": "control_not_boundary", "unknown": "unknown_not_boundary",
                 "unused": "unused_not_boundary", "padding": "padding_not_boundary"}[kind], example)
            continue
        if kind == "byte":
            add("byte_fallback_not_one" if got_b != want_b else "piece_marked_boundary", example)
            continue
        if got_x:
            add("piece_marked_boundary", example)
        if got_l != want_l:
            add("leading_space_flag_wrong", example)
        delta = got_b - want_b
        if delta:
            add(_byte_count_deviation(piece, got_b, delta), example)
    return list(found.values())


def _byte_count_deviation(piece: str, got: int, delta: int) -> str:
    """Which mistake explains an ordinary piece counted `delta` bytes off the canonical count."""
    if got == len(piece.removeprefix(LEADING_SPACE)):
        return "characters_not_utf8_bytes"
    if piece.startswith(LEADING_SPACE) and delta == 1:
        return "leading_space_plus_one"
    if piece.startswith(LEADING_SPACE) and delta == len(LEADING_SPACE.encode()):
        return "leading_space_counted_as_bytes"
    return "piece_bytes_wrong"


def _interpret(tree: ast.Module, func: ast.FunctionDef, roles: list[str], tokenizer: Any,
               table_size: int) -> _Tables:
    values = {"tokenizer": tokenizer, "size": table_size, "device": Device()}
    try:
        return _as_tables(Interpreter(tree).call_function(func, [values[r] for r in roles]))
    except RecursionError:
        raise Unsupported("expressions nested too deeply to interpret") from None


def _count_bytes(tables: _Tables, canonical: ByteLUTs, val_tokens: np.ndarray) -> tuple[int, int]:
    script = ByteLUTs(np.asarray(tables.base, dtype=np.int32), np.asarray(tables.lead, dtype=bool),
                      np.asarray(tables.boundary, dtype=bool))
    prev, target = val_tokens[:-1].astype(np.int64), val_tokens[1:].astype(np.int64)
    return int(token_bytes(prev, target, canonical).sum()), int(token_bytes(prev, target, script).sum())


def _imports_and_helpers(tree: ast.Module, func: ast.FunctionDef) -> tuple[list[str], str]:
    """The module's import lines and the function plus the module-level functions it calls."""
    functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    needed, todo = {func.name: func}, [func]
    while todo:
        current = todo.pop()
        for node in ast.walk(current):
            if isinstance(node, ast.Name) and node.id in functions and node.id not in needed:
                needed[node.id] = functions[node.id]
                todo.append(functions[node.id])
    used = {n.id for f in needed.values() for n in ast.walk(f) if isinstance(n, ast.Name)}
    imports = []  # only the imports the extracted functions use: the script's others never run
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            names = [a for a in stmt.names if (a.asname or a.name.split(".")[0]) in used]
            if names:
                stmt = ast.Import(names) if isinstance(stmt, ast.Import) else \
                    ast.ImportFrom(stmt.module, names, stmt.level)
                imports.append(ast.unparse(stmt))
    return imports, "\n\n".join(ast.unparse(f) for f in needed.values())


def _execute(tree: ast.Module, func: ast.FunctionDef, roles: list[str], tokenizer_path: Path | None,
             table_size: int | None, timeout: float) -> dict[str, list[list[int]]]:
    imports, source = _imports_and_helpers(tree, func)
    spec = {"imports": imports, "source": source, "function": func.name, "roles": roles,
            "probe": [list(p) for p in PROBE_VOCAB], "probe_table_size": PROBE_TABLE_SIZE,
            "tokenizer": str(tokenizer_path) if tokenizer_path else None, "table_size": table_size}
    try:
        proc = run_isolated(["-m", "pgolf.submission._lut_runner"], json.dumps(spec), timeout)
    except subprocess.TimeoutExpired:
        raise Unsupported(f"the table-building function ran past {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unsupported(f"the table-building function failed: {tail}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise Unsupported("the table-building function printed no tables") from None


def run_isolated(args: list[str], stdin: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run this Python with `args` in isolated mode, a clean environment and an empty temporary folder.

    The submission's code must see none of the user's secrets (tokens and API keys live in the
    environment) and no folder of pgolf's it could write to; the interpreter finds its packages itself.
    """
    with tempfile.TemporaryDirectory(prefix="pgolf-lut-") as home:
        env = {"PATH": os.defpath, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}
        return subprocess.run([sys.executable, "-I", *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, cwd=home, env=env)


def _byte_level(tree: ast.Module) -> str:
    """Evidence that the model reads raw bytes (no tokenizer imported, a vocabulary of <= 260), or ""."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in _TOKENIZER_MODULES for a in node.names):
            return ""
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _TOKENIZER_MODULES:
            return ""
    for node in ast.walk(tree):
        value = None
        if (isinstance(node, ast.Call) and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "VOCAB_SIZE" and isinstance(node.args[1], ast.Constant)):
            value = node.args[1].value
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and any(
                isinstance(t, ast.Name) and re.fullmatch(r"(?i)vocab_size", t.id) for t in node.targets)):
            value = node.value.value
        if isinstance(value, int) and 0 < value <= _BYTE_VOCAB_MAX:
            return f"line {node.lineno}: vocabulary of {value} with no tokenizer imported: each token is one byte"
    return ""


def audit_source(source: str, *, tokenizer: Path | None = None, val_tokens: np.ndarray | None = None,
                 execute: bool = False, table_size: int | None = None,
                 timeout: float = EXECUTE_TIMEOUT_S, script_name: str = "train_gpt.py",
                 read_sibling: ReadSibling | None = None) -> LutAudit:
    """Audit a script's byte tables (statically unless `execute`); see the module docstring.

    `read_sibling(name)` reads another file of the script's folder, for a stub that execs one.
    """
    if not source.strip():
        return LutAudit(status=FAILED, reason="the script is empty: nothing builds byte tables or scores a byte",
                        mode="execute" if execute else "static")
    unwrapped = unwrap(source, script_name=script_name, read_sibling=read_sibling)
    audit = LutAudit(status=UNKNOWN, wrapper_layers=unwrapped.layers, mode="execute" if execute else "static",
                     tokenizer=str(tokenizer) if tokenizer else None)
    if unwrapped.obfuscated:
        audit.status, audit.reason = OBFUSCATED, unwrapped.reason
        return audit
    if unwrapped.syntax_error:
        audit.reason = f"the script does not parse ({unwrapped.syntax_error})"
        return audit
    if not unwrapped.source.strip():
        audit.status, audit.reason = FAILED, "the decoded program is empty"
        return audit
    trees = [t for t in [parse_tree(unwrapped.source), *(parse_tree(c) for _, c in unwrapped.embedded)] if t]
    found = next(((t, f) for t in trees if (f := find_table_builder(t)) is not None), None)
    if found is None:
        byte_level = next((b for t in trees if (b := _byte_level(t))), "")
        if byte_level:
            audit.status, audit.reason = NOT_APPLICABLE, f"a byte-level model ({byte_level})"
        elif unwrapped.dynamic:
            audit.reason = ("no function asks the tokenizer about its pieces, and code run through exec/eval is "
                            f"not known statically: {unwrapped.dynamic[0]}")
        else:
            audit.reason = "no function asks the tokenizer about its pieces (is_byte, id_to_piece, ...)"
        return audit
    tree, func = found
    audit.function, audit.line = func.name, func.lineno
    roles = _roles(func)
    if roles is None:
        audit.reason = f"cannot tell which parameter of {func.name} is the tokenizer"
        return audit
    sp = load_tokenizer(tokenizer) if tokenizer else None
    try:
        if execute:
            out = _execute(tree, func, roles, tokenizer, table_size, timeout)
            probe = _tables_from_lists(out["probe"])
            real = _tables_from_lists(out["tokenizer"]) if sp is not None else None
        else:
            probe = _interpret(tree, func, roles, ProbeTokenizer(PROBE_VOCAB), PROBE_TABLE_SIZE)
            real = (_interpret(tree, func, roles, _RealTokenizer(sp), table_size or sp.vocab_size())
                    if sp is not None else None)
    except Unsupported as err:
        audit.reason = f"{func.name} (line {func.lineno}): {err}"
        return audit
    probe_tok = ProbeTokenizer(PROBE_VOCAB)
    deviations = {d.code: d for d in classify(probe, build_luts(probe_tok, PROBE_TABLE_SIZE), PROBE_VOCAB)}
    if real is not None:
        canonical = build_luts(sp, max(len(real.base), sp.vocab_size()))
        for dev in classify(real, canonical, _piece_kinds(sp)):
            deviations.setdefault(dev.code, dev)
        audit.mismatched_entries = _mismatches(real, canonical)
        if val_tokens is not None and len(real.base) >= sp.vocab_size():
            audit.canonical_bytes, audit.script_bytes = _count_bytes(real, canonical, val_tokens)
            if audit.canonical_bytes:
                audit.inflation = audit.script_bytes / audit.canonical_bytes - 1.0
    audit.deviations = list(deviations.values())
    audit.status = BUGGY if audit.deviations else CORRECT
    return audit


def _mismatches(tables: _Tables, canonical: ByteLUTs) -> int:
    size = min(len(tables.base), len(canonical.base_bytes))
    return sum(
        (tables.base[i], tables.lead[i], tables.boundary[i])
        != (int(canonical.base_bytes[i]), bool(canonical.has_leading_space[i]), bool(canonical.is_boundary[i]))
        for i in range(size)
    ) + abs(len(tables.base) - len(canonical.base_bytes))


def load_val_tokens(pattern: str, vocab_size: int | None = None, limit: int | None = None) -> np.ndarray:
    """Validation tokens from the shards matching a glob, concatenated in name order."""
    from glob import glob

    from pgolf.data.shards import load_shard

    paths = sorted(glob(pattern))
    if not paths:
        raise DataError(f"{pattern}: no validation shard matches")
    tokens = np.concatenate([np.asarray(load_shard(Path(p), vocab_size)) for p in paths])
    return tokens[:limit] if limit else tokens


def audit_script(path: Path, **kwargs: Any) -> LutAudit:
    """Audit the script at `path`; see `audit_source`."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read script ({err})") from None
    return audit_source(source, script_name=path.name, read_sibling=folder_reader(path.parent), **kwargs)


def folder_reader(folder: Path) -> ReadSibling:
    """Reads a file of `folder` by its relative name (never outside it), as text; None when absent."""
    root = folder.resolve()

    def read(name: str) -> str | None:
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            return None
        try:
            return target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return read


def inflation_percent(audit: LutAudit) -> str:
    """The byte-count inflation for people, e.g. '+17.02%', or '-' when unknown."""
    if audit.inflation is None or not math.isfinite(audit.inflation):
        return "-"
    return f"{audit.inflation * 100:+.2f}%"
