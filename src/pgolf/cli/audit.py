"""`pgolf audit lut`: does a script count validation bytes the canonical way?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgolf.cli._common import console, print_json, say
from pgolf.submission.probe import (
    EXECUTE_TIMEOUT_S,  # light; lut_audit (numpy, the parsers) loads in the command
)

audit_app = typer.Typer(help="Audits of submitted scripts.", no_args_is_help=True)
_STYLE = {"CORRECT": "green", "BUGGY": "bold red", "FAIL": "bold red"}


@audit_app.command("lut")
def audit_lut(
    script: Annotated[Path, typer.Argument(help="The training script (wrappers are decoded, never run).")],
    tokenizer: Annotated[Path | None, typer.Option(help="SentencePiece model: compare its full tables too.")
                         ] = None,
    val: Annotated[str | None, typer.Option(
        help="Glob of validation shards: measure the byte-count inflation (needs --tokenizer).")] = None,
    execute: Annotated[bool, typer.Option(
        "--execute", help="Run ONLY the extracted table-building function, in a subprocess with a timeout. "
        "This runs the submission's code: use it only on code you are willing to run.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds allowed for --execute.", min=1)] = EXECUTE_TIMEOUT_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Classify the script's BPB byte tables: CORRECT, BUGGY (named deviations), OBFUSCATED, UNKNOWN, N/A, FAIL.

    Static by default: the table-building function is interpreted from its AST on a probe vocabulary and
    (with --tokenizer) on the real one, and compared entry by entry with pgolf's canonical tables. A stub
    that execs a sibling file is audited by that file. N/A: a byte-level model; FAIL: an empty script.
    Exit 1 when BUGGY or FAIL.
    """
    from pgolf.submission.lut_audit import BUGGY, FAILED, audit_script, inflation_percent, load_val_tokens

    val_tokens = None
    if val is not None:
        if tokenizer is None:
            raise typer.BadParameter("--val needs --tokenizer", param_hint="--val")
        val_tokens = load_val_tokens(val)
    audit = audit_script(script, tokenizer=tokenizer, val_tokens=val_tokens, execute=execute, timeout=timeout)
    if as_json:
        print_json(audit.as_dict())
    else:
        style = _STYLE.get(audit.status, "yellow")
        where = f" ({{}} at line {audit.line})" if audit.function else ""
        say(f"[{style}]{{}}[/]{where} [dim]{{}}[/]", audit.status, *([audit.function] if audit.function else []),
            audit.mode)
        for layer in audit.wrapper_layers:
            say("  decoded wrapper {}", layer)
        if audit.reason:
            say("  {}", audit.reason)
        for dev in audit.deviations:
            say("  [red]{}[/]: {}", dev.code, dev.description)
            for example in dev.examples:
                say("    [dim]{}[/]", example)
        if audit.mismatched_entries is not None:
            say(f"  {audit.mismatched_entries} table entries differ from the canonical ones for {{}}",
                audit.tokenizer)
        if audit.inflation is not None:
            console.print(f"  bytes counted {audit.script_bytes:,} vs canonical {audit.canonical_bytes:,}: "
                          f"inflation {inflation_percent(audit)} (val_bpb deflated accordingly)")
    if audit.status in (BUGGY, FAILED):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(audit_app, name="audit")
