"""The offline demo corpus: layout, exact round trip, exact byte count, determinism, reuse, CLI."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import sentencepiece as spm

from pgolf.data.demo import (
    DATASET_NAME,
    VOCAB_SIZE,
    build_demo_dataset,
    collect_documents,
    is_val_document,
)
from pgolf.data.shards import BOS_ID, load_shard
from pgolf.scoring.count import count_scored_bytes
from pgolf.scoring.luts import build_luts


def _documents_of(stream: np.ndarray) -> list[np.ndarray]:
    starts = np.flatnonzero(stream == BOS_ID)
    return [stream[a + 1 : b] for a, b in zip(starts, list(starts[1:]) + [stream.size], strict=True)]


def _digests(root: Path) -> dict[str, str]:
    files = sorted((root / "datasets" / DATASET_NAME).glob("*.bin")) + sorted((root / "tokenizers").glob("*"))
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_layout_mirrors_the_real_dataset(demo_dataset) -> None:
    root = demo_dataset.root
    assert demo_dataset.dataset_dir == root / "datasets" / "pydocs_sp1024"
    assert demo_dataset.tokenizer_path == root / "tokenizers" / "pydocs_1024_bpe.model"
    assert (demo_dataset.dataset_dir / "fineweb_val_000000.bin").is_file()
    train = sorted(demo_dataset.dataset_dir.glob("fineweb_train_*.bin"))
    assert [p.name for p in train][:2] == ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    # Big enough for tiny CPU trainings of a few hundred steps.
    assert demo_dataset.tokens_train > 500_000 and demo_dataset.tokens_val > 50_000
    assert sum(int(load_shard(p).size) for p in train) == demo_dataset.tokens_train


def test_tokenizer_settings(demo_dataset) -> None:
    sp = spm.SentencePieceProcessor(model_file=str(demo_dataset.tokenizer_path))
    assert sp.vocab_size() == VOCAB_SIZE
    assert sp.bos_id() == BOS_ID and sp.is_control(BOS_ID)
    assert sum(sp.is_byte(i) for i in range(sp.vocab_size())) == 256  # byte fallback
    pieces = [sp.id_to_piece(i) for i in range(sp.vocab_size())]
    assert not [p for p in pieces if "\u2581" in p[1:]], "a piece with an inner space breaks the byte LUTs"


def test_every_shard_starts_with_bos_and_splits_are_disjoint(demo_dataset) -> None:
    for path in demo_dataset.dataset_dir.glob("fineweb_*.bin"):
        assert int(load_shard(path)[0]) == BOS_ID, path
    docs = collect_documents()
    val = [d for d in docs if is_val_document(d.name)]
    assert len(val) == demo_dataset.docs_val
    assert len(docs) - len(val) == demo_dataset.docs_train
    assert {d.name.split(":")[0] for d in docs} == {"pydoc", "stdlib"}


def test_val_split_round_trips_and_counts_exactly(demo_dataset) -> None:
    """Decoding gives the original documents, and the canonical byte count is their UTF-8 length."""
    sp = spm.SentencePieceProcessor(model_file=str(demo_dataset.tokenizer_path))
    stream = np.asarray(load_shard(demo_dataset.dataset_dir / "fineweb_val_000000.bin"))
    originals = [d.text for d in collect_documents() if is_val_document(d.name)]
    decoded = [sp.decode(ids.tolist()) for ids in _documents_of(stream)]
    assert decoded == originals
    expected = sum(len(t.encode("utf-8")) for t in originals)
    assert expected == demo_dataset.val_text_bytes
    count = count_scored_bytes(demo_dataset.val_glob, build_luts(demo_dataset.tokenizer_path))
    assert count.bytes == expected
    assert count.tokens == stream.size - 1


def test_build_is_deterministic_and_reused(demo_dataset, tmp_path: Path) -> None:
    again = build_demo_dataset(tmp_path / "again")
    assert not again.reused
    assert _digests(again.root) == _digests(demo_dataset.root)
    assert build_demo_dataset(tmp_path / "again").reused
    # A damaged file is noticed and the build is redone.
    shard = again.dataset_dir / "fineweb_train_000000.bin"
    with open(shard, "r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00\x00")
    rebuilt = build_demo_dataset(tmp_path / "again")
    assert not rebuilt.reused
    assert _digests(rebuilt.root) == _digests(demo_dataset.root)


def test_manifest_records_python_and_hashes(demo_dataset) -> None:
    manifest = json.loads((demo_dataset.dataset_dir / "demo.json").read_text())
    assert manifest["python"] == sys.version
    assert set(manifest["sha256"]) == set(_digests(demo_dataset.root)) - {"tokenizers/pydocs_1024_bpe.vocab"}


def test_cli_demo_then_verify(demo_dataset, tmp_path: Path) -> None:
    """A fresh build through the CLI, then its check (in process: the documents are already collected)."""
    from typer.testing import CliRunner

    from pgolf.cli.app import app

    runner = CliRunner()
    built = runner.invoke(app, ["data", "demo", "--out", str(tmp_path / "data"), "--json"])
    assert built.exit_code == 0, built.output
    info = json.loads(built.stdout)
    assert info["reused"] is False and info["vocab_size"] == VOCAB_SIZE
    assert info["tokens_val"] == demo_dataset.tokens_val
    checked = runner.invoke(app, ["data", "verify", info["dataset_dir"], "--tokenizer", info["tokenizer_path"]],
                            env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert f"ok: {info['tokens_val']:,} val tokens" in checked.stdout
    again = runner.invoke(app, ["data", "demo", "--out", str(tmp_path / "data")])
    assert again.exit_code == 0 and "reused" in again.stdout
