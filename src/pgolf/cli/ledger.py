"""`pgolf ledger`: results.tsv as a table that reads at 80 columns, with each decision's gain and reason."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from pgolf.cli._common import console, current_workspace, fmt_bpb, fmt_bytes, print_json, say
from pgolf.cli.live import STATUS_STYLE as _STATUS_STYLE  # one style per status, as `pgolf run` shows it
from pgolf.errors import ConfigError
from pgolf.ledger import LedgerRow, last_runs

# The tiers pgolf.toml can configure ([tiers.local], [tiers.ssh], [tiers.runpod]).
KNOWN_TIERS = ("local", "ssh", "runpod")
_WIDE = 120  # from this width on, every column gets its own; below, the reason goes under the description


def _explained(ws: Any, row: LedgerRow) -> tuple[float | None, str, dict[str, Any]]:
    """The decision's gain, its reason (a discard with a positive gain names the bar it missed) and its
    numbers for --json."""
    from pgolf.loop.explain import load_explanation

    explanation = load_explanation(ws.run(row.run_id)) if row.run_id else None
    if explanation is None:
        return None, "", {"bar": None, "n": None, "p_value": None}
    reason = explanation.short_reason()
    # A failed run's reason is already in its description; saying it twice only costs width.
    if reason and reason in row.description:
        reason = ""
    return explanation.gain, reason, {"bar": explanation.bar, "n": explanation.n, "p_value": explanation.p_value}


def ledger(
    tier: Annotated[str | None, typer.Option(help=f"Only runs of this tier ({', '.join(KNOWN_TIERS)}).")] = None,
    last: Annotated[int, typer.Option("--limit", "-n", "--last", help="Show the last N runs.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the ledger of runs (results.tsv), newest last, with each decision's gain and reason."""
    ws = current_workspace()
    contents = ws.ledger().load()
    seen = {r.tier for r in contents.rows}
    if tier is not None and tier not in KNOWN_TIERS and tier not in seen:
        raise ConfigError(f"unknown tier {tier!r}; choose one of {', '.join(KNOWN_TIERS)}")
    rows = last_runs(contents.rows, last, tier)
    for d in contents.damaged:  # on stderr, so --json stays parseable and damage is never hidden
        say(f"[yellow]warning:[/] results.tsv line {d.line_number} is damaged: {{}}", d.reason, err=True)
    explained = [(r, *_explained(ws, r)) for r in rows]
    if as_json:
        print_json([{**r.as_dict(), "gain": gain, "reason": reason, **numbers}
                    for r, gain, reason, numbers in explained])
        return
    if not rows:
        console.print(f"no runs of tier {tier} yet" if tier else "no runs yet")
        return
    console.print(_table([(r, gain, reason) for r, gain, reason, _ in explained],
                         show_tier=tier is None and len({r.tier for r in rows}) > 1))


def _table(explained: list[tuple[LedgerRow, float | None, str]], *, show_tier: bool) -> Table:
    """Status, scores and gain never wrap; the description (and, when narrow, the reason under it) does."""
    width = console.width
    wide = width >= _WIDE
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", no_wrap=True)
    if wide:
        table.add_column("commit", no_wrap=True)
    if wide or show_tier:
        table.add_column("tier", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=max(len(r.status) for r, _, _ in explained))
    table.add_column("val_bpb", no_wrap=True, justify="right")
    table.add_column("gain", no_wrap=True, justify="right")
    if width >= 100:
        table.add_column("bytes", no_wrap=True, justify="right")
    if wide:
        table.add_column("promoted", no_wrap=True)
        table.add_column("cost", no_wrap=True, justify="right")
    table.add_column("description" if wide else "description / reason", ratio=1, overflow="fold")
    if wide:
        table.add_column("reason", ratio=1, overflow="fold")
    for r, gain, reason in explained:
        style = _STATUS_STYLE.get(r.status, "")
        cells: list[Any] = [Text(r.run_id)]
        if wide:
            cells.append(Text(r.commit[:8]))
        if wide or show_tier:
            cells.append(Text(r.tier))
        cells += [Text(r.status, style=style), fmt_bpb(r.val_bpb), "-" if gain is None else f"{gain:+.4f}"]
        if width >= 100:
            cells.append(fmt_bytes(r.artifact_bytes))
        if wide:
            cells += [Text(r.promoted), f"${r.cost_usd:.2f}" if r.cost_usd else "-"]
        # Descriptions come from agents, LLMs and research: Text, never markup.
        if wide:
            cells += [Text(r.description), Text(reason, style="dim")]
        else:
            cell = Text(r.description)
            if reason:
                cell.append("\n" + reason, style="dim")
            cells.append(cell)
        table.add_row(*cells)
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(ledger)
