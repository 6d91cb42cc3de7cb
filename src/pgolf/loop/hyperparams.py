"""The training script's hyperparameter block: read its defaults and rewrite them in place.

The contract: inside `class Hyperparameters:` each setting is one line of the form
`    name = type(os.environ.get("ENV_NAME", default))` (wrappers may nest, e.g. `bool(int(...))`).
Rewriting a default literal is a real, reviewable diff, unlike an environment override.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

_LINE = re.compile(
    r"^(?P<head>\s+(?P<name>\w+)\s*(?::\s*[\w.\[\]| ]+)?=\s*(?P<wrappers>(?:[\w.]+\()*)"
    r"os\.environ\.get\(\s*(?P<q>[\"'])(?P<env>\w+)(?P=q)\s*,\s*)"
    r"(?P<default>.+?)(?P<tail>\s*\)\)*\s*(?:#.*)?)$"
)
_CLASS = re.compile(r"^class\s+Hyperparameters\b")


@dataclass(frozen=True)
class Hyperparameter:
    """One line of the block: attribute name, environment name, type and default."""

    name: str
    env: str
    type: str  # "int", "float", "bool", "str"
    default: Any
    line: int  # 0-based index in the script

    def matches(self, key: str) -> bool:
        """True when `key` names this setting (attribute or environment name, any case)."""
        return key.lower() in (self.name.lower(), self.env.lower())


def _block_lines(lines: list[str]) -> range:
    """Indexes of the lines inside `class Hyperparameters:` (empty when there is none)."""
    start = next((i for i, line in enumerate(lines) if _CLASS.match(line)), None)
    if start is None:
        return range(0)
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    return range(start + 1, end)


def _kind(wrappers: str) -> str:
    outer = wrappers.split("(")[0].rsplit(".", 1)[-1] if wrappers else "str"
    return outer if outer in ("int", "float", "bool") else "str"


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _default_span(line: str) -> tuple[re.Match[str], int, int] | None:
    """The line's match and the character span of its whole default expression."""
    match = _LINE.match(line)
    if not match:
        return None
    # The lazy default stops at the first ")": widen it until it is a whole expression.
    end = match.end("default")
    while True:
        try:
            ast.parse(line[match.start("default"):end], mode="eval")
            return match, match.start("default"), end
        except SyntaxError:
            cut = line.find(")", end)
            if cut < 0 or "#" in line[end:cut]:
                return None
            end = cut + 1


def _parse_line(line: str, index: int) -> tuple[Hyperparameter, int, int] | None:
    found = _default_span(line.rstrip("\n"))
    if found is None:
        return None
    match, start, end = found
    kind = _kind(match["wrappers"])
    default = _convert(kind, _literal(line[start:end]))
    return Hyperparameter(match["name"], match["env"], kind, default, index), start, end


def _convert(kind: str, value: Any) -> Any:
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return bool(int(value)) if isinstance(value, str) and value.isdigit() else bool(value)
    except (TypeError, ValueError):
        return value
    return value


def read_hyperparameters(source: str) -> dict[str, Hyperparameter]:
    """Every recognised setting of the block, by attribute name, in script order."""
    lines = source.splitlines()
    found: dict[str, Hyperparameter] = {}
    for i in _block_lines(lines):
        parsed = _parse_line(lines[i], i)
        if parsed:
            found[parsed[0].name] = parsed[0]
    return found


def find(params: dict[str, Hyperparameter], key: str) -> Hyperparameter | None:
    """The setting named `key` (attribute or environment name), if the block has it."""
    return next((p for p in params.values() if p.matches(key)), None)


def format_value(kind: str, value: Any) -> str:
    """A value as the literal written into the script."""
    if kind == "int":
        return str(int(value))
    if kind == "float":
        text = f"{float(value):.6g}"
        return text if any(c in text for c in ".en") else text + ".0"
    if kind == "bool":
        return "1" if value else "0"
    return str(value)


def set_defaults(source: str, values: dict[str, Any]) -> str:
    """`source` with the named settings' default literals replaced; unknown names raise KeyError."""
    lines = source.splitlines(keepends=True)
    params = read_hyperparameters(source)
    for key, value in values.items():
        param = find(params, key)
        if param is None:
            raise KeyError(key)
        line = lines[param.line]
        parsed = _parse_line(line, param.line)
        assert parsed is not None  # it parsed a moment ago
        _, start, end = parsed
        literal = format_value(param.type, value)
        quote = line[start] if line[start] in "\"'" else ""
        if quote:
            literal = f"{quote}{literal}{quote}"
        elif param.type == "str":
            literal = repr(literal)
        lines[param.line] = line[:start] + literal + line[end:]
    return "".join(lines)
