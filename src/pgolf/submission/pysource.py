"""A submission's Python source parsed under any grammar up to 3.13, whatever interpreter runs pgolf.

`ast.parse` knows only its own interpreter's grammar, and its `feature_version` does not emulate the
f-string rules: the records ran on Python 3.12, whose f-strings (PEP 701: the same quotes nested,
backslashes and comments inside `{}`) an older interpreter refuses, and which a 3.12 interpreter accepts
even when asked for the 3.11 grammar. So:

- `parse_source` tries `ast.parse`; when that fails, libcst (which parses Python 3.0-3.15 on any
  interpreter) reads the source and the newer constructs are rewritten into older equivalent syntax with
  every line kept where it was, so the AST checks read the same program with the same line numbers;
- `grammar_problems` says, for 3.10, 3.11, 3.12 and 3.13, why the source does not parse under that
  grammar, finding PEP 701 f-strings itself.

Trees nested deeper than `MAX_DEPTH` are refused: the checks walk trees recursively, and a 2,500-deep
attribute chain must give a clear "nested too deeply", never a RecursionError.
"""

from __future__ import annotations

import ast
import functools
import io
import sys
import tokenize
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 200  # AST levels; the deepest of the challenge's real scripts has 20
_MAX_REWRITE_CHARS = 4_000_000  # libcst is far slower than ast; the largest record script is 160 kB
GRAMMARS = ((3, 10), (3, 11), (3, 12))  # what the challenge ran; parse_source reads up to 3.13
_PEP701 = "an f-string that needs Python 3.12 (PEP 701: {what} inside its braces)"


@dataclass(frozen=True)
class Parsed:
    """A parse: the tree (None when it failed), why not, and whether libcst had to rewrite newer syntax."""

    tree: ast.Module | None
    problem: str = ""
    rewritten: bool = False


