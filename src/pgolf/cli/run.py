"""`pgolf run` and `pgolf demo`: the experiment loop, with live progress read from the run's log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pgolf.cli._common import console, current_workspace, fmt_bpb, print_json
from pgolf.loop.lifecycle import ExperimentRecord
from pgolf.loop.progress import ProgressTracker
from pgolf.loop.proposers import KINDS
from pgolf.loop.supervisor import LoopSummary, run_loop

_STATUS_STYLE = {"keep": "bold green", "baseline": "cyan", "discard": "yellow", "skipped": "dim",
                 "rejected": "magenta", "aborted": "red", "crash": "bold red", "timeout": "red",
                 "oversize": "red"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class LiveDisplay:
    """Prints each message and finished run as a line; one live line shows the run in flight."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live: Live | None = None
        self.tracker = ProgressTracker()
        self.run_id = ""
        self.started = 0.0

    def __enter__(self) -> LiveDisplay:
        if not self.quiet:
            self.live = Live(Text(""), console=console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def message(self, text: str) -> None:
        """A line above the live status."""
        if not self.quiet:
            console.print(text, soft_wrap=True, markup=False)

    def run_started(self, run_id: str, kind: str, description: str, tracker_info: dict[str, Any]) -> None:
        """A new run: reset the progress."""
        self.tracker = ProgressTracker(tracker_info.get("tokens_per_step"), tracker_info.get("wallclock_seconds"))
        self.run_id, self.started = run_id, time.monotonic()
        self.message(f"{run_id} {kind}: {description}")
        self._render()

    def line(self, text: str) -> None:
        """A log line of the run in flight."""
        self.tracker.feed(text)
        self._render()

    def _render(self) -> None:
        if self.live is None:
            return
        p = self.tracker.progress
        parts = [f"{self.run_id} {_duration(time.monotonic() - self.started)}"]
        if p.total_steps:
            parts.append(f"step {p.step}/{p.total_steps}")
        if p.train_loss is not None:
            parts.append(f"loss {p.train_loss:.3f}")
        if p.val_bpb is not None:
            parts.append(f"val_bpb {p.val_bpb:.4f}")
        if p.tokens_per_second:
            parts.append(f"{p.tokens_per_second:,.0f} tok/s")
        if p.eta_seconds is not None:
            parts.append(f"train ETA {_duration(p.eta_seconds)}")
        if not p.total_steps and p.last_line:
            parts.append(p.last_line[:60])
        self.live.update(Text("  " + " · ".join(parts), style="dim"))

    def run_finished(self, record: ExperimentRecord) -> None:
        """One line per finished run: status, score, gain."""
        style = _STATUS_STYLE.get(record.status, "")
        gain = "" if record.gain is None else f" ({record.gain:+.4f})"
        extra = f", promotion {record.promoted}" if record.promoted == "pending" else ""
        reason = f" — {escape(record.reason)}" if record.status not in ("keep", "discard", "baseline") and record.reason else ""
        if not self.quiet:
            console.print(f"  [{style}]{record.status}[/] {fmt_bpb(record.val_bpb)}{gain} in "
                          f"{_duration(record.seconds)}{extra}{reason}", soft_wrap=True)
        if self.live is not None:
            self.live.update(Text(""))


def results_table(summary: LoopSummary, title: str) -> Table:
    """The runs of this loop as a table."""
    table = Table("run", "status", "val_bpb", "gain", "description", title=title)
    for r in summary.records:
        gain = "-" if r.gain is None else f"{r.gain:+.4f}"
        table.add_row(r.run_id, f"[{_STATUS_STYLE.get(r.status, '')}]{r.status}[/]", fmt_bpb(r.val_bpb), gain,
                      escape(r.description))
    return table


def summary_dict(summary: LoopSummary) -> dict[str, Any]:
    """The loop's summary as plain data for --json."""
    return {"stop_reason": summary.stop_reason, "recovered": summary.recovered,
            "runs": [vars(r) for r in summary.records]}


def run(
    experiments: Annotated[int | None, typer.Option("--experiments", "-n", min=1,
                                                    help="Stop after N experiments (noise-floor runs not counted).")] = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.0, help="Start no new experiment after H hours.")] = None,
    proposer: Annotated[str | None, typer.Option("--proposer", "-p",
                                                 help=f"Override pgolf.toml's proposer: {', '.join(KINDS)}.")] = None,
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
    with LiveDisplay(quiet=as_json) as display:
        summary = run_loop(ws, experiments=experiments, hours=hours, proposer_kind=proposer, events=display)
    if as_json:
        print_json(summary_dict(summary))
        return
    console.print(results_table(summary, f"pgolf run: {summary.stop_reason}"))
    _where_next(ws.root)


def _where_next(root: Path) -> None:
    console.print(f"Ledger: [bold]{root / 'results.tsv'}[/] (`pgolf ledger`), context: [bold]{root / 'program.md'}[/], "
                  f"run folders: [bold]{root / '.pgolf' / 'runs'}[/]. Discarded diffs: `git tag -l 'pgolf/exp/*'`.",
                  soft_wrap=True)


def demo(
    directory: Annotated[Path, typer.Argument(help="Folder of the demo workspace (created when missing).")] = Path("demo"),
    experiments: Annotated[int, typer.Option("--experiments", "-n", min=1, help="Search experiments to run.")] = 3,
    seconds: Annotated[float, typer.Option("--seconds", min=1.0,
                                           help="Cap on the training seconds of one run (the demo is step-limited; "
                                                "this only stops a slow proposal).")] = 120.0,
) -> None:
    """Try pgolf offline in a few minutes: a demo workspace, a noise floor, three search experiments.

    Builds a corpus from Python's own documentation, creates a workspace with a small model, measures the noise floor with two seeds, then runs Optuna search experiments that rewrite the script's hyperparameter defaults.

    Running it again in the same folder continues the search there.
    """
    from pgolf.loop.demo import prepare_demo

    console.print(f"Preparing the demo workspace in [bold]{directory}[/] …")
    ws = prepare_demo(directory, train_seconds=seconds, progress=lambda msg: console.print(f"  {msg}"))
    with LiveDisplay() as display:
        summary = run_loop(ws, experiments=experiments, events=display)
    console.print(results_table(summary, f"pgolf demo: {summary.stop_reason}"))
    _where_next(ws.root)
    console.print(f"Next: `cd {directory}` and `pgolf run -n 10` for more, or `pgolf run --proposer agent` "
                  "with an agent_command in pgolf.toml.", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `pgolf run` and `pgolf demo`."""
    app.command()(run)
    app.command()(demo)
