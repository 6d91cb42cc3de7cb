"""`pgolf run` and `pgolf demo`: the experiment loop, with live progress read from the run's log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, fmt_bpb, plain, print_json, say
from pgolf.cli.live import STATUS_STYLE, LiveDisplay
from pgolf.loop.proposers import KINDS
from pgolf.loop.supervisor import LoopSummary, run_loop


def results_table(summary: LoopSummary, title: str) -> Table:
    """The runs of this loop as a table: one row per run, in the order they started, as they ended."""
    table = Table("run", "status", "val_bpb", "gain", "description", title=plain(title))  # a stop reason quotes errors
    last: dict[str, Any] = {}
    for r in summary.records:  # a candidate reports twice: screened (replicate), then judged (keep/discard)
        last[r.run_id] = r  # a dict keeps each run at its first place
    for r in last.values():
        gain = "-" if r.gain is None else f"{r.gain:+.4f}"
        table.add_row(plain(r.run_id), plain(r.status, STATUS_STYLE.get(r.status, "")), fmt_bpb(r.val_bpb), gain,
                      plain(r.description))
    return table


def summary_dict(summary: LoopSummary) -> dict[str, Any]:
    """The loop's summary as plain data for --json."""
    return {"stop_reason": summary.stop_reason, "recovered": summary.recovered,
            "runs": [{**vars(r), "failure": r.failure.as_dict() if r.failure else None} for r in summary.records]}


def run(
    experiments: Annotated[int | None, typer.Option("--experiments", "-n", min=1, show_default="unlimited",
                                                    help="Stop after N experiments (noise-floor runs not counted).")] = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.0, show_default="unlimited",
                                                help="Start no new experiment after HOURS hours.")] = None,
    proposer: Annotated[str | None, typer.Option("--proposer", "-p", metavar="|".join(KINDS),
                                                 help="Override pgolf.toml's [proposer] kind for this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of the table.")] = False,
) -> None:
    """Run the experiment loop: noise floor, then propose → commit → run → keep or revert, until a limit.

    The first run measures the noise floor: the unchanged script with two or more seeds.

    Each experiment is a commit on pgolf/explore. A kept one moves pgolf/best; a discarded one is reverted and tagged pgolf/exp/<run_id>. Everything is recorded in results.tsv and .pgolf/runs/<run_id>/.

    Ctrl-C finishes the run in flight and stops; a second Ctrl-C aborts it (recorded as aborted).
    """
    if proposer is not None and proposer not in KINDS:
        raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--proposer")
    ws = current_workspace()
    with LiveDisplay(quiet=as_json, total=experiments, log_path=ws.loop_log) as display:
        summary = run_loop(ws, experiments=experiments, hours=hours, proposer_kind=proposer, events=display)
    if display.broken:
        return  # stdout is gone; everything is in the ledger and .pgolf/loop.log
    if as_json:
        print_json(summary_dict(summary))
        raise typer.Exit(1 if summary.proposer_broken else 0)
    console.print(results_table(summary, f"pgolf run: {summary.stop_reason}"))
    _where_next(ws.root)
    if summary.proposer_broken:
        raise typer.Exit(1)


def _where_next(root: Path) -> None:
    # One short line each, so they read at 80 columns (a path is never broken in the middle).
    for label, where, how in (("Ledger", root / "results.tsv", "  (pgolf ledger)"), ("Context", root / "program.md", ""),
                              ("Run folders", root / ".pgolf" / "runs", ""),
                              ("Discarded diffs", "git tag -l 'pgolf/exp/*'", "")):
        say(f"{label:<16}{{}}{how}", where)


def demo(
    directory: Annotated[Path, typer.Argument(help="Folder of the demo workspace (created when missing).")] = Path("demo"),
    experiments: Annotated[int, typer.Option("--experiments", "-n", min=1, help="Search experiments to run.")] = 2,
    seconds: Annotated[float, typer.Option("--seconds", min=1.0,
                                           help="Cap on the training seconds of one run (the demo is step-limited; "
                                                "a run this cap cuts is recorded as a crash).")] = 600.0,
) -> None:
    """Try pgolf offline in a few minutes: a demo workspace, a noise floor, two search experiments on two slots.

    Builds a corpus from Python's own documentation, creates a workspace with a small model, measures the noise floor with two seeds, then runs Optuna search experiments that rewrite the script's hyperparameter defaults; a promising change is replicated with paired seeds before it is kept. Ends with a plain summary: the noise floor, the bar, what was kept and why.

    Running it again in the same folder continues the search there.
    """
    from pgolf.loop.demo import demo_summary, prepare_demo

    say("Preparing the demo workspace in [bold]{}[/] …", directory)
    ws = prepare_demo(directory, train_seconds=seconds, progress=lambda msg: say("  {}", msg))
    with LiveDisplay(total=experiments, log_path=ws.loop_log) as display:
        summary = run_loop(ws, experiments=experiments, events=display)
    if display.broken:
        return
    console.print(results_table(summary, f"pgolf demo: {summary.stop_reason}"))
    console.print("")
    for line in demo_summary(ws):
        console.print(line, markup=False, soft_wrap=False)
    _where_next(ws.root)
    say("Next: `cd {}`, then `pgolf run -n 10` for more, or `pgolf run "
        "--proposer agent` with an agent_command in pgolf.toml.", directory)


def register(app: typer.Typer) -> None:
    """Add `pgolf run` and `pgolf demo`."""
    app.command()(run)
    app.command()(demo)
