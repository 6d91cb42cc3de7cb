"""What every command module shares: consoles, the workspace option, JSON output, untrusted text.

Text that came from a file, a run, a remote service or the user (paths, log lines, descriptions, names,
error messages) is printed with `say` or wrapped in `plain`: Rich never reads it as markup (a `[/x]` in a
path would raise MarkupError, a `[link=...]` would forge a hyperlink) and terminal control characters
are replaced, so a log line cannot move the cursor or retitle the terminal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from pgolf.fmt import fmt_bpb, fmt_bytes, fmt_time, fmt_usd

if TYPE_CHECKING:  # pgolf.workspace loads pydantic: only the commands that open a workspace pay for it
    from pgolf.workspace import Workspace

# emoji=False: ":smile:" in a description stays text.
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)

_SLOT = "\ue000"  # a private-use character stands for each {} while the template is parsed
_CONTROL = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)], "\ufffd")


def plain(value: object, style: str = "") -> Text:
    """Untrusted text as a renderable that is never read as markup: for table cells and the like."""
    return Text(str(value).translate(_CONTROL), style=style)


def line(template: str, *values: object) -> Text:
    """`template` is pgolf's own Rich markup; each `{}` in it is filled with one of `values` as plain
    text, taking the style of where it stands (`"[bold]{}[/]"` makes the value bold, never markup)."""
    if template.count("{}") != len(values):
        raise ValueError(f"{template!r} has {template.count('{}')} slots for {len(values)} values")
    text = Text.from_markup(template.replace("{}", _SLOT), emoji=False)
    if not values:
        return text
    cuts = [i for i, ch in enumerate(text.plain) if ch == _SLOT]
    pieces = text.divide([edge for i in cuts for edge in (i, i + 1)])
    out = Text(style=text.style, end=text.end)
    filled = iter(values)
    for piece in pieces:
        if piece.plain == _SLOT:
            value = plain(next(filled), piece.style)
            for span in piece.spans:
                value.stylize(span.style)
            out.append_text(value)
        else:
            out.append_text(piece)
    return out


def say(template: str, *values: object, err: bool = False, **options: Any) -> None:
    """Print one line: `template` (pgolf's markup) with untrusted `values` in its `{}` slots.

    Every CLI message that shows a path, a log line, a run's or a remote's text goes through here.
    """
    (err_console if err else console).print(line(template, *values), soft_wrap=True, **options)

# Set by the app's callback from --workspace / PGOLF_WORKSPACE.
_workspace_dir: Path | None = None


def set_workspace_dir(path: Path | None) -> None:
    """Remember the --workspace option for this invocation."""
    global _workspace_dir
    _workspace_dir = path


def current_workspace() -> Workspace:
    """The workspace named by --workspace, else the one containing the current directory."""
    from pgolf.workspace import find_workspace

    return find_workspace(_workspace_dir)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def finite_or_null(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None: JSON has no such numbers (and `NaN` in
    output breaks every strict reader), so a value pgolf cannot trust is `null`."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in; non-finite numbers become null."""
    print(json.dumps(finite_or_null(data), indent=2, default=_jsonable, allow_nan=False))


__all__ = ["fmt_bpb", "fmt_bytes", "fmt_time", "fmt_usd"]  # the formats live in pgolf.fmt
