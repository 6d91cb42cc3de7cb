"""`pgolf logs parse`: results from training logs of any era."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, fmt_bpb, fmt_bytes, plain, print_json, say

logs_app = typer.Typer(help="Training logs: the official records' formats and pgolf's own.", no_args_is_help=True)


@logs_app.command("parse")
def logs_parse(
    files: Annotated[list[Path], typer.Argument(help="Log files (train.log, train_seed42.log, ...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per file.")] = False,
) -> None:
    """Final val_bpb/val_loss and its label, pre-quantization val_bpb, artifact bytes, steps, time, seed.

    A log without a final score is reported with `complete` false and a `reason`; a missing file is an error.
    """
    from pgolf.logs import parse_log

    results = [parse_log(f) for f in files]
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        table = Table("log", "val_bpb", "label", "pre-quant", "bytes", "steps", "train s", "seed", "status")
        for r in results:
            table.add_row(
                plain(Path(r.path).name), fmt_bpb(r.val_bpb), plain(r.label or "-"), fmt_bpb(r.pre_quant_val_bpb),
                fmt_bytes(r.artifact_bytes),
                "-" if r.steps is None else str(r.steps),
                "-" if r.train_seconds is None else f"{r.train_seconds:.1f}",
                "-" if r.seed is None else str(r.seed),
                plain("complete", "green") if r.complete else plain(r.status, "red"),
            )
        console.print(table)
        for r in results:
            if not r.complete:
                say("[yellow]{}:[/] {}", r.path, r.reason, err=True)
            for w in r.warnings:
                say("[dim]{}: {}[/]", r.path, w, err=True)
