"""Packaging runs of one commit into a records folder, refused when a triage check fails."""

from __future__ import annotations

import json
import platform
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from datetime import date as Date
from importlib import metadata
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.errors import DataError, PgolfError
from pgolf.ledger import LedgerRow
from pgolf.logs import RunResult, read_run_result
from pgolf.rules import get_ruleset
from pgolf.submission.checks import FAIL, CheckOptions, CheckResult, run_checks
from pgolf.submission.folder import SCRIPT_NAME, load_path
from pgolf.workspace import Workspace

_PYTORCH_LINE = re.compile(r"^Running PyTorch (\S+)", re.MULTILINE)


class PackageRefused(PgolfError):
    """The runs cannot be packaged, or the package fails a triage check."""


@dataclass
class _Run:
    run_id: str
    row: LedgerRow
    result: RunResult
    raw: dict[str, Any]  # result.json as written by the script (device, eval_ms, ...)
    log: Path
    command: str


@dataclass
class Package:
    """A written records folder and the checks it passed."""

    folder: Path
    submission: dict[str, Any]
    checks: list[CheckResult]


def folder_name(name: str, day: Date) -> str:
    """`YYYY-MM-DD_Name` with anything but letters, digits, `.`, `+`, `-` turned into `_`."""
    clean = re.sub(r"[^\w.+\-]+", "_", name.strip()).strip("_")
    if not clean:
        raise PackageRefused("--name must contain letters or digits")
    return f"{day.isoformat()}_{clean}"


def _load_run(ws: Workspace, run_id: str, rows: dict[str, LedgerRow]) -> _Run:
    folder = ws.run_dir(run_id)
    if run_id not in rows:
        raise PackageRefused(f"run {run_id}: no ledger row in results.tsv")
    if not folder.is_dir():
        raise PackageRefused(f"run {run_id}: no folder {folder}")
    result = read_run_result(folder)
    if result is None or not result.complete or result.val_bpb is None:
        why = "no result" if result is None else (result.reason or result.status)
        raise PackageRefused(f"run {run_id}: not a finished run ({why})")
    log = folder / "train.log"
    if not log.is_file():
        raise PackageRefused(f"run {run_id}: no train.log")
    try:  # finite=False: the scores come from read_run_result, which judges each value
        raw = statefile.load_json(folder / "result.json", missing={}, finite=False)
    except DataError:
        raw = {}
    command_file = folder / "command.txt"
    command = command_file.read_text(encoding="utf-8").strip() if command_file.is_file() else ""
    return _Run(run_id, rows[run_id], result, raw if isinstance(raw, dict) else {}, log, command)


def _hardware(runs: list[_Run]) -> str:
    devices = {str(r.raw.get("device", "")).lower() for r in runs}
    world = max((r.result.world_size or 1) for r in runs)
    if devices <= {"cpu"}:
        return f"CPU ({platform.machine()}, {world} process{'es' if world > 1 else ''})"
    return f"{world}x {'GPU' if devices <= {'cuda'} else '/'.join(sorted(devices))}"


