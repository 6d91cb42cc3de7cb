"""The `pgolf` Typer app: registers every command group and turns user errors into one line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pgolf import __version__
from pgolf.cli._common import err_console, set_workspace_dir
from pgolf.errors import PgolfError

app = typer.Typer(
    name="pgolf",
    help="Autonomous research for OpenAI's Parameter Golf: experiments bound to commits, measured by "
    "the tool, a budget no run can overspend, and a checker that catches invalid results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Each module defines `register(app)`; the order is the order of `pgolf --help`.
COMMAND_MODULES = (
    "workspace",
    "ledger",
    "budget",
    "run",
    "research",
    "competitors",
    "intel",
    "dashboard",
    "promote",
    "compute",
    "data",
    "score",
    "measure",
    "logs",
    "check",
    "audit",
    "submit",
    "stats",
)


def _version(value: bool) -> None:
    if value:
        print(f"pgolf {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="PGOLF_WORKSPACE",
                     help="Workspace folder (default: the one containing the current directory)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    set_workspace_dir(workspace)


for _name in COMMAND_MODULES:
    importlib.import_module(f"pgolf.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the `pgolf` console script."""
    try:
        app()
    except PgolfError as err:
        # Messages name config tables such as [tiers.runpod]: never let Rich read them as markup.
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
