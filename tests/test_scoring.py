"""Exact scoring: canonical byte counts equal decoded UTF-8 lengths; `pgolf score` agrees with a naive count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgolf.data.shards import BOS_ID, write_shard
from pgolf.errors import DataError
from pgolf.scoring.count import count_scored_bytes, resolve_val_paths, scored_target_count
from pgolf.scoring.luts import bits_per_byte, build_luts

REAL_TOKENIZERS = ("fineweb_1024_bpe.model", "fineweb_8192_bpe.model")

# Real English with the whitespace the challenge tokenizers normalize: runs of spaces, tabs, newlines.
REAL_DOCS = [
    "The quick brown fox jumps over the lazy dog.  Twice!\n\nThen it rested.",
    "  Leading spaces, trailing spaces   \t and tabs\tinside.  ",
    "Numbers 1234567 and 3.14159, dates 2026-03-18, prices $19.99.",
    "Unicode: café, naïve, Zürich, 東京, Ελληνικά, emoji 😀🚀, dashes — and “quotes”.",
    "URL https://example.com/path?q=1&x=2 and e-mail someone@example.org",
    "x",
]


def _stream(sp, docs: list[str]) -> np.ndarray:
    out: list[int] = []
    for ids in sp.encode(docs):
        out += [BOS_ID, *ids]
    return np.array(out, dtype=np.uint16)


def _decoded_bytes(sp, docs: list[str]) -> int:
    return sum(len(sp.decode(ids).encode("utf-8")) for ids in sp.encode(docs))


def _count(tmp_path: Path, sp, luts, docs: list[str]) -> int:
    path = tmp_path / "val.bin"
    write_shard(path, _stream(sp, docs))
    return count_scored_bytes(path, luts).bytes


def _naive_count(model: Path, tokens: list[int], seq_len: int | None) -> tuple[int, int]:
    """Straightforward reference: one token at a time, straight from the SentencePiece API."""
    sp = spm.SentencePieceProcessor(model_file=str(model))
    n = len(tokens) - 1 if seq_len is None else ((len(tokens) - 1) // seq_len) * seq_len
    total = 0
    for i in range(1, n + 1):
        prev, tok = tokens[i - 1], tokens[i]
        if sp.is_control(tok) or sp.is_unknown(tok) or sp.is_unused(tok):
            continue
        if sp.is_byte(tok):
            total += 1
            continue
        piece = sp.id_to_piece(tok)
        prev_is_boundary = sp.is_control(prev) or sp.is_unknown(prev) or sp.is_unused(prev)
        if piece.startswith("\u2581"):
            piece = piece[1:]
            total += 0 if prev_is_boundary else 1
        total += len(piece.encode("utf-8"))
    return n, total


@pytest.fixture(scope="module")
def real_tokenizers(shared_data: Path):
    return [(spm.SentencePieceProcessor(model_file=str(shared_data / "tokenizers" / name)),
             build_luts(shared_data / "tokenizers" / name)) for name in REAL_TOKENIZERS]


@pytest.mark.parametrize("name", REAL_TOKENIZERS)
def test_real_tokenizers_count_the_decoded_bytes(shared_data: Path, tmp_path: Path, name: str) -> None:
    model = shared_data / "tokenizers" / name
    sp = spm.SentencePieceProcessor(model_file=str(model))
    import pydoc_data.topics

    docs = REAL_DOCS + [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)[:20]]
    assert _count(tmp_path, sp, build_luts(model), docs) == _decoded_bytes(sp, docs)
    # These tokenizers normalize whitespace, so decoded text is not always the original.
    assert sp.decode(sp.encode(REAL_DOCS[1])) != REAL_DOCS[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
                     min_size=1, max_size=6))
def test_property_real_tokenizers(real_tokenizers, tmp_path: Path, docs: list[str]) -> None:
    docs = [*docs, "a"]  # whitespace-only documents encode to nothing; keep at least one target
    for sp, luts in real_tokenizers:
        assert _count(tmp_path, sp, luts, docs) == _decoded_bytes(sp, docs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2581"),
                             min_size=1, max_size=80), min_size=1, max_size=6))
def test_property_demo_tokenizer_counts_the_original_text(demo_dataset, tmp_path: Path, docs: list[str]) -> None:
    """The demo tokenizer round-trips exactly; docs start with a non-space, as the demo corpus's do."""
    docs = [d.lstrip() for d in docs if d.lstrip()] or ["a"]
    sp = spm.SentencePieceProcessor(model_file=str(demo_dataset.tokenizer_path))
    assert [sp.decode(ids) for ids in sp.encode(docs)] == docs
    luts = build_luts(demo_dataset.tokenizer_path)
    assert _count(tmp_path, sp, luts, docs) == sum(len(d.encode("utf-8")) for d in docs)


