"""The one help renderer of every pgolf command: plain text, never read as markup, wrapped by sentence.

Typer's own renderer shows `<bool>` beside flags, leaks annotations such as `<list[Path]>`, reads
`[llm]` in a help text as Rich markup (and drops it), and keeps the line breaks of the source, so
sentences break mid-line. This one renders from the parameters themselves: flags have no value name,
a value is named by what it is (N, PATH, a|b|c, or the option's own name), defaults and environment
variables are shown in brackets, and every paragraph is re-wrapped to the terminal.
"""

from __future__ import annotations

import enum
import inspect
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any, get_args, get_origin

_MAX_FIRST_COLUMN = 28  # wider option names put their help on the next line


def paragraphs(text: str | None) -> list[str]:
    """Paragraphs of a docstring or help text; a paragraph whose lines are indented is kept as it is."""
    if not text:
        return []
    out = []
    for block in inspect.cleandoc(text).split("\n\n"):
        block = block.strip("\n")
        if not block.strip():
            continue
        verbatim = block.startswith("\b") or all(line.startswith("    ") for line in block.splitlines())
        out.append(block.replace("\b\n", "").replace("\b", "") if verbatim else " ".join(block.split()))
    return out


def first_paragraph(text: str | None) -> str:
    """The one-line description a command list shows."""
    found = paragraphs(text)
    return found[0] if found else ""


def _choices(param: Any) -> list[str] | None:
    desc = getattr(param, "type_descriptor", None)
    choices = getattr(desc, "choices", None) if desc is not None else None
    if not choices:
        return None
    return [c.value if isinstance(c, enum.Enum) else str(c) for c in choices]


def _annotation(param: Any) -> Any:
    desc = getattr(param, "type_descriptor", None)
    annotation = getattr(desc, "annotation", None)
    while get_origin(annotation) in (list, tuple) and get_args(annotation):
        annotation = get_args(annotation)[0]
    return annotation


