"""`pgolf check`: triage a records folder, a script, or a GitHub PR against the challenge rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pgolf.cli._common import console, current_workspace, print_json
from pgolf.cli.options import ruleset_option
from pgolf.config import secret
from pgolf.errors import ConfigError, DataError, WorkspaceError
from pgolf.rules import DEFAULT_RULESET, Ruleset, get_ruleset
from pgolf.submission.github import API_URL, DEFAULT_REPO
from pgolf.workspace import Workspace

if TYPE_CHECKING:  # the checks pull in numpy and the parsers: imported by the command that runs them
    from pgolf.submission.checks import CheckOptions


def optional_workspace() -> Workspace | None:
    """The current workspace, or None outside one (checking needs none)."""
    try:
        return current_workspace()
    except WorkspaceError:
        return None


def resolve_ruleset(name: str | None, ws: Workspace | None) -> Ruleset:
    """The named ruleset, else the workspace's (with its overrides), else the default."""
    if name:
        return get_ruleset(name)
    return ws.config().get_ruleset() if ws is not None else get_ruleset(DEFAULT_RULESET)


def _parse_against(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--against {text!r}: give a val_bpb or comma-separated per-seed values") from None
    if not values:
        raise ConfigError("--against needs at least one value")
    return values


def _frontier(ws: Workspace | None, track: str) -> tuple[list[float], str]:
    from pgolf.research.competitors import frontier, workspace_competitors  # only --frontier needs it

    entries = workspace_competitors(ws.state_dir) if ws is not None else []
    best = frontier(entries).get(track)
    if best is None or best.val_bpb is None:
        raise DataError(f"--frontier: no known frontier for {track} (run `pgolf competitors scan` in a workspace, "
                        "or pass --against BPB)")
    return [best.val_bpb], f"{best.name} ({best.pr_or_folder}) {best.val_bpb}"


def _default_manifest(ws: Workspace | None) -> Path | None:
    if ws is None:
        return None
    dataset_dir = ws.resolve(ws.config().data.dataset_dir)
    for candidate in (dataset_dir / "demo.json", dataset_dir.parent.parent / "manifest.json",
                      dataset_dir.parent / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


def check_options(ws: Workspace | None, track: str, against: str | None, use_frontier: bool,
                  manifest: Path | None, *, val_data: Path | None = None, tokenizer: Path | None = None,
                  folder: Path | None = None) -> CheckOptions:
    """The comparison targets for the checks, from the command line, the workspace and the records folder."""
    from pgolf.submission.checks import CheckOptions
    from pgolf.submission.folder import manifest_val_tokens

    options = CheckOptions()
    if against is not None:
        options.against, options.against_label = _parse_against(against), f"--against {against}"
    elif use_frontier:
        options.against, options.against_label = _frontier(ws, track)
    manifest = manifest or _default_manifest(ws)
    if manifest is not None:
        options.val_tokens_expected, options.val_vocab, options.val_tokens_source = manifest_val_tokens(manifest)
    options.val_data, options.tokenizer = _sidecar_data(val_data, tokenizer, folder)
    return options


def _sidecar_data(val_data: Path | None, tokenizer: Path | None, folder: Path | None
                  ) -> tuple[Path | None, Path | None]:
    """What a byte sidecar is checked against: the options, else what the records folder itself holds."""
    if val_data is not None and not val_data.is_dir():
        what = "not a folder" if val_data.exists() else "no such folder"
        raise ConfigError(f"--val-data {val_data}: {what} (give the folder holding fineweb_val_*.bin and their "
                          "fineweb_val_bytes_*.bin sidecars)")
    if tokenizer is not None and not tokenizer.is_file():
        what = "a folder, not a file" if tokenizer.is_dir() else "no such file"
        raise ConfigError(f"--tokenizer {tokenizer}: {what} (give the SentencePiece .model the shards were encoded "
                          "with)")
    if folder is not None and folder.is_dir() and (val_data is None or tokenizer is None):
        from pgolf.submission.sidecar import find_sidecar_data

        found_data, found_model = find_sidecar_data(folder)
        val_data, tokenizer = val_data or found_data, tokenizer or found_model
    return val_data, tokenizer


def check(
    path: Annotated[Path | None, typer.Argument(help="A records folder or a training script.")] = None,
    pr: Annotated[int | None, typer.Option("--pr", help="Check the records folder a GitHub PR adds.")] = None,
    repo: Annotated[str, typer.Option(help="Repository of --pr.")] = DEFAULT_REPO,
    against: Annotated[str | None, typer.Option(metavar="BPB[,BPB...]",
        help="Frontier val_bpb to beat (one value, or comma-separated per-seed values for Welch's test).")] = None,
    use_frontier: Annotated[bool, typer.Option("--frontier", help="Compare with the competitor store's frontier.")
                            ] = False,
    track: Annotated[str | None, ruleset_option("Rules to check against.",
                                                show_default="the folder's track, else the workspace's")] = None,
    manifest: Annotated[Path | None, typer.Option(
        help="Dataset manifest.json (or a demo dataset's demo.json) for the validation-coverage check.")] = None,
    val_data: Annotated[Path | None, typer.Option("--val-data", metavar="DIR", show_default="the records folder's",
        help="Verify a byte sidecar: the folder of validation shards fineweb_val_*.bin and the "
             "fineweb_val_bytes_*.bin files a script (e.g. CaseOps) divides by instead of the tokenizer's tables. "
             "Each entry is compared with the bytes its token decodes to (needs --tokenizer).")] = None,
    tokenizer: Annotated[Path | None, typer.Option(metavar="MODEL", show_default="the records folder's one *.model",
        help="The SentencePiece model the --val-data shards were encoded with.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown for a PR comment.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every evidence line.")] = False,
    api_url: Annotated[str, typer.Option(hidden=True, help="GitHub API base URL.")] = API_URL,
) -> None:
    """Triage a submission: each rule gets PASS/WARN/FAIL/UNKNOWN/N/A with evidence; exit 1 on any FAIL.

    Nothing is executed (wrappers are decoded, code is read as an AST) and nothing is posted: --markdown only
    prints a comment you may paste yourself.
    """
    from pgolf.submission.checks import FAIL, run_checks
    from pgolf.submission.folder import Submission, load_path
    from pgolf.submission.github import fetch_pr
    from pgolf.submission.report import report_dict, report_markdown, report_table

    if (path is None) == (pr is None):
        raise ConfigError("give a PATH or --pr N (one of them)")
    ws = optional_workspace()
    sub: Submission
    if pr is not None:
        sub = fetch_pr(pr, repo, token=secret("GITHUB_TOKEN", ws.root if ws else None), api_url=api_url)
    else:
        sub = load_path(path)  # type: ignore[arg-type]
    ruleset = resolve_ruleset(track or sub.track, ws)
    options = check_options(ws, ruleset.name, against, use_frontier, manifest, val_data=val_data,
                            tokenizer=tokenizer, folder=path if pr is None else None)
    results = run_checks(sub, ruleset, options)
    if as_json:
        print_json(report_dict(sub.where, ruleset.name, results))
    elif markdown:
        print(report_markdown(sub.where, ruleset.name, results), end="")
    else:
        console.print(report_table(sub.where, results, verbose))
    if any(r.status == FAIL for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(check)

