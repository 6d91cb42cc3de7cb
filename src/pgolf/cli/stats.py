"""`pgolf stats compare`: is one set of runs better than another by the record margin?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, print_json, say
from pgolf.cli.check import optional_workspace, resolve_ruleset
from pgolf.cli.options import ruleset_option
from pgolf.errors import DataError
from pgolf.logs import RunResult, parse_log, read_run_result
from pgolf.submission.folder import load_path
from pgolf.submission.stats import compare_runs
from pgolf.workspace import Workspace

stats_app = typer.Typer(help="Statistics over runs.", no_args_is_help=True)


def _results(spec: str, ws: Workspace | None) -> tuple[list[RunResult], list[str]]:
    """Final results named by `spec` (comma-separated run ids, log files, or records folders) and which
    logs they came from."""
    out: list[RunResult] = []
    used: list[str] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        path = Path(item)
        if path.is_dir():
            logs, why = load_path(path).seed_logs()
            out += logs.values()
            used.append(f"{item}: {', '.join(logs) or 'no complete log'} ({why})")
        elif path.is_file():
            out.append(parse_log(path))
            used.append(item)
        elif ws is not None and ws.run_dir(item).is_dir():
            result = read_run_result(ws.run_dir(item))
            if result is None:
                raise DataError(f"run {item}: no result.json or train.log")
            out.append(result)
            used.append(f"run {item}")
        else:
            raise DataError(f"{item}: not a run id, a log file, or a records folder")
    scored = [r for r in out if r.val_bpb is not None]
    if not scored:
        raise DataError(f"{spec}: no finished run with a val_bpb")
    return scored, used


@stats_app.command("compare")
def compare(
    candidate: Annotated[str, typer.Argument(help="Set A: run ids, log files or records folders (comma-separated).")],
    reference: Annotated[str, typer.Argument(help="Set B, the one A must beat.")],
    track: Annotated[str | None, ruleset_option("Ruleset for margin, p threshold and seed count.",
                                                show_default="the workspace's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Welch's t-test: does A beat B by the ruleset's nat margin (converted to BPB with A's own tokens per
    byte) at its p threshold? One value in B is treated as a constant (one-sample test).

    From a records folder only the logs of the seeds its submission.json reports count; without them every
    complete log counts. Which logs were used is printed (and under "used" in --json).
    """
    ws = optional_workspace()
    ruleset = resolve_ruleset(track, ws)
    (a, used_a), (b, used_b) = _results(candidate, ws), _results(reference, ws)
    result = compare_runs([r.val_bpb for r in a], [r.val_loss for r in a], [r.val_bpb for r in b], ruleset)
    if as_json:
        print_json({"ruleset": ruleset.name, **result.as_dict(), "used": {"A": used_a, "B": used_b}})
        return
    for label, used in (("A", used_a), ("B", used_b)):
        for line in used:
            say(f"{label}: {{}}", line)
    table = Table("", "n", "mean val_bpb", "std")
    for label, n, mean, std in (("A", result.n_candidate, result.mean_candidate, result.std_candidate),
                                ("B", result.n_reference, result.mean_reference, result.std_reference)):
        table.add_row(label, str(n), f"{mean:.8f}", "-" if std is None else f"{std:.8f}")
    console.print(table)
    p = "-" if result.p_value is None else f"{result.p_value:.3g}"
    console.print(f"A - B = {-result.improvement:+.6f} BPB; margin {result.margin_bpb:.6f} BPB "
                  f"({ruleset.record_margin_nats} nats); {result.test} test p = {p} (needs < {ruleset.significance_p})")
    verdict = "[green]significant[/]" if result.significant else "[yellow]not significant[/]"
    seeds = "" if result.enough_seeds else f"; only {result.n_candidate} seed(s), {ruleset.min_seeds} needed"
    console.print(f"{verdict}{seeds}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(stats_app, name="stats")