def metavar(param: Any) -> str:
    """What to type after an option (empty for a flag), or an argument's name."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    many = param.nargs != 1  # a repeatable option (`multiple`) takes one value each time
    if param.metavar:
        name = param.metavar
    elif (choices := _choices(param)) is not None:
        name = "|".join(choices)
    elif param.param_type_name == "argument":
        name = (param.name or "value").upper()
    else:
        annotation = _annotation(param)
        if isinstance(annotation, type) and issubclass(annotation, PurePath):
            name = "PATH"
        else:
            name = "N" if annotation is int else (param.name or "value").upper()
    return f"{name}..." if many else name


def _default_text(param: Any) -> str | None:
    show = getattr(param, "show_default", None)
    if show is False:
        return None
    if isinstance(show, str):
        return show
    default = param.default
    if callable(default) or default is None or default == "" or default == () or default == []:
        return None
    if getattr(param, "is_flag", False):
        secondary = getattr(param, "secondary_opts", None)
        if not secondary or not isinstance(default, bool):
            return None  # a plain flag is off unless given
        return param.opts[0] if default else secondary[0]
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, list | tuple):
        return ", ".join(str(d) for d in default)
    return str(default)


def _range_text(param: Any) -> str | None:
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None


def _param_help(param: Any) -> str:
    text = " ".join(paragraphs(getattr(param, "help", None) or ""))
    extra = []
    if (default := _default_text(param)) is not None:
        extra.append(f"default: {default}")
    if (bounds := _range_text(param)) is not None:
        extra.append(bounds)
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", True):
        extra.append("env: " + (envvar if isinstance(envvar, str) else ", ".join(envvar)))
    if param.required and param.param_type_name == "option":
        extra.append("required")
    if extra:
        text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return text


# Older names still accepted but no longer shown: one name for one idea in every help page.
HIDDEN_ALIASES = frozenset({"--track", "--last"})


def _option_label(param: Any) -> str:
    shown = [o for o in param.opts if o not in HIDDEN_ALIASES] or list(param.opts)
    names = sorted(shown, key=lambda o: (o.startswith("--"), o))  # -w before --workspace
    label = ", ".join(names)
    if getattr(param, "secondary_opts", None):
        label += " / " + ", ".join(param.secondary_opts)
    value = metavar(param)
    return f"{label} {value}" if value else label


def _write_rows(out: list[str], rows: Sequence[tuple[str, str]], width: int, first: int) -> None:
    """Two columns: the name, then its help wrapped beside it (below it when the name is long)."""
    indent = 2 + first + 2
    text_width = max(width - indent, 30)
    for name, text in rows:
        lines = textwrap.wrap(text, text_width, break_on_hyphens=False) or [""]
        if len(name) > first:
            out.append(f"  {name}")
            out.extend(" " * indent + line for line in lines if line)
        else:
            out.append(f"  {name:<{first}}  {lines[0]}".rstrip())
            out.extend(" " * indent + line for line in lines[1:])


def _write_paragraphs(out: list[str], text: str | None, width: int, indent: str = "") -> None:
    for i, para in enumerate(paragraphs(text)):
        if i:
            out.append("")
        if "\n" in para or para.startswith("    "):
            out.extend(indent + line for line in para.splitlines())
        else:
            out.extend(textwrap.wrap(para, width - len(indent), initial_indent=indent,
                                     subsequent_indent=indent, break_on_hyphens=False))


def render_help(
    *, usage: str, help_text: str | None, params: Iterable[Any], width: int,
    sections: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (), epilog: str | None = None,
) -> str:
    """A whole help page: usage, description, arguments, options, then the given sections."""
    out = [usage, ""]
    if help_text:
        _write_paragraphs(out, help_text, width)
        out.append("")
    visible = [p for p in params if not getattr(p, "hidden", False)]
    arguments = [(metavar(p), _param_help(p)) for p in visible
                 if p.param_type_name == "argument" and getattr(p, "help", None)]
    options = [(_option_label(p), _param_help(p)) for p in visible if p.param_type_name == "option"]
    tables = [(title, rows) for title, rows in (("Arguments", arguments), ("Options", options), *sections)
              if rows]
    # One first column for the whole page, so every section lines up.
    first = min(max(len(name) for _, rows in tables for name, _ in rows), _MAX_FIRST_COLUMN) if tables else 0
    for title, rows in tables:
        if rows:
            out.append(f"{title}:")
            _write_rows(out, rows, width, first)
            out.append("")
    if epilog:
        _write_paragraphs(out, epilog, width)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def command_rows(commands: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """A group's subcommands as (name, one-line description), hidden ones left out."""
    return [(name, cmd.short_help or first_paragraph(cmd.help))
            for name, cmd in commands if not getattr(cmd, "hidden", False)]


def usage_line(command: Any, ctx: Any) -> str:
    """`Usage: pgolf init [OPTIONS] DIRECTORY`: optional arguments in brackets, a group's COMMAND."""
    pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" and not getattr(p, "hidden", False)
                                  for p in command.get_params(ctx)) else []
    for p in command.get_params(ctx):
        if p.param_type_name == "argument":
            pieces.append(metavar(p) if p.required else f"[{metavar(p)}]")
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(["Usage:", ctx.command_path, *pieces])


def format_command_help(command: Any, ctx: Any, formatter: Any) -> None:
    """`Command.format_help` for any click-style command or group: written into click's formatter."""
    usage = usage_line(command, ctx)
    sections: list[tuple[str, Sequence[tuple[str, str]]]] = []
    if hasattr(command, "list_commands"):
        names = command.list_commands(ctx)
        sections.append(("Commands", command_rows((n, command.get_command(ctx, n)) for n in names)))
    formatter.write(render_help(usage=usage, help_text=command.help, params=command.get_params(ctx),
                                width=formatter.width, sections=sections, epilog=command.epilog))


def install(command: Any) -> Any:
    """Give `command` and every subcommand already built this renderer; returns `command`."""
    command.format_help = lambda ctx, formatter, _c=command: format_command_help(_c, ctx, formatter)
    # Usage errors print this line too.
    command.format_usage = lambda ctx, formatter, _c=command: formatter.write(usage_line(_c, ctx) + "\n")
    for sub in getattr(command, "commands", {}).values():
        install(sub)
    return command
