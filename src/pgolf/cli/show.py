"""`pgolf show RUN`: why a run ended as it did, in one screen (decision, preflight, command, result, diff, log)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pgolf.cli._common import console, current_workspace, fmt_bpb, print_json
from pgolf.errors import ConfigError
from pgolf.status import Status

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a folder name, never a path


class _Sheet:
    """Labelled lines in two columns, so that a long value wraps under itself, not under the labels.

    Values are Text, never markup: they come from files, agents and logs.
    """

    def __init__(self) -> None:
        self.grid = Table.grid(padding=(0, 1))
        self.grid.add_column(style="bold", no_wrap=True, min_width=9)
        self.grid.add_column(overflow="fold")

    def say(self, label: str, text: str, style: str = "") -> None:
        self.grid.add_row(label, Text(text, style=style))


def _plain(text: str, style: str = "", *, verbatim: bool = False) -> None:
    """A line of text; `verbatim` (diff and log lines) is never re-wrapped, the rest wraps at the width."""
    console.print(Text(text, style=style), soft_wrap=verbatim)


def _pick_run(ws: Any, run: str) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
    """The run id asked for (`last` is the newest), its ledger row, and the rows of the runs made for it
    (a candidate's replicates and the incumbent's paired seeds); a run that is not there is one line."""
    rows = ws.ledger().rows()
    if run == "last":
        folders = sorted(p.name for p in ws.runs_dir.iterdir()) if ws.runs_dir.is_dir() else []
        if not rows and not folders:
            raise ConfigError("no runs yet in this workspace")
        run = max([r.run_id for r in rows] + folders)
    if not _RUN_ID.match(run):
        raise ConfigError(f"{run!r} is not a run id (like r0007)")
    row = next((r for r in reversed(rows) if r.run_id == run), None)
    if row is None and not ws.run(run).exists():
        known = [r.run_id for r in rows]
        hint = f" (runs: {known[0]} … {known[-1]})" if known else ""
        raise ConfigError(f"no run {run} in this workspace{hint}")
    related = [{"run_id": r.run_id, "status": r.status, "seed": r.seed, "val_bpb": r.val_bpb}
               for r in rows if r.parent_run == run and r.status in (Status.REPLICATE, Status.BASELINE)]
    return run, row.as_dict() if row is not None else None, related


def show(
    run: Annotated[str, typer.Argument(help="A run id (r0007), or `last`.")],
    lines: Annotated[int, typer.Option("--lines", min=0, help="Lines of the training log to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show why a run ended as it did: decision (gain, bar, n, σ, p), preflight, command, result, steps, diff, log."""
    from pgolf.loop.explain import describe_run

    ws = current_workspace()
    run_id, row, related = _pick_run(ws, run)
    data = {**describe_run(ws.run(run_id), row, log_lines=lines), "related_runs": related}
    if as_json:
        print_json(data)
        return
    _render(data)


def _render(d: dict[str, Any]) -> None:
    sheet = _Sheet()
    _say = sheet.say
    row = d["row"]
    head = [d["run_id"]]
    if row:
        head += [row["status"], row["tier"], f"commit {row['commit'][:8]}"]
        if row.get("seed") is not None:
            head.append(f"seed {row['seed']}")
        if row.get("parent_run"):
            head.append(f"parent {row['parent_run']}")
        if row.get("finished_at"):
            head.append(row["finished_at"])
    else:
        head.append("not in the ledger (in flight, or never recorded)")
    _plain(" · ".join(head), "bold")
    if row and row.get("description"):
        _plain(row["description"])
    _decision(d, _say)
    for index, other in enumerate(d["related_runs"]):
        _say("Seeds" if index == 0 else "", f"{other['run_id']} {other['status']} {fmt_bpb(other['val_bpb'])} "
                                             f"(seed {other['seed']})")
    _preflight(d.get("preflight"), _say)
    for index, line in enumerate(d["command"]):
        _say("Command" if index == 0 else "", line)
    _result(d, _say)
    if d.get("promotion"):
        _say("Promotion", str(d["promotion"].get("promoted", "?")) + (
            f": {d['promotion']['reason']}" if d["promotion"].get("reason") else ""))
    console.print(sheet.grid)
    if d["diff"]:
        _plain(f"Diff ({d['folder']}/diff.patch)", "bold")
        for line in d["diff"].rstrip("\n").splitlines():
            style = "green" if line.startswith("+") and not line.startswith("+++") else \
                "red" if line.startswith("-") and not line.startswith("---") else ""
            _plain("  " + line, style, verbatim=True)
    if d["log_tail"]:
        _plain(f"Log (last {len(d['log_tail'])} lines of {d['folder']}/train.log)", "bold")
        for line in d["log_tail"]:
            _plain("  " + line, "dim", verbatim=True)
    elif d["agent_tail"]:
        _plain(f"Agent log (last lines of {d['folder']}/agent.log)", "bold")
        for line in d["agent_tail"]:
            _plain("  " + line, "dim", verbatim=True)


