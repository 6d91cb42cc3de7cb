"""`pgolf submit package`: a records folder from runs of one commit, refused when a check fails."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from pgolf.cli._common import console, current_workspace, print_json, say
from pgolf.cli.check import check_options
from pgolf.cli.options import ruleset_option
from pgolf.errors import ConfigError

submit_app = typer.Typer(help="Submissions: package runs as a records folder.", no_args_is_help=True)


def _git_config(root: Path, key: str) -> str | None:
    proc = subprocess.run(["git", "config", key], cwd=root, capture_output=True, text=True)
    return proc.stdout.strip() or None


@submit_app.command("package")
def package(
    runs: Annotated[str, typer.Option(metavar="RUN,RUN...", help="Run ids, comma-separated (one per seed, all at one commit).")],
    name: Annotated[str, typer.Option(help="Submission name (also the folder's name after the date).")],
    track: Annotated[str | None, ruleset_option("Track of the records folder.",
                                                show_default="the workspace's")] = None,
    author: Annotated[str | None, typer.Option(help="Author (default: git config user.name).")] = None,
    github_id: Annotated[str | None, typer.Option(help="GitHub id (default: git config github.user).")] = None,
    blurb: Annotated[str, typer.Option(help="One-paragraph description for submission.json and README.")] = "",
    out: Annotated[Path | None, typer.Option(help="Parent of records/<track>/ (default: the workspace).")] = None,
    against: Annotated[str | None, typer.Option(metavar="BPB", help="Frontier val_bpb for the significance check.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write records/<track>/<YYYY-MM-DD>_<Name>/ (train_gpt.py at the runs' commit, one log per seed,
    submission.json, README.md), run every check on it, and remove it again if any check FAILs.
    """
    ws = current_workspace()
    cfg = ws.config()
    track_name = track or cfg.ruleset
    author = author or _git_config(ws.root, "user.name")
    github_id = github_id or _git_config(ws.root, "github.user") or author
    if not author or not github_id:
        raise ConfigError("no author: pass --author and --github-id (or set git config user.name)")
    run_ids = [r.strip() for r in runs.split(",") if r.strip()]
    options = check_options(ws, track_name, against, False, None)
    from pgolf.submission.package import package_runs
    from pgolf.submission.report import report_table

    result = package_runs(ws, run_ids, name=name, track=track_name, author=author, github_id=github_id,
                          blurb=blurb, out_dir=(out / "records") if out else None, options=options)
    if as_json:
        print_json({"folder": str(result.folder), "submission": result.submission,
                    "checks": [c.as_dict() for c in result.checks]})
        return
    console.print(report_table(str(result.folder), result.checks))
    say(f"[green]packaged[/] {{}} (val_bpb {result.submission['val_bpb']:.8f} over {len(run_ids)} seed(s))",
        result.folder)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(submit_app, name="submit")