def _pytorch_version(runs: list[_Run]) -> str:
    for run in runs:
        match = _PYTORCH_LINE.search(run.log.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match[1]
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "unknown"


def _seed_of(run: _Run) -> int:
    seed = run.result.seed if run.result.seed is not None else run.row.seed
    if seed is None:
        raise PackageRefused(f"run {run.run_id}: its seed is unknown")
    return seed


def _submission_json(runs: list[_Run], *, name: str, author: str, github_id: str, blurb: str, day: Date,
                     track: str, code_bytes: int) -> dict[str, Any]:
    scores = [r.result.val_bpb for r in runs]
    losses = [r.result.val_loss for r in runs if r.result.val_loss is not None]
    artifacts = [r.result.artifact_bytes for r in runs if r.result.artifact_bytes is not None]
    per_seed = {
        str(_seed_of(r)): {
            "val_bpb": r.result.val_bpb, "val_loss": r.result.val_loss, "artifact_bytes": r.result.artifact_bytes,
            "train_seconds": r.result.train_seconds, "steps": r.result.steps, "run_id": r.run_id,
        } for r in runs
    }
    return {
        "author": author, "github_id": github_id, "name": name, "blurb": blurb, "date": day.isoformat(),
        "track": track,
        "val_bpb": round(statistics.fmean(scores), 8),  # type: ignore[arg-type]
        "val_bpb_std": round(statistics.stdev(scores), 8) if len(scores) > 1 else 0.0,  # type: ignore[arg-type]
        "val_loss": round(statistics.fmean(losses), 8) if losses else None,
        "seeds": [_seed_of(r) for r in runs], "seed_results": per_seed,
        "bytes_total": max(artifacts) if artifacts else None, "bytes_code": code_bytes,
        "hardware": _hardware(runs), "pytorch_version": _pytorch_version(runs),
    }


def _readme(meta: dict[str, Any], runs: list[_Run], logs: dict[str, str]) -> str:
    lines = [f"# {meta['name']}", "", meta["blurb"] or "_No description given._", "",
             f"**val_bpb {meta['val_bpb']:.8f}** (mean of {len(runs)} seed(s), std {meta['val_bpb_std']:.8f}); "
             f"largest artifact {meta['bytes_total']:,} bytes; hardware: {meta['hardware']}; "
             f"PyTorch {meta['pytorch_version']}.", "",
             "| seed | val_bpb | val_loss | artifact bytes | train s | steps | log |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        r, seed = run.result, _seed_of(run)
        lines.append(f"| {seed} | {r.val_bpb:.8f} | {r.val_loss if r.val_loss is not None else '-'} | "
                     f"{r.artifact_bytes if r.artifact_bytes is not None else '-'} | {r.train_seconds} | {r.steps} "
                     f"| `{logs[run.run_id]}` |")
    lines += ["", "## Reproduce", "", "Each seed was run from this folder's `train_gpt.py` with:", ""]
    for run in runs:
        lines += [f"Seed {_seed_of(run)} (run `{run.run_id}`, commit `{run.row.commit[:12]}`):", "", "```",
                  run.command or "(the command was not recorded)", "```", ""]
    lines.append("Packaged by pgolf (`pgolf submit package`).")
    return "\n".join(lines) + "\n"


def package_runs(ws: Workspace, run_ids: list[str], *, name: str, track: str, author: str, github_id: str,
                 blurb: str = "", day: Date | None = None, out_dir: Path | None = None,
                 options: CheckOptions | None = None) -> Package:
    """Write records/<track>/<date>_<name>/ from runs of one commit; refused (and removed) when a check FAILs."""
    ruleset = get_ruleset(track)
    if not run_ids:
        raise PackageRefused("no runs given")
    if len(set(run_ids)) != len(run_ids):
        raise PackageRefused("a run is listed twice")
    rows = {r.run_id: r for r in ws.ledger().rows() if r.run_id}
    runs = [_load_run(ws, run_id, rows) for run_id in run_ids]
    commits = {r.row.commit for r in runs}
    if len(commits) != 1:
        raise PackageRefused(f"the runs come from {len(commits)} commits ({', '.join(sorted(c[:8] for c in commits))}): "
                             "a submission's seeds must share one configuration")
    seeds = [_seed_of(r) for r in runs]
    if len(set(seeds)) != len(seeds):
        raise PackageRefused(f"seeds repeat: {seeds}")
    commit = commits.pop()
    script = _script_at(ws, commit)
    day = day or Date.today()
    folder = (out_dir or ws.root / "records") / track / folder_name(name, day)
    if folder.exists():
        raise PackageRefused(f"{folder} already exists")
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again on refusal
    folder.mkdir(parents=True)
    try:
        (folder / SCRIPT_NAME).write_bytes(script)
        logs = {}
        for run in runs:
            logs[run.run_id] = f"train_seed{_seed_of(run)}.log"
            shutil.copyfile(run.log, folder / logs[run.run_id])
        meta = _submission_json(runs, name=name, author=author, github_id=github_id, blurb=blurb, day=day,
                                track=track, code_bytes=len(script))
        (folder / "submission.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(_readme(meta, runs, logs), encoding="utf-8")
        checks = run_checks(load_path(folder), ruleset, options)
    except BaseException:
        _remove(folder, created)
        raise
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        _remove(folder, created)
        raise PackageRefused("refused: " + "; ".join(f"{c.name}: {c.summary}" for c in failed))
    return Package(folder, meta, checks)



def _remove(folder: Path, created: list[Path]) -> None:
    """Undo a refused package: the folder, and the empty parents (records/<track>/) made for it."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in created[1:]:
        try:
            parent.rmdir()  # only when empty: anything else there is the user's
        except OSError:
            break


def _script_at(ws: Workspace, commit: str) -> bytes:
    """The script's exact bytes at `commit` (what the runs executed and the artifact counts)."""
    proc = subprocess.run(["git", "show", f"{commit}:{SCRIPT_NAME}"], cwd=ws.root, capture_output=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PackageRefused(f"cannot read {SCRIPT_NAME} at commit {commit[:8]}: {detail[-1] if detail else ''}")
    return proc.stdout