def _decision(d: dict[str, Any], _say: Any) -> None:
    decision = d["decision"]
    if decision is None:
        _say("Decision", f"none recorded ({d['decision_problem']})" if d["decision_problem"] else "none recorded")
        return
    _say("Decision", f"{decision['status']}: {d['decision_reason']}" if d["decision_reason"] else decision["status"])
    if d["decision_numbers"]:
        _say("", d["decision_numbers"])
    for gate in d["gates"]:
        if isinstance(gate, dict):
            mark = "ok" if gate.get("passed") else "FAILED"
            _say("", f"gate {gate.get('name', '?')} {mark}: {gate.get('detail', '')}")
    failure = d["proposer_failure"]
    if isinstance(failure, dict):
        code, cause = failure.get("exit_code"), str(failure.get("cause", "failed"))
        shown = cause if code is None or str(code) in cause else f"{cause} (exit code {code})"
        _say("Proposer", shown, "red")
        for line in failure.get("stderr_tail") or []:
            _say("", f"| {line}", "red")


def _preflight(preflight: dict[str, Any] | None, _say: Any) -> None:
    if not preflight:
        return
    checks = [c for c in preflight.get("checks") or [] if isinstance(c, dict)]
    failed = [c for c in checks if not c.get("passed")]
    verdict = "ok" if preflight.get("ok") else "FAILED"
    _say("Preflight", f"{verdict}: {len(checks) - len(failed)} of {len(checks)} checks passed")
    for check in checks:
        mark = "ok" if check.get("passed") else ("FAILED" if check.get("fatal", True) else "warning")
        _say("", f"{check.get('name', '?')} {mark}: {check.get('detail', '')}", "" if check.get("passed") else "red")


def _result(d: dict[str, Any], _say: Any) -> None:
    result, steps = d["result"], d["steps"]
    if result:
        parts = [f"val_bpb {fmt_bpb(result.get('val_bpb'))}"]
        if result.get("artifact_bytes") is not None:
            parts.append(f"artifact {result['artifact_bytes']:,} bytes")
        if result.get("train_seconds") is not None:
            parts.append(f"train {result['train_seconds']:.1f} s")
        if result.get("peak_memory_mb") is not None:
            parts.append(f"peak memory {result['peak_memory_mb'] / 1024:.2f} GiB")
        parts.append(f"status {result.get('status', '?')}")
        if result.get("reason"):
            parts.append(result["reason"])
        _say("Result", " · ".join(parts))
    if steps["done"] is not None or steps["planned"] is not None:
        done = "?" if steps["done"] is None else f"{steps['done']:,}"
        planned = "" if steps["planned"] is None else f" of {steps['planned']:,}"
        cut = "cut by the wallclock cap" if steps["cut_by_wallclock"] else (
            "all planned steps" if steps["done"] is not None and steps["done"] == steps["planned"] else
            "not all planned steps (no wallclock cut in the log)")
        _say("Steps", f"{done}{planned}: {cut}", "yellow" if steps["cut_by_wallclock"] else "")


def register(app: typer.Typer) -> None:
    """Add `pgolf show`."""
    app.command()(show)