@pytest.fixture
def synthetic_val(shared_data: Path, tmp_path: Path) -> tuple[Path, list[int]]:
    """Two val shards of random sp1024 ids with control tokens sprinkled in."""
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, 1024, size=9000)
    tokens[rng.integers(0, tokens.size, 300)] = BOS_ID
    tokens[0] = BOS_ID
    write_shard(tmp_path / "fineweb_val_000000.bin", tokens[:4001])
    write_shard(tmp_path / "fineweb_val_000001.bin", tokens[4001:])
    return tmp_path, tokens.tolist()


@pytest.mark.parametrize("seq_len", [None, 1024, 7, 1])
def test_count_matches_naive_reference(shared_data: Path, synthetic_val, seq_len) -> None:
    folder, tokens = synthetic_val
    model = shared_data / "tokenizers" / "fineweb_1024_bpe.model"
    expected_tokens, expected_bytes = _naive_count(model, tokens, seq_len)
    for chunk in (3, 1000, 1 << 22):  # chunk edges must not change anything
        got = count_scored_bytes(str(folder / "fineweb_val_*.bin"), build_luts(model), seq_len, chunk_tokens=chunk)
        assert (got.tokens, got.bytes) == (expected_tokens, expected_bytes)
        assert got.tokens_per_byte == expected_tokens / expected_bytes


def test_cli_score_json(shared_data: Path, synthetic_val) -> None:
    folder, tokens = synthetic_val
    model = shared_data / "tokenizers" / "fineweb_1024_bpe.model"
    proc = subprocess.run(
        [sys.executable, "-m", "pgolf", "score", "--tokenizer", str(model),
         "--val", str(folder / "fineweb_val_*.bin"), "--seq-len", "1024", "--json"],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    n, total = _naive_count(model, tokens, 1024)
    assert result == {"tokens": n, "bytes": total, "tokens_per_byte": n / total}


def test_cli_score_bad_input_is_one_line(tmp_path: Path, shared_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pgolf", "score", "--tokenizer", str(shared_data / "tokenizers" / "fineweb_1024_bpe.model"),
         "--val", str(tmp_path / "nothing_*.bin")], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'nothing_*.bin'}: no validation shards match"]


def test_errors(tmp_path: Path, shared_data: Path) -> None:
    luts = build_luts(shared_data / "tokenizers" / "fineweb_1024_bpe.model")
    write_shard(tmp_path / "big.bin", np.array([1, 5, 2000, 6]))
    with pytest.raises(DataError, match="token id 2000 is out of range"):
        count_scored_bytes(tmp_path / "big.bin", luts)
    write_shard(tmp_path / "first.bin", np.array([5000, 1, 100, 101]))  # scored only as a previous token
    with pytest.raises(DataError, match="token id 5000 is out of range"):
        count_scored_bytes(tmp_path / "first.bin", luts)
    write_shard(tmp_path / "short.bin", np.array([1, 5, 6]))
    with pytest.raises(DataError, match="too short for seq_len=4"):
        count_scored_bytes(tmp_path / "short.bin", luts, seq_len=4)
    with pytest.raises(DataError, match="not found"):
        build_luts(tmp_path / "missing.model")
    with pytest.raises(DataError, match="no bytes"):
        bits_per_byte(1.0, 0)


def test_target_rule_and_path_resolution(tmp_path: Path) -> None:
    assert scored_target_count(10, None) == 9
    assert scored_target_count(10, 4) == 8  # ((10 - 1) // 4) * 4
    assert scored_target_count(9, 4) == 8
    assert scored_target_count(1, None) == 0
    for name in ("b.bin", "a.bin"):
        write_shard(tmp_path / name, np.array([1]))
    assert [p.name for p in resolve_val_paths(str(tmp_path / "*.bin"))] == ["a.bin", "b.bin"]
    assert [p.name for p in resolve_val_paths([tmp_path / "b.bin", tmp_path / "a.bin"])] == ["a.bin", "b.bin"]


def test_bits_per_byte() -> None:
    assert bits_per_byte(np.log(2.0) * 100, 50) == pytest.approx(2.0)
