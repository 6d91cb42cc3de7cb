"""Text from agents, LLMs, PRs and submissions is printed as text: Rich never reads it as markup."""

from __future__ import annotations

from rich.console import Console

from pgolf.cli.run import results_table
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.supervisor import LoopSummary
from pgolf.submission.checks import CheckResult
from pgolf.submission.report import report_table

HOSTILE = "use [bold]int6[/] and [/] close [red]everything"


def _render(renderable) -> str:
    console = Console(width=300, record=True, color_system=None)
    console.print(renderable)  # raises rich.errors.MarkupError on a stray [/]
    return console.export_text()


def test_check_report_shows_evidence_verbatim():
    result = CheckResult("no_network", "WARN", "rule", HOSTILE, evidence=[f"train_gpt.py:3: {HOSTILE}"])
    text = _render(report_table("x", [result]))
    assert text.count("[bold]int6[/]") == 2 and "[red]everything" in text


def test_loop_results_table_shows_descriptions_verbatim():
    summary = LoopSummary(records=[ExperimentRecord("r0001", "experiment", "discard", HOSTILE, "abc")])
    assert "[/] close [red]everything" in _render(results_table(summary, "t"))


def test_loop_results_table_shows_a_judged_candidate_once_as_it_ended():
    # The scheduler reports a candidate when its first run clears the screen, and again when judged.
    records = [ExperimentRecord("r0003", "experiment", "replicate", "tpe: lr", "abc", val_bpb=2.80),
               ExperimentRecord("r0005", "replicate", "replicate", "replicate of r0003", "abc", val_bpb=2.77),
               ExperimentRecord("r0003", "experiment", "keep", "tpe: lr", "abc", val_bpb=2.79)]
    lines = [line for line in _render(results_table(LoopSummary(records=records), "t")).splitlines()
             if line.lstrip("│ ").startswith("r000")]
    assert [line.split("│")[1].strip() for line in lines] == ["r0003", "r0005"]
    assert "keep" in lines[0] and "replicate" not in lines[0]
