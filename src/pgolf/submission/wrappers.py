"""Self-extracting wrappers (lzma / zlib / bz2 / gzip / base64 / base85 + exec), decoded without executing.

A submission may ship its script as `exec(lzma.decompress(base64.b85decode("...")))` to save code bytes,
or as a stub that execs a sibling file of its folder. The payload is decoded by evaluating, over the AST,
only constant strings and a whitelist of pure decoding functions (keyword arguments included, e.g. lzma's
`format=FORMAT_RAW, filters=[...]`); nothing of the script runs.

A script is peeled (replaced by its payload) only when the payload IS the program: its statements are
decoder imports, constant assignments and one top-level exec, so nothing else runs. Any other exec/eval
leaves the outer code to be checked as it is; a statically known payload is decoded and checked as well
(`Unwrapped.embedded`), and one that is not known statically is itself a finding (`Unwrapped.dynamic`).
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pgolf.submission.pysource import parse_tree

# Decoded payloads larger than this are refused (a decompression bomb must not exhaust memory).
MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_LAYERS = 8


def _bounded(decompressor_factory: Callable[[], object]) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        dec = decompressor_factory()
        out = dec.decompress(data, max_length=MAX_DECODED_BYTES + 1)  # type: ignore[attr-defined]
        if len(out) > MAX_DECODED_BYTES:
            raise ValueError(f"payload decodes to more than {MAX_DECODED_BYTES} bytes")
        return out

    return run


def _lzma_bounded(data: bytes, format: int = lzma.FORMAT_AUTO, memlimit: int | None = None,  # noqa: A002
                  filters: object = None) -> bytes:
    # a raw stream's filter chain names its dictionary size, which the decoder allocates up front
    for spec in filters if isinstance(filters, list) else []:
        if isinstance(spec, dict) and int(spec.get("dict_size", 0) or 0) > MAX_DECODED_BYTES:
            raise ValueError(f"an lzma dictionary of {spec['dict_size']} bytes (more than {MAX_DECODED_BYTES})")
    return _bounded(lambda: lzma.LZMADecompressor(format, None, filters))(data)  # type: ignore[arg-type]


def _zlib_bounded(data: bytes, *args: object, **kwargs: object) -> bytes:
    wbits = args[0] if args and isinstance(args[0], int) else kwargs.get("wbits", zlib.MAX_WBITS)
    dec = zlib.decompressobj(wbits)
    out = dec.decompress(data, MAX_DECODED_BYTES + 1)
    if len(out) > MAX_DECODED_BYTES:
        raise ValueError(f"payload decodes to more than {MAX_DECODED_BYTES} bytes")
    return out


def _gzip_bounded(data: bytes) -> bytes:
    return _zlib_bounded(data, 16 + zlib.MAX_WBITS)


# Pure decoders a wrapper may use, by (module, function).
_DECODERS: dict[tuple[str, str], Callable[..., bytes]] = {
    ("lzma", "decompress"): lambda data, *a, **k: _lzma_bounded(data, **k),
    ("bz2", "decompress"): lambda data, *a, **k: _bounded(bz2.BZ2Decompressor)(data),
    ("zlib", "decompress"): _zlib_bounded,
    ("gzip", "decompress"): lambda data, *a, **k: _gzip_bounded(data),
    ("base64", "b64decode"): lambda data, *a, **k: base64.b64decode(data),
    ("base64", "b85decode"): lambda data, *a, **k: base64.b85decode(data),
    ("base64", "a85decode"): lambda data, *a, **k: base64.a85decode(data),
    ("base64", "b32decode"): lambda data, *a, **k: base64.b32decode(data),
    ("base64", "b16decode"): lambda data, *a, **k: base64.b16decode(data),
    ("base64", "urlsafe_b64decode"): lambda data, *a, **k: base64.urlsafe_b64decode(data),
    ("binascii", "a2b_base64"): lambda data, *a, **k: binascii.a2b_base64(data),
    ("binascii", "unhexlify"): lambda data, *a, **k: binascii.unhexlify(data),
}
_EXEC_NAMES = frozenset({"exec", "eval"})
# Modules a pure wrapper may import: importing them runs nothing of the submission's.
_DECODER_MODULES = frozenset({"lzma", "bz2", "zlib", "gzip", "base64", "binascii", "codecs", "__future__"})
# Constants of lzma a wrapper passes as keyword arguments (format=L.FORMAT_RAW, filters=[{"id": ...}]).
_LZMA_CONSTANTS = {name: getattr(lzma, name) for name in dir(lzma) if name.isupper()}
ReadSibling = Callable[[str], "str | None"]


class _Undecodable(Exception):
    """An expression outside the whitelist of constant decoding steps."""


@dataclass
class Unwrapped:
    """A script's source after peeling wrappers: the code to check and how it was reached."""

    source: str
    layers: list[str] = field(default_factory=list)  # e.g. ["line 3: exec(lzma.decompress(base64.b85decode(...)))"]
    obfuscated: bool = False  # a pure wrapper whose payload could not be decoded statically
    reason: str = ""
    syntax_error: str = ""
    # exec/eval in code that is not a pure wrapper: payloads decoded statically ("line N", code), checked
    # beside the source, and those not known statically ("line N: exec(x) ...": a finding of its own)
    embedded: list[tuple[str, str]] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    siblings: list[str] = field(default_factory=list)  # files of the folder a stub execs, in order
    source_name: str = ""  # the file `source` comes from when a stub was peeled (else the script itself)

    @property
    def wrapped(self) -> bool:
        """True when at least one wrapper was decoded."""
        return bool(self.layers)


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to modules by imports: `import lzma as L` gives {"L": "lzma"}."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names assigned exactly once (a payload is often held in a variable)."""
    seen: dict[str, list[ast.expr]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            seen.setdefault(stmt.targets[0].id, []).append(stmt.value)
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


class _Evaluator:
    """Evaluates constant decoding expressions over the AST; anything else is _Undecodable."""

    def __init__(self, tree: ast.Module, script_name: str = "train_gpt.py",
                 read_sibling: ReadSibling | None = None) -> None:
        self.script_name = script_name
        self.read_sibling = read_sibling
        self.siblings: list[str] = []
        self.aliases = _module_aliases(tree)
        self.constants = _constants(tree)
        self.values: dict[str, str | bytes] = {}  # each constant decoded once: `B = A + A` chains stay linear
        self.depth = 0

    def _callee(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Attribute):
            base = func.value
            if isinstance(base, ast.Name):
                return (self.aliases.get(base.id, base.id), func.attr)
            if (isinstance(base, ast.Call) and isinstance(base.func, ast.Name)
                    and base.func.id == "__import__" and base.args
                    and isinstance(base.args[0], ast.Constant)):
                return (str(base.args[0].value), func.attr)
        if isinstance(func, ast.Name) and "." in self.aliases.get(func.id, ""):
            module, _, name = self.aliases[func.id].rpartition(".")
            return (module, name)
        return None

    def eval(self, node: ast.expr) -> str | bytes:
        value = self.value(node)
        if not isinstance(value, str | bytes):
            raise _Undecodable(f"{type(value).__name__} where code was expected at line {node.lineno}")
        return value

    def value(self, node: ast.expr) -> object:
        """Any constant a decoding expression is built from: str, bytes, int, lists and dicts of them."""
        self.depth += 1
        if self.depth > 200:
            raise _Undecodable("expression nested too deeply")
        try:
            return self._eval(node)
        finally:
            self.depth -= 1

    def _eval(self, node: ast.expr) -> object:
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes | int):
            return node.value
        if isinstance(node, ast.Name) and node.id == "__file__":
            return self.script_name
        if isinstance(node, ast.Name) and node.id in self.constants:
            if node.id not in self.values:
                self.values[node.id] = self.value(self.constants[node.id])  # type: ignore[assignment]
            return self.values[node.id]
        if isinstance(node, ast.List | ast.Tuple) and len(node.elts) <= 64:
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict) and len(node.keys) <= 64 and all(k is not None for k in node.keys):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and self.aliases.get(node.value.id, node.value.id) == "lzma" and node.attr in _LZMA_CONSTANTS):
            return _LZMA_CONSTANTS[node.attr]
        if isinstance(node, ast.Name) and self.aliases.get(node.id, "").startswith("lzma.") \
                and self.aliases[node.id][5:] in _LZMA_CONSTANTS:
            return _LZMA_CONSTANTS[self.aliases[node.id][5:]]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is not type(right):
                raise _Undecodable("concatenation of str and bytes")
            if len(left) + len(right) > MAX_DECODED_BYTES:
                raise _Undecodable(f"a concatenation of more than {MAX_DECODED_BYTES} bytes")
            return left + right  # type: ignore[operator]
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Undecodable(f"{type(node).__name__} at line {getattr(node, 'lineno', '?')}")

    def _call(self, node: ast.Call) -> str | bytes:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "compile" and node.args:
            return self.eval(node.args[0])
        if _is_file_read(node):
            return self._read_sibling(node)
        if isinstance(func, ast.Attribute) and func.attr == "replace" and len(node.args) == 2:
            text, old, new = self.eval(func.value), self.eval(node.args[0]), self.eval(node.args[1])
            if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
                raise _Undecodable(f"replace() of bytes at line {node.lineno}")
            return text.replace(old, new)
        if isinstance(func, ast.Name) and func.id == "bytes" and len(node.args) >= 1:
            value = self.eval(node.args[0])
            return value.encode() if isinstance(value, str) else value
        if isinstance(func, ast.Attribute) and func.attr in {"decode", "encode"}:
            value = self.eval(func.value)
            try:
                if func.attr == "decode":
                    return value.decode() if isinstance(value, bytes) else value
                return value.encode() if isinstance(value, str) else value
            except UnicodeError as err:
                raise _Undecodable(f"payload is not UTF-8 ({err})") from None
        if (isinstance(func, ast.Attribute) and func.attr == "fromhex"
                and isinstance(func.value, ast.Name) and func.value.id == "bytes" and node.args):
            value = self.eval(node.args[0])
            try:
                return bytes.fromhex(value if isinstance(value, str) else value.decode())
            except ValueError as err:
                raise _Undecodable(f"bad hex payload ({err})") from None
        callee = self._callee(func)
        if callee is None or callee not in _DECODERS or not node.args:
            raise _Undecodable(f"call to {ast.unparse(func)} at line {node.lineno} is not a known decoder")
        data = self.eval(node.args[0])
        extra = [self.value(a) for a in node.args[1:]]
        keywords = {k.arg: self.value(k.value) for k in node.keywords if k.arg}
        try:
            return _DECODERS[callee](data.encode() if isinstance(data, str) else data, *extra, **keywords)
        except (ValueError, TypeError, lzma.LZMAError, zlib.error, OSError, binascii.Error) as err:
            raise _Undecodable(f"{callee[0]}.{callee[1]} failed at line {node.lineno}: {err}") from None

    def _read_sibling(self, node: ast.Call) -> str:
        """`open(P).read()` / `Path(P).read_text()` of a file beside the script: its text, read statically."""
        path_node = _file_read_path(node)
        raw = self.eval(path_node)
        name = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        clean = PurePosixPath(name.replace("\\", "/").removeprefix("./"))
        if clean.is_absolute() or ".." in clean.parts or not clean.parts:
            raise _Undecodable(f"line {node.lineno}: reads {name!r}, not a file of the submission's folder")
        text = self.read_sibling(str(clean)) if self.read_sibling else None
        if text is None:
            raise _Undecodable(f"line {node.lineno}: reads {str(clean)!r}, which the submission does not hold")
        self.siblings.append(str(clean))
        return text


