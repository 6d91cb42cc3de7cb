"""Options several commands share: one name, one check and one help text for each idea."""

from __future__ import annotations

from typing import Any

import typer

from pgolf.rules import RULESETS

RULESET_NAMES = ("--ruleset", "--track")  # --track: the older name, still accepted, not shown in help


def check_ruleset(value: str | None) -> str | None:
    """A ruleset name given on the command line, refused before any work when unknown."""
    if value is not None and value not in RULESETS:
        raise typer.BadParameter(f"unknown ruleset {value!r}; choose from {', '.join(RULESETS)}",
                                 param_hint="'--ruleset'")
    return value


def ruleset_option(help_text: str, **kwargs: Any) -> Any:
    """`--ruleset NAME` (alias `--track`), validated against the known rulesets."""
    return typer.Option(*RULESET_NAMES, metavar="RULESET", callback=check_ruleset,
                        help=f"{help_text} One of: {', '.join(RULESETS)}.", **kwargs)


def check_grader(value: str | None) -> str | None:
    """`--grader`: heuristic or llm, refused before any work otherwise."""
    if value is not None and value not in ("heuristic", "llm"):
        raise typer.BadParameter(f"unknown grader {value!r}; choose from heuristic, llm")
    return value
