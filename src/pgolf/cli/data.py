"""`pgolf data demo|verify|fineweb`: build, check and download datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pgolf.cli._common import console, err_console, plain, print_json, say

data_app = typer.Typer(
    help="Datasets in the challenge's shard format: the offline demo corpus, FineWeb, and checks.",
    no_args_is_help=True,
)


@data_app.command("demo")
def data_demo(
    out: Annotated[Path, typer.Option("--out", help="Folder that receives datasets/ and tokenizers/.")] = Path("data"),
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when an identical build exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build the offline demo corpus from Python's own documentation (nothing is downloaded).

    Writes OUT/datasets/pydocs_sp1024/fineweb_{val,train}_NNNNNN.bin and
    OUT/tokenizers/pydocs_1024_bpe.model: the same layout as the real fineweb10B_sp1024 dataset,
    with a 1024-piece BPE tokenizer that decodes back to the exact original text.
    """
    from pgolf.data.demo import build_demo_dataset

    progress = (lambda _m: None) if as_json else (lambda m: say("[dim]{}[/]", m, err=True))
    ds = build_demo_dataset(out, force=force, progress=progress)
    if as_json:
        print_json({
            "dataset_dir": ds.dataset_dir, "tokenizer_path": ds.tokenizer_path, "vocab_size": ds.vocab_size,
            "docs_train": ds.docs_train, "docs_val": ds.docs_val, "tokens_train": ds.tokens_train,
            "tokens_val": ds.tokens_val, "val_text_bytes": ds.val_text_bytes, "reused": ds.reused,
        })
        return
    verb = "reused" if ds.reused else "built"
    say(f"{verb} {{}}", ds.dataset_dir)
    console.print(f"  train  {ds.docs_train:,} documents  {ds.tokens_train:,} tokens")
    console.print(f"  val    {ds.docs_val:,} documents  {ds.tokens_val:,} tokens  {ds.val_text_bytes:,} bytes")
    say(f"  tokenizer {{}} (vocab {ds.vocab_size})", ds.tokenizer_path)


@data_app.command("verify")
def data_verify(
    directory: Annotated[Path, typer.Argument(help="A dataset folder holding fineweb_val_*.bin / fineweb_train_*.bin.")],
    tokenizer: Annotated[Path | None, typer.Option(help="SentencePiece model: vocab size and BOS id.")] = None,
    vocab_size: Annotated[int | None, typer.Option(help="Vocab size for the token range check.", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check shard headers, file sizes, token range and BOS=1 at document starts; exit 1 on any problem.

    The vocab size comes from --vocab-size, else --tokenizer, else the folder's `_spNNNN` suffix.
    """
    from pgolf.data.verify import verify_dataset

    report = verify_dataset(directory, tokenizer=tokenizer, vocab_size=vocab_size)
    if as_json:
        print_json({
            "directory": report.directory, "vocab_size": report.vocab_size, "ok": report.ok,
            "problems": report.problems, "warnings": report.warnings,
            "shards": [{"path": s.path, "split": s.split, "tokens": s.tokens, "documents": s.documents,
                        "max_token": s.max_token} for s in report.shards],
        })
    else:
        table = Table("shard", "split", "tokens", "documents", "max id")
        for s in report.shards:
            table.add_row(plain(s.path.name), s.split, f"{s.tokens:,}", f"{s.documents:,}", str(s.max_token))
        if report.shards:
            console.print(table)
        for w in report.warnings:
            say("[yellow]warning:[/] {}", w, err=True)
        for p in report.problems:
            say("[bold red]error:[/] {}", p, err=True)
        if report.ok:
            console.print(f"ok: {report.tokens('val'):,} val tokens, {report.tokens('train'):,} train tokens "
                          f"(vocab {report.vocab_size or 'unknown'})")
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("fineweb")
def data_fineweb(
    variant: Annotated[str, typer.Option(help="Tokenizer variant: sp1024 (the default dataset), sp8192, byte260, ...")] = "sp1024",
    train_shards: Annotated[int, typer.Option(help="How many 100M-token training shards to fetch.", min=0)] = 8,
    out: Annotated[Path, typer.Option("--out", help="Folder that receives datasets/ and tokenizers/.")] = Path("data"),
    repo: Annotated[str, typer.Option(help="Hugging Face dataset repo.")] = "willdepueoai/parameter-golf",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Download the challenge's FineWeb shards and tokenizer from the Hugging Face Hub (resumable).

    Files already in place are kept; run it again after an interruption to fetch only what is missing.
    Set HF_ENDPOINT to use a mirror.
    """
    from pgolf.data.fineweb import download_fineweb

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=as_json) as bar:
        task = bar.add_task("fetching", total=None)

        def _tick(index, total, item, fetched) -> None:
            bar.update(task, total=total, completed=index,
                       description=f"{'fetched' if fetched else 'present'} {item.local.name}")

        ds = download_fineweb(out, variant, train_shards, repo_id=repo, progress=_tick)
    if as_json:
        print_json({"dataset_dir": ds.dataset_dir, "tokenizer_path": ds.tokenizer_path,
                    "vocab_size": ds.vocab_size, "val_files": len(ds.val_files),
                    "train_files": len(ds.train_files), "downloaded": ds.downloaded,
                    "already_present": ds.already_present})
        return
    say(f"{{}}: {len(ds.val_files)} val + {len(ds.train_files)} train shards "
        f"({ds.downloaded} fetched, {ds.already_present} already present)", ds.dataset_dir)
    say("tokenizer {}", ds.tokenizer_path)