def _describe(err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return f"line {err.lineno}: {err.msg}" if err.lineno else err.msg
    if isinstance(err, RecursionError | MemoryError):
        return "the code is nested too deeply to parse"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def tree_depth(tree: ast.AST, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of `tree`, counted without recursion; stops once past `limit`."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def walk(node: ast.AST) -> list[ast.AST]:
    """`ast.walk(node)` as a list, kept on the node: every check walks the same module tree again."""
    nodes = node.__dict__.get("_pgolf_nodes")
    if nodes is None:
        nodes = list(ast.walk(node))
        node.__dict__["_pgolf_nodes"] = nodes
    return nodes


def _native(source: str, feature_version: tuple[int, int] | None = None) -> tuple[ast.Module | None, str]:
    try:
        return ast.parse(source, feature_version=feature_version), ""
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as err:
        return None, _describe(err)


@functools.lru_cache(maxsize=16)
def parse_source(source: str) -> Parsed:
    """The module's AST under the newest grammar (see the module docstring); cached, never mutate it."""
    tree, problem = _native(source)
    rewritten = False
    if tree is None and problem.startswith("line "):  # a syntax error, not nesting the parser gave up on
        older = _rewrite_newer_syntax(source)
        if older is None:
            return Parsed(None, problem)
        tree, _ = _native(older)
        if tree is None:
            return Parsed(None, problem)
        rewritten = True
    elif tree is None:
        return Parsed(None, problem)
    if tree_depth(tree) > MAX_DEPTH:
        return Parsed(None, f"the code is nested more than {MAX_DEPTH} levels deep (a static reader refuses it)")
    return Parsed(tree, "", rewritten)


def parse_problem(source: str) -> str:
    """Why `source` parses under no grammar up to 3.13 ("line N: message"), or "" when it parses."""
    return parse_source(source).problem


def parse_tree(source: str) -> ast.Module | None:
    """The module's AST, or None when it does not parse (or is nested too deeply)."""
    return parse_source(source).tree


def encoding_problem(data: bytes) -> str:
    """Why Python would refuse to read these bytes as source (not UTF-8, no coding declaration), or ""."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except (SyntaxError, LookupError) as err:
        return f"not a readable source file: {err}"
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return f"line {line}: byte 0x{data[err.start]:02x} is not {err.encoding} (Python refuses the file)"
    return ""


# -- which grammar ------------------------------------------------------------------------------------

def grammar_problems(source: str) -> dict[tuple[int, int], str]:
    """For each grammar in GRAMMARS, why `source` does not parse under it ("" when it does).

    A grammar newer than this interpreter is judged by libcst (the source parses, after rewriting, under
    the newest grammar); an older one by `ast.parse(feature_version=...)` plus the PEP 701 f-string rules.
    """
    here = sys.version_info[:2]
    native_tree, native_problem = _native(source)
    fstrings: list[str] | None = None  # PEP 701 f-strings, found once when needed

    def pep701() -> list[str]:
        nonlocal fstrings
        if fstrings is None:
            if here >= (3, 12):
                fstrings = _pep701_fstrings(source)
            elif native_tree is not None:
                fstrings = []  # this interpreter's tokenizer applied the old f-string rules already
            else:  # only the statements ast refused can hold one: look there, not in the whole module
                fstrings = _pep701_in_refused_statements(source, native_problem)
        return fstrings

    out: dict[tuple[int, int], str] = {}
    for version in GRAMMARS:
        if version <= here:
            _, problem = _native(source, version)
        elif native_tree is not None:
            problem = ""  # newer grammars keep what this one accepts
        else:
            problem = "" if native_problem.startswith("line ") and _rewrite_newer_syntax(source) is not None \
                else native_problem
        if version < (3, 12) and (problem or here >= (3, 12)) and pep701():
            problem = pep701()[0]  # say what the construct is, not the old tokenizer's complaint
        out[version] = problem
    return out
    return out


def _pep701_in_refused_statements(source: str, problem: str) -> list[str]:
    """PEP 701 f-strings of the first top-level statement this (older) interpreter refuses."""
    line = int(problem.split(":", 1)[0].removeprefix("line ")) if problem.startswith("line ") else 0
    lines = source.splitlines(keepends=True)
    if not 0 < line <= len(lines):
        return []
    start, end = _statement_span(lines, line - 1)
    found = _pep701_fstrings("".join(lines[start:end]))
    return [f"line {int(f.split(':', 1)[0].removeprefix('line ')) + start}:{f.split(':', 1)[1]}" for f in found]


def _pep701_fstrings(source: str) -> list[str]:
    """'line N: …' for each f-string that only Python 3.12's rules accept (libcst reads the source)."""
    try:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider
    except ImportError:  # pragma: no cover - libcst is a dependency
        return []
    if _too_deep_for_libcst(source):
        return []
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return []
    found: list[str] = []

    class Finder(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def visit_FormattedString(self, node: Any) -> None:
            what = _pep701_reason(wrapper.module, node)
            if what:
                line = self.get_metadata(PositionProvider, node).start.line
                found.append(f"line {line}: {_PEP701.format(what=what)}")

    wrapper.visit(Finder())
    return found


def _pep701_reason(module: Any, node: Any) -> str:
    import libcst as cst

    quote = node.end
    single = len(quote) == 1
    for part in node.parts:
        if not isinstance(part, cst.FormattedStringExpression):
            continue
        code = module.code_for_node(part)[1:-1]  # inside the braces
        if "\\" in code:
            return "a backslash"
        if "#" in _code_outside_strings(code):
            return "a comment"
        if quote in code:
            return f"the enclosing quote {quote}"
        if single and "\n" in code:
            return "a line break"
    return ""


def _too_deep_for_libcst(source: str) -> bool:
    """Brackets nested past MAX_DEPTH: libcst's native parser recurses on them and can overflow the C
    stack (a segfault, not an exception), so such code never reaches it."""
    depth = deepest = 0
    for ch in _code_outside_strings(source):
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest > MAX_DEPTH


def _code_outside_strings(code: str) -> str:
    """`code` with its string literals blanked (a `#` inside a string is no comment)."""
    out, quote, i = [], "", 0
    while i < len(code):
        ch = code[i]
        if quote:
            if code.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif ch in "'\"":
            quote = code[i:i + 3] if code[i:i + 3] in ("'''", '"""') else ch
            i += len(quote)
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


# -- rewriting newer syntax into older ----------------------------------------------------------------

def _rewrite_newer_syntax(source: str) -> str | None:
    """`source` with 3.12+ constructs rewritten for an older parser (lines kept), or None if libcst refuses."""
    return _rewrite_cached(source)


@functools.lru_cache(maxsize=8)
def _rewrite_cached(source: str) -> str | None:
    if len(source) > _MAX_REWRITE_CHARS:
        return None
    # libcst reads a 150 kB script in seconds: rewrite only the top-level statements ast refuses, one at a
    # time, and fall back to the whole module when a statement cannot be cut out cleanly.
    lines = source.splitlines(keepends=True)
    for _ in range(_MAX_STATEMENT_REWRITES):
        try:
            ast.parse("".join(lines))
            return "".join(lines)
        except SyntaxError as err:
            line = err.lineno
        except (ValueError, RecursionError, MemoryError, OverflowError):
            return None
        if not line or line > len(lines):
            break
        start, end = _statement_span(lines, line - 1)
        chunk = "".join(lines[start:end])
        new = _rewrite_module(chunk)
        if new is None or new == chunk or len(new.splitlines()) != end - start:
            break
        lines[start:end] = new.splitlines(keepends=True)
        if not lines[end - 1].endswith("\n") and end < len(lines):
            lines[end - 1] += "\n"
    return _rewrite_module(source)


_MAX_STATEMENT_REWRITES = 64
_CONTINUATION = ("else", "elif", "except", "finally", ")", "]", "}")


def _statement_span(lines: list[str], index: int) -> tuple[int, int]:
    """The lines [start, end) of the top-level statement holding line `index` (column-0 boundaries)."""
    def starts_statement(text: str) -> bool:
        return bool(text[:1].strip()) and text[:1] != "#" and not text.startswith(_CONTINUATION)

    start = index
    while start > 0 and not starts_statement(lines[start]):
        start -= 1
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1  # the decorators belong to the def
    end = index + 1
    while end < len(lines) and not (starts_statement(lines[end]) and not lines[end].startswith("@")
                                    and not lines[end - 1].startswith("@")):
        end += 1
    while end < len(lines) and lines[end].startswith("@"):
        break
    return start, end


def _rewrite_module(source: str) -> str | None:
    try:
        import libcst as cst
    except ImportError:  # pragma: no cover - libcst is a dependency
        return None
    if _too_deep_for_libcst(source):
        return None
    try:
        module = cst.parse_module(source)
        return module.visit(_Downgrade(module)).code
    except (cst.ParserSyntaxError, RecursionError, ValueError, MemoryError):
        return None


def _downgrade_class() -> type:
    import libcst as cst

    class Downgrade(cst.CSTTransformer):
        """f-strings become concatenations of format() calls; type parameters and aliases are dropped."""

        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def _code(self, node: Any) -> str:
            return self.module.code_for_node(node)

        def _parts(self, parts: Any, prefix: str, quote: str) -> str:
            pieces = []
            raw = "r" if "r" in prefix.lower() else ""
            for part in parts:
                if isinstance(part, cst.FormattedStringText):
                    text = part.value.replace("{{", "{").replace("}}", "}")
                    pieces.append(f"{raw}{quote}{text}{quote}")
                    continue
                expr = f"({self._code(part.expression)}\n)" if "\n" in self._code(part.expression) \
                    else f"({self._code(part.expression)})"
                if part.conversion:
                    expr = {"r": "repr", "s": "str", "a": "ascii"}.get(part.conversion, "str") + f"({expr})"
                spec = self._parts(part.format_spec, prefix, quote) if part.format_spec else ""
                pieces.append(f"format({expr}, {spec})" if spec else f"format({expr})")
            return "(" + " + ".join(pieces or [f"{quote}{quote}"]) + ")"

        def leave_FormattedString(self, original: Any, updated: Any) -> Any:
            quote = updated.end
            prefix = updated.start[: len(updated.start) - len(quote)].lower().replace("f", "")
            return cst.parse_expression(self._parts(updated.parts, prefix, quote))

        def leave_ConcatenatedString(self, original: Any, updated: Any) -> Any:
            if isinstance(updated.left, cst.BaseString) and isinstance(updated.right, cst.BaseString):
                return updated
            between = self._code(updated.whitespace_between) if updated.whitespace_between else " "
            return cst.parse_expression(f"({self._code(updated.left)} +{between}{self._code(updated.right)})")

        def leave_FunctionDef(self, original: Any, updated: Any) -> Any:
            return updated.with_changes(type_parameters=None) if getattr(updated, "type_parameters", None) \
                else updated

        def leave_ClassDef(self, original: Any, updated: Any) -> Any:
            return updated.with_changes(type_parameters=None) if getattr(updated, "type_parameters", None) \
                else updated

        def leave_TypeAlias(self, original: Any, updated: Any) -> Any:
            return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

    return Downgrade


def _Downgrade(module: Any) -> Any:  # noqa: N802 - builds the transformer class once libcst is imported
    return _downgrade_cls()(module)


@functools.cache
def _downgrade_cls() -> type:
    return _downgrade_class()
