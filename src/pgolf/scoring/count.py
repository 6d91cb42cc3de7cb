"""Bytes of the scored validation targets, counted over memory-mapped shards in chunks.

Which targets are scored (as the challenge's baseline `train_gpt.py` does it): the val shards, sorted by
name, are concatenated into one stream of N tokens. With a sequence length L the stream is cut to
`((N - 1) // L) * L + 1` tokens and evaluated in non-overlapping windows of L, so the targets are
positions 1 .. ((N - 1) // L) * L; without L (sliding-window evaluation) every position after the first
is a target. Each target t with previous token p counts
`base_bytes[t] + (has_leading_space[t] and not is_boundary[p])` bytes (`scoring.luts`).

Counting avoids a per-token lookup: the sum of `base_bytes + has_leading_space` comes from a histogram of
target ids, and the leading-space byte is then taken back for targets that follow a boundary token
(BOS and other control ids), which are rare and found by comparing the chunk with each boundary id.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgolf.data.shards import load_shard
from pgolf.errors import DataError
from pgolf.scoring.luts import ByteLUTs

CHUNK_TOKENS = 1 << 22  # 4M tokens: ~32 MB of temporary indices per chunk


@dataclass(frozen=True)
class ScoreCount:
    """Scored targets of a validation split: how many tokens, how many bytes, and their ratio."""

    tokens: int
    bytes: int
    tokens_per_byte: float

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


def resolve_val_paths(val: str | Path | Sequence[str | Path]) -> list[Path]:
    """The shard files named by a glob pattern, a single path, or a list of paths, sorted by name."""
    if isinstance(val, str | Path):
        text = str(val)
        paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
    else:
        paths = sorted(str(p) for p in val)
    if not paths:
        raise DataError(f"{val}: no validation shards match")
    return [Path(p) for p in paths]


def scored_target_count(stream_tokens: int, seq_len: int | None = None) -> int:
    """How many targets a stream of `stream_tokens` tokens yields (see the module docstring)."""
    if stream_tokens < 2:
        return 0
    if seq_len is None:
        return stream_tokens - 1
    if seq_len < 1:
        raise DataError(f"seq_len must be positive, got {seq_len}")
    return ((stream_tokens - 1) // seq_len) * seq_len


def count_scored_bytes(
    val: str | Path | Sequence[str | Path], luts: ByteLUTs, seq_len: int | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
) -> ScoreCount:
    """Count the scored target tokens and their canonical bytes over the validation shards."""
    shards = [load_shard(p) for p in resolve_val_paths(val)]
    total = sum(int(s.size) for s in shards)
    targets = scored_target_count(total, seq_len)
    if targets <= 0:
        raise DataError(f"validation split of {total} tokens is too short for seq_len={seq_len}")
    table = luts.size
    weight = luts.base_bytes.astype(np.int64) + luts.has_leading_space
    boundary_ids = np.flatnonzero(luts.is_boundary)
    hist = np.zeros(table, dtype=np.int64)
    taken_back = 0
    for prev, chunk in _target_chunks(shards, targets, chunk_tokens):
        counts = np.bincount(chunk, minlength=table)
        if counts.size > table or prev >= table:  # the stream's first token is only ever a `prev`
            top = max(prev, int(np.flatnonzero(counts)[-1]))
            raise DataError(f"token id {top} is out of range for the tokenizer's {table} ids")
        hist += counts
        present = boundary_ids[counts[boundary_ids] > 0]
        taken_back += _space_after_boundary(prev, chunk, present, luts.is_boundary, luts.has_leading_space)
    byte_count = int(hist @ weight) - taken_back
    if byte_count <= 0:
        raise DataError("the scored targets hold no bytes")
    return ScoreCount(tokens=targets, bytes=byte_count, tokens_per_byte=targets / byte_count)


def _target_chunks(
    shards: list[np.ndarray], targets: int, chunk_tokens: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(token before the chunk, chunk) over stream positions 1 .. targets, never crossing a shard."""
    position = 0  # stream index of the current shard's first token
    prev = -1
    end = targets + 1  # stream positions [1, end) are the targets
    for shard in shards:
        lo = max(1, position) - position
        hi = min(shard.size, end - position)
        for a in range(lo, hi, chunk_tokens):
            b = min(a + chunk_tokens, hi)
            before = int(shard[a - 1]) if a > 0 else prev
            yield before, shard[a:b]
        if shard.size:
            prev = int(shard[-1])
        position += shard.size
        if position >= end:
            break


def _space_after_boundary(
    prev: int, chunk: np.ndarray, present_ids: np.ndarray, is_boundary: np.ndarray,
    has_leading_space: np.ndarray,
) -> int:
    """Leading-space bytes not due because the target follows a boundary token (`present_ids` in chunk)."""
    taken = int(prev >= 0 and bool(is_boundary[prev]) and bool(has_leading_space[chunk[0]]))
    head = chunk[:-1]
    for token_id in present_ids:
        where = np.flatnonzero(head == token_id)
        if where.size:
            taken += int(np.count_nonzero(has_leading_space[chunk[where + 1]]))
    return taken