def _is_file_read(node: ast.Call) -> bool:
    """`open(P).read()`, `open(P, "r").read()`, `Path(P).read_text()` (the stub that execs a sibling)."""
    func = node.func
    if not isinstance(func, ast.Attribute) or node.args:
        return False
    inner = func.value
    if not isinstance(inner, ast.Call) or not inner.args:
        return False
    name = inner.func.id if isinstance(inner.func, ast.Name) else \
        inner.func.attr if isinstance(inner.func, ast.Attribute) else ""
    return (func.attr == "read" and name == "open") or (func.attr == "read_text" and name == "Path")


def _file_read_path(node: ast.Call) -> ast.expr:
    return node.func.value.args[0]  # type: ignore[attr-defined]


def _exec_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EXEC_NAMES
        and node.args
    ]


def _describe(call: ast.Call) -> str:
    text = ast.unparse(call)  # trees are depth-bounded by parse_tree, so this cannot recurse too far
    return f"line {call.lineno}: {text if len(text) <= 90 else text[:60] + '…' + text[-20:]}"


def _is_pure_wrapper(tree: ast.Module, call: ast.Call) -> bool:
    """Nothing but decoder imports, constant assignments and this one top-level exec runs."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and stmt.value is call:
            continue
        if isinstance(stmt, ast.Import) and all(a.name.split(".")[0] in _DECODER_MODULES for a in stmt.names):
            continue
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[0] in _DECODER_MODULES:
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        if (isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets)
                and not any(isinstance(n, ast.Call | ast.Lambda | ast.NamedExpr) for n in ast.walk(stmt.value))):
            continue  # `P = "..."`, `__wrapper_size__ = 21392`: evaluating it runs nothing
        return False
    return True


def unwrap(source: str, *, script_name: str = "train_gpt.py", read_sibling: ReadSibling | None = None,
           _depth: int = 0) -> Unwrapped:
    """Peel self-extracting wrappers off `source`; the result holds the code to check, never executed.

    `read_sibling(name)` gives the text of another file of the submission's folder (None when absent), so a
    stub that execs `train_gpt_decode.py` is read statically; without it such a stub is not peeled.
    """
    layers: list[str] = []
    siblings: list[str] = []
    for _ in range(MAX_LAYERS):
        tree = parse_tree(source)
        if tree is None:
            from pgolf.submission.pysource import parse_problem

            return Unwrapped(source, layers, syntax_error=parse_problem(source), siblings=siblings)
        calls = _exec_calls(tree)
        pure = len(calls) == 1 and _is_pure_wrapper(tree, calls[0])
        if not pure:
            embedded, dynamic = _inner_payloads(tree, calls, script_name, read_sibling, _depth)
            return Unwrapped(source, layers, embedded=embedded, dynamic=dynamic, siblings=siblings,
                             source_name=siblings[-1] if siblings else "")
        call = calls[0]
        evaluator = _Evaluator(tree, script_name, read_sibling)
        try:
            value = evaluator.eval(call.args[0])
        except _Undecodable as err:
            return Unwrapped(source, layers, obfuscated=True, siblings=siblings,
                             reason=f"{_describe(call)} could not be decoded statically: {err}")
        try:
            inner = value.decode() if isinstance(value, bytes) else value
        except UnicodeDecodeError:
            return Unwrapped(source, layers, obfuscated=True, siblings=siblings,
                             reason=f"{_describe(call)} decodes to bytes that are not UTF-8 text")
        siblings += evaluator.siblings
        if evaluator.siblings:
            script_name = evaluator.siblings[-1]
        layers.append(_describe(call) + (f" (reads {', '.join(evaluator.siblings)})" if evaluator.siblings else ""))
        source = inner
    return Unwrapped(source, layers, obfuscated=True, siblings=siblings,
                     reason=f"more than {MAX_LAYERS} nested wrappers")


def _inner_payloads(tree: ast.Module, calls: list[ast.Call], script_name: str, read_sibling: ReadSibling | None,
                    depth: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Each exec/eval of ordinary code: its payload when known statically, else a finding."""
    embedded: list[tuple[str, str]] = []
    dynamic: list[str] = []
    for call in calls:
        evaluator = _Evaluator(tree, script_name, read_sibling)
        try:
            value = evaluator.eval(call.args[0])
            text = value.decode() if isinstance(value, bytes) else value
        except (_Undecodable, UnicodeDecodeError) as err:
            dynamic.append(f"{_describe(call)} runs code that is not known statically ({err})")
            continue
        if depth >= MAX_LAYERS:
            dynamic.append(f"{_describe(call)}: exec nested more than {MAX_LAYERS} deep")
            continue
        inner = unwrap(text, script_name=script_name, read_sibling=read_sibling, _depth=depth + 1)
        where = f"line {call.lineno}" + (f" ({', '.join(evaluator.siblings)})" if evaluator.siblings else "")
        if inner.obfuscated or inner.syntax_error:
            dynamic.append(f"{_describe(call)} runs code that cannot be read ({inner.reason or inner.syntax_error})")
            continue
        embedded.append((where, inner.source))
        embedded += [(f"{where} > {w}", code) for w, code in inner.embedded]
        dynamic += [f"{where} > {d}" for d in inner.dynamic]
    return embedded, dynamic
