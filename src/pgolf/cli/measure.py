"""`pgolf measure`: artifact bytes (code + compressed model) against the ruleset's limit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pgolf.cli._common import console, current_workspace, print_json, say
from pgolf.cli.options import ruleset_option
from pgolf.errors import ConfigError, WorkspaceError
from pgolf.rules import DEFAULT_RULESET, Ruleset, get_ruleset


def _ruleset(name: str | None) -> Ruleset:
    """The named ruleset, else the workspace's (with its overrides), else the default track."""
    if name is not None:
        return get_ruleset(name)
    try:
        cfg = current_workspace().config()
    except WorkspaceError:
        return get_ruleset(DEFAULT_RULESET)
    return get_ruleset(cfg.ruleset, cfg.rules.model_dump())


def measure(
    script: Annotated[Path | None, typer.Option(help="The training script as it ships (its bytes are the code).")] = None,
    model: Annotated[list[Path] | None, typer.Option(help="A compressed model file as it ships; repeat for several.")] = None,
    compressors: Annotated[Path | None, typer.Option(help="Instead: a serialized state dict to compress with zlib-9, lzma-9e, zstd-22 and brotli-11.")] = None,
    ruleset: Annotated[str | None, ruleset_option("Limits to measure against.",
                                                  show_default="the workspace's, else track_10min_16mb")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure the artifact: script bytes + model bytes, the total and the headroom; exit 1 over the limit.

    Sizes are read from the files that ship, never estimated. With --compressors MODEL, report the
    size of MODEL under each compressor instead (zstd and brotli when installed).
    """
    from pgolf.artifact import compressed_sizes, measure_artifact

    if compressors is not None:
        sizes = compressed_sizes(compressors)
        if as_json:
            print_json({"path": compressors, "raw_bytes": compressors.stat().st_size, "compressed": sizes})
            return
        table = Table("compressor", "bytes")
        table.add_row("raw", f"{compressors.stat().st_size:,}")
        for name, size in sizes.items():
            table.add_row(name, "not installed" if size is None else f"{size:,}")
        console.print(table)
        return
    if script is None or not model:
        raise ConfigError("measure: give --script and at least one --model (or --compressors MODEL)")
    rules = _ruleset(ruleset)
    size = measure_artifact(script, model, rules)
    if as_json:
        print_json({**size.as_dict(), "ruleset": rules.name})
    else:
        say(f"code      {size.code_bytes:>12,}  {{}}", script)
        say(f"model     {size.model_bytes:>12,}  {{}}", ", ".join(map(str, model)))
        console.print(f"total     {size.total_bytes:>12,}")
        say(f"limit     {size.limit:>12,}  ({{}})", rules.name)
        verdict = "[green]ok[/]" if size.ok else "[bold red]over the limit[/]"
        console.print(f"headroom  {size.headroom:>12,}  {verdict}")
    if not size.ok:
        raise typer.Exit(1)
