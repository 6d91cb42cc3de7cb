"""The `pgolf` Typer app: a table of commands, each imported only when it runs.

`pgolf --help` lists every command from `COMMANDS` alone, so it imports none of them (no pydantic,
numpy, httpx, rich, research or submission code); `pgolf status` imports only `pgolf.cli.workspace`.
To add a command: write it in its own module and add one `Entry` below (its one-line description is
the first paragraph of the command's help; tests/test_cli_app.py checks that they agree).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from pgolf import __version__
from pgolf.cli import help as help_renderer
from pgolf.errors import PgolfError


@dataclass(frozen=True)
class Entry:
    """One command of `pgolf`: where it lives and what `pgolf --help` says about it."""

    target: str  # "module:attr": a typer.Typer (a command group) or a command function
    help: str  # one line, shown by `pgolf --help` without importing `target`
    section: str
    also: tuple[str, ...] = ()  # modules that add subcommands to the group when imported
    hidden: bool = False


LOOP, RESEARCH, VIEW, SUBMIT, DATA, REMOTE = (
    "Workspace and loop", "Research", "Views", "Submissions", "Data and measurement", "Remote compute")
AGENTS = "Coding agents"

# The order is the order of `pgolf --help`.
COMMANDS: dict[str, Entry] = {
    "init": Entry("pgolf.cli.workspace:init", "Create a workspace: a git repo with train_gpt.py, "
                  "pgolf.toml, program.md and results.tsv.", LOOP),
    "status": Entry("pgolf.cli.workspace:status", "Show the ruleset, whether a loop is running (runs in "
                    "flight, step, ETA), the noise floor, runs by status, the best run per tier and the "
                    "budget.", LOOP),
    "ledger": Entry("pgolf.cli.ledger:ledger", "Show the ledger of runs (results.tsv), newest last, with each "
                    "decision's gain and reason.", LOOP),
    "show": Entry("pgolf.cli.show:show", "Show why a run ended as it did: decision (gain, bar, n, σ, p), "
                  "preflight, command, result, steps, diff, log.", LOOP),
    "run": Entry("pgolf.cli.run:run", "Run the experiment loop: noise floor, then propose → commit → run → "
                 "keep or revert, until a limit.", LOOP),
    "demo": Entry("pgolf.cli.run:demo", "Try pgolf offline in a few minutes: a demo workspace, a noise "
                  "floor, two search experiments on two slots.", LOOP),
    "promote": Entry("pgolf.cli.promote:promote", "Run a kept local experiment on the remote tier "
                     "(tiers.ssh or tiers.runpod in pgolf.toml).", LOOP),
    "clean": Entry("pgolf.cli.clean:clean", "Remove what experiments leave behind, each kind only when "
                   "asked; results.tsv keeps every row.", LOOP),
    "budget": Entry("pgolf.cli.budget:budget_app", "Money: credits, reserve, rate limit, LLM spend.", LOOP),
    "research": Entry("pgolf.cli.research:research_app", "Papers, PRs, code, posts and web results about "
                      "the challenge, fetched into .pgolf/research.db.", RESEARCH, also=("pgolf.cli.intel",)),
    "competitors": Entry("pgolf.cli.competitors:competitors_app", "Competitors' scores: scan records "
                         "folders or the challenge README, list what is known and the frontier of each "
                         "track.", RESEARCH),
    "dashboard": Entry("pgolf.cli.dashboard:dashboard", "Serve a read-only dashboard of the workspace: "
                       "runs, charts, money, research, competitors.", VIEW),
    "report": Entry("pgolf.cli.dashboard:report", "Write the dashboard as one self-contained HTML file "
                    "(charts included) that opens offline.", VIEW),
    "check": Entry("pgolf.cli.check:check", "Triage a submission: each rule gets PASS/WARN/FAIL/UNKNOWN/N/A "
                   "with evidence; exit 1 on any FAIL.", SUBMIT),
    "audit": Entry("pgolf.cli.audit:audit_app", "Audits of submitted scripts.", SUBMIT),
    "submit": Entry("pgolf.cli.submit:submit_app", "Submissions: package runs as a records folder.", SUBMIT),
    "stats": Entry("pgolf.cli.stats:stats_app", "Statistics over runs.", SUBMIT),
    "data": Entry("pgolf.cli.data:data_app", "Datasets in the challenge's shard format: the offline demo "
                  "corpus, FineWeb, and checks.", DATA),
    "score": Entry("pgolf.cli.score:score", "Count the scored targets of a validation split and their "
                   "bytes under the canonical byte rule.", DATA),
    "measure": Entry("pgolf.cli.measure:measure", "Measure the artifact: script bytes + model bytes, the "
                     "total and the headroom; exit 1 over the limit.", DATA),
    "logs": Entry("pgolf.cli.logs:logs_app", "Training logs: the official records' formats and pgolf's "
                  "own.", DATA),
    "compute": Entry("pgolf.cli.compute:compute_app", "Remote compute: pods this workspace made.", REMOTE),
    "agent": Entry("pgolf.cli.agent:agent_app", "Let a coding agent (Claude Code, Codex) drive research "
                   "through pgolf.", AGENTS),
    "mcp": Entry("pgolf.cli.mcp:mcp", "Serve this workspace over the Model Context Protocol on stdin/stdout "
                 "(the agent starts it).", AGENTS),
    "hook": Entry("pgolf.cli.hook:hook_app", "Hooks a coding agent calls; `pgolf agent setup` installs them.", AGENTS),
}


def resolve(name: str, entry: Entry) -> Any:
    """Import the command behind `entry`: a click command (a group for a typer.Typer)."""
    module_name, _, attr = entry.target.partition(":")
    target = getattr(importlib.import_module(module_name), attr)
    for extra in entry.also:
        importlib.import_module(extra)
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a group even with one subcommand
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    command.hidden = entry.hidden
    return help_renderer.install(command)


class LazyGroup(typer.core.TyperGroup):
    """The root group: commands come from `COMMANDS` and are imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = resolve(cmd_name, COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer.core._click.exceptions.UsageError as err:
            # Typer suggests from the commands already imported; suggest from the whole table.
            import difflib

            matches = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in err.message:
                err.message = f"{err.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # From the table only: listing the commands must not import them.
        sections: dict[str, list[tuple[str, str]]] = {}
        for name, entry in COMMANDS.items():
            if not entry.hidden:
                sections.setdefault(entry.section, []).append((name, entry.help))
        extra = [(n, c) for n, c in self.commands.items() if n not in COMMANDS]
        if extra:
            sections.setdefault("Other commands", []).extend(help_renderer.command_rows(extra))
        formatter.write(help_renderer.render_help(
            usage=help_renderer.usage_line(self, ctx), help_text=self.help, params=self.get_params(ctx),
            width=formatter.width, sections=list(sections.items()),
            epilog="Run `pgolf COMMAND --help` for a command's options."))


app = typer.Typer(
    name="pgolf",
    cls=LazyGroup,
    help="Autonomous research for OpenAI's Parameter Golf: experiments bound to commits, measured by "
    "the tool, a budget no run can overspend, and a checker that catches invalid results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # usage errors print as plain text: never read as markup, no Rich import
)


def _version(value: bool) -> None:
    if value:
        print(f"pgolf {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="PGOLF_WORKSPACE", metavar="DIR", show_default=False,
                     help="Workspace folder (default: the one containing the current directory)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from pgolf.cli._common import set_workspace_dir

    set_workspace_dir(workspace)


def run(args: list[str] | None = None) -> None:
    """Run the app on `args`; errors a user can cause end in one line and their exit code."""
    try:
        app(args=args, prog_name="pgolf")
    except PgolfError as err:
        from pgolf.cli._common import say

        # Messages name config tables such as [tiers.runpod] and hostile paths: printed as text.
        say("[bold red]error:[/] {}", err, err=True)
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        from pgolf.cli._common import err_console

        err_console.print("interrupted")
        raise SystemExit(130) from None


def main() -> None:
    """The console script (kept here for callers of `pgolf.cli.app:main`): see `pgolf.cli.entry`."""
    from pgolf.cli.entry import main as entry_main

    entry_main()
