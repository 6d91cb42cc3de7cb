"""Self-extracting wrappers (lzma / zlib / bz2 / gzip / base64 / base85 + exec), decoded without executing.

A submission may ship its script as `exec(lzma.decompress(base64.b85decode("...")))` to save code bytes.
The payload is decoded by evaluating, over the AST, only constant strings and a whitelist of pure
decoding functions; nothing of the script runs. Nested wrappers are peeled until plain code appears.
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


def _zlib_bounded(data: bytes, *args: object) -> bytes:
    wbits = args[0] if args and isinstance(args[0], int) else zlib.MAX_WBITS
    dec = zlib.decompressobj(wbits)
    out = dec.decompress(data, MAX_DECODED_BYTES + 1)
    if len(out) > MAX_DECODED_BYTES:
        raise ValueError(f"payload decodes to more than {MAX_DECODED_BYTES} bytes")
    return out


def _gzip_bounded(data: bytes) -> bytes:
    return _zlib_bounded(data, 16 + zlib.MAX_WBITS)


# Pure decoders a wrapper may use, by (module, function).
_DECODERS: dict[tuple[str, str], Callable[..., bytes]] = {
    ("lzma", "decompress"): lambda data, *a: _bounded(lzma.LZMADecompressor)(data),
    ("bz2", "decompress"): lambda data, *a: _bounded(bz2.BZ2Decompressor)(data),
    ("zlib", "decompress"): _zlib_bounded,
    ("gzip", "decompress"): lambda data, *a: _gzip_bounded(data),
    ("base64", "b64decode"): lambda data, *a: base64.b64decode(data),
    ("base64", "b85decode"): lambda data, *a: base64.b85decode(data),
    ("base64", "a85decode"): lambda data, *a: base64.a85decode(data),
    ("base64", "b32decode"): lambda data, *a: base64.b32decode(data),
    ("base64", "b16decode"): lambda data, *a: base64.b16decode(data),
    ("base64", "urlsafe_b64decode"): lambda data, *a: base64.urlsafe_b64decode(data),
    ("binascii", "a2b_base64"): lambda data, *a: binascii.a2b_base64(data),
    ("binascii", "unhexlify"): lambda data, *a: binascii.unhexlify(data),
}
_EXEC_NAMES = frozenset({"exec", "eval"})


class _Undecodable(Exception):
    """An expression outside the whitelist of constant decoding steps."""


@dataclass
class Unwrapped:
    """A script's source after peeling wrappers: the code to check and how it was reached."""

    source: str
    layers: list[str] = field(default_factory=list)  # e.g. ["line 3: exec(lzma.decompress(base64.b85decode(...)))"]
    obfuscated: bool = False  # an exec of something that could not be decoded statically
    reason: str = ""
    syntax_error: str = ""

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

    def __init__(self, tree: ast.Module) -> None:
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
        self.depth += 1
        if self.depth > 200:
            raise _Undecodable("expression nested too deeply")
        try:
            return self._eval(node)
        finally:
            self.depth -= 1

    def _eval(self, node: ast.expr) -> str | bytes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.constants:
            if node.id not in self.values:
                self.values[node.id] = self.eval(self.constants[node.id])
            return self.values[node.id]
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
        extra = [a.value for a in node.args[1:] if isinstance(a, ast.Constant)]
        try:
            return _DECODERS[callee](data.encode() if isinstance(data, str) else data, *extra)
        except (ValueError, TypeError, lzma.LZMAError, zlib.error, OSError, binascii.Error) as err:
            raise _Undecodable(f"{callee[0]}.{callee[1]} failed at line {node.lineno}: {err}") from None


def _exec_calls(tree: ast.Module) -> list[ast.Call]:
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EXEC_NAMES
        and node.args
    ]


def _reads_files_or_network(node: ast.expr) -> bool:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    return bool(names & {"open"} or attrs & {"read", "read_text", "urlopen", "get", "content", "text"})


def _describe(call: ast.Call) -> str:
    text = ast.unparse(call)
    return f"line {call.lineno}: {text if len(text) <= 90 else text[:60] + '…' + text[-20:]}"


def parse_problem(source: str, feature_version: tuple[int, int] | None = None) -> str:
    """Why `source` does not parse as Python ("line N: message"), or "" when it does."""
    try:
        ast.parse(source, feature_version=feature_version)
    except SyntaxError as err:
        return f"line {err.lineno}: {err.msg}" if err.lineno else err.msg
    except (ValueError, RecursionError, MemoryError) as err:  # NUL bytes, nesting too deep for the parser
        return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return ""


def unwrap(source: str) -> Unwrapped:
    """Peel self-extracting wrappers off `source`; the result holds the innermost code, never executed."""
    layers: list[str] = []
    for _ in range(MAX_LAYERS):
        problem = parse_problem(source)
        if problem:
            return Unwrapped(source, layers, syntax_error=problem)
        tree = ast.parse(source)
        calls = _exec_calls(tree)
        # Only a script that is essentially one exec of a payload is a wrapper; a long script with an
        # exec somewhere inside it is ordinary code (the code checks look at that exec themselves).
        if len(calls) != 1 or len(tree.body) > 12:
            return Unwrapped(source, layers)
        call = calls[0]
        if _reads_files_or_network(call.args[0]):
            return Unwrapped(source, layers)  # exec of a file or a download: the code checks report it
        if isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            inner = call.args[0].value
        else:
            try:
                value = _Evaluator(tree).eval(call.args[0])
            except _Undecodable as err:
                return Unwrapped(source, layers, obfuscated=True,
                                 reason=f"{_describe(call)} could not be decoded statically: {err}")
            try:
                inner = value.decode() if isinstance(value, bytes) else value
            except UnicodeDecodeError:
                return Unwrapped(source, layers, obfuscated=True,
                                 reason=f"{_describe(call)} decodes to bytes that are not UTF-8 text")
        layers.append(_describe(call))
        source = inner
    return Unwrapped(source, layers, obfuscated=True, reason=f"more than {MAX_LAYERS} nested wrappers")
