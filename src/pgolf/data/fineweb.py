"""The challenge's published FineWeb shards and tokenizers, fetched from the Hugging Face Hub.

The dataset repo (`willdepueoai/parameter-golf`, repo type "dataset") keeps everything under
`datasets/`: `datasets/manifest.json`, `datasets/datasets/fineweb10B_<variant>/fineweb_{val,train}_NNNNNN.bin`
and `datasets/tokenizers/<name>.model`. Locally they land as `OUT/manifest.json`,
`OUT/datasets/fineweb10B_<variant>/...` and `OUT/tokenizers/...` (the layout `train_gpt.py` expects).

Resumable at two levels: a file already in place (and, for a shard, with a valid header and size) is
never fetched again, and `huggingface_hub` resumes a partial download from its `.incomplete` file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.data.shards import read_header
from pgolf.errors import DataError

REPO_ID = "willdepueoai/parameter-golf"
REMOTE_ROOT = "datasets"
DOWNLOAD_DIR = ".download"  # huggingface_hub's working folder under OUT (partial files live here)


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its path in the repo, where it goes, and what it is."""

    remote: str
    local: Path
    kind: str  # manifest, val, train, tokenizer


@dataclass(frozen=True)
class FineWebDataset:
    """A downloaded FineWeb variant: where its shards and tokenizer are, and what this call fetched."""

    root: Path
    dataset_dir: Path
    tokenizer_path: Path
    vocab_size: int
    val_files: list[Path]
    train_files: list[Path]
    downloaded: int
    already_present: int

    @property
    def val_glob(self) -> str:
        return str(self.dataset_dir / "fineweb_val_*.bin")


ProgressFn = Callable[[int, int, RemoteFile, bool], None]  # (index, total, file, fetched)


def dataset_name(variant: str) -> str:
    """The dataset folder of a variant: `sp1024` -> `fineweb10B_sp1024`, `byte260` -> `fineweb10B_byte260`."""
    if variant == "byte260" or (variant.startswith("sp") and variant[2:].isdigit()):
        return f"fineweb10B_{variant}"
    raise DataError(f"unknown FineWeb variant {variant!r} (expected sp<VOCAB> such as sp1024, or byte260)")


def plan_files(manifest: dict[str, Any], variant: str, train_shards: int, out: Path) -> list[RemoteFile]:
    """The val shards, the first `train_shards` train shards and the tokenizer files the manifest lists."""
    name = dataset_name(variant)
    try:
        entry = next(d for d in manifest["datasets"] if d.get("name") == name)
        stats = entry.get("stats") or {}
        val_count, train_max = int(stats["files_val"]), int(stats["files_train"])
        tokenizer = next(t for t in manifest["tokenizers"] if t.get("name") == entry["tokenizer_name"])
    except (KeyError, TypeError, ValueError, StopIteration):
        raise DataError(f"manifest.json has no usable entry for {name}") from None
    if not 0 <= train_shards <= train_max:
        raise DataError(f"{name} has {train_max} training shards; asked for {train_shards}")
    files: list[RemoteFile] = []
    for kind, count in (("val", val_count), ("train", train_shards)):
        for i in range(count):
            rel = f"datasets/{name}/fineweb_{kind}_{i:06d}.bin"
            files.append(RemoteFile(f"{REMOTE_ROOT}/{rel}", out / rel, kind))
    for key in ("model_path", "vocab_path"):
        if rel := tokenizer.get(key):
            files.append(RemoteFile(f"{REMOTE_ROOT}/{rel}", out / rel, "tokenizer"))
    return files


def download_fineweb(
    out: Path, variant: str = "sp1024", train_shards: int = 8, *, repo_id: str = REPO_ID,
    revision: str | None = None, endpoint: str | None = None, progress: ProgressFn | None = None,
) -> FineWebDataset:
    """Fetch the manifest, the val shards, `train_shards` train shards and the tokenizer into `out`."""
    out = Path(out)
    name = dataset_name(variant)
    fetch = _Fetcher(out, repo_id, revision, endpoint)
    manifest_file = RemoteFile(f"{REMOTE_ROOT}/manifest.json", out / "manifest.json", "manifest")
    try:
        fetch(manifest_file, force=True)  # small, and the only source of the shard counts
    except DataError:
        if not manifest_file.local.is_file():
            raise  # else the copy from an earlier run plans the same files
    try:
        manifest = statefile.load_json(manifest_file.local)
    except DataError as err:
        raise DataError(f"not a readable manifest: {err}") from None
    files = plan_files(manifest, variant, train_shards, out)
    fetched = 0
    for index, item in enumerate(files, start=1):
        did_fetch = not _present(item) and fetch(item)
        fetched += did_fetch
        if progress is not None:
            progress(index, len(files), item, did_fetch)
    entry = next(d for d in manifest["datasets"] if d.get("name") == name)
    model = next(f.local for f in files if f.kind == "tokenizer" and f.local.suffix == ".model")
    return FineWebDataset(
        root=out, dataset_dir=out / "datasets" / name, tokenizer_path=model,
        vocab_size=int(entry.get("vocab_size") or 0),
        val_files=[f.local for f in files if f.kind == "val"],
        train_files=[f.local for f in files if f.kind == "train"],
        downloaded=fetched, already_present=len(files) - fetched,
    )


def _present(item: RemoteFile) -> bool:
    """Whether a file is already in place and whole (a shard's header must match its size)."""
    if not item.local.is_file():
        return False
    if item.local.suffix != ".bin":
        return item.local.stat().st_size > 0
    try:
        read_header(item.local)
    except DataError:
        return False
    return True


class _Fetcher:
    """Downloads one repo file through huggingface_hub and moves it into place."""

    def __init__(self, out: Path, repo_id: str, revision: str | None, endpoint: str | None) -> None:
        self.out, self.repo_id, self.revision, self.endpoint = out, repo_id, revision, endpoint

    def __call__(self, item: RemoteFile, force: bool = False) -> bool:
        import httpx

        try:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
        except ImportError:
            raise DataError("downloading FineWeb needs huggingface_hub: pip install 'pgolf[data]'") from None

        staging = self.out / DOWNLOAD_DIR
        try:
            staging.mkdir(parents=True, exist_ok=True)
            path = hf_hub_download(
                repo_id=self.repo_id, filename=item.remote, repo_type="dataset", revision=self.revision,
                local_dir=staging, endpoint=self.endpoint, force_download=force,
            )
            item.local.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, item.local)
        except (HfHubHTTPError, LocalEntryNotFoundError, httpx.HTTPError, OSError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(f"{self.repo_id}: cannot fetch {item.remote} ({first_line}); "
                            "run the command again to resume") from None
        if item.kind in ("val", "train"):
            read_header(item.local)
        return True
