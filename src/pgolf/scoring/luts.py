"""Canonical byte lookup tables of a SentencePiece tokenizer: the one BPB rule pgolf uses.

Per target token t with previous token p: bytes(t) = base_bytes[t] + (has_leading_space[t] and not
is_boundary[p]). base_bytes is the UTF-8 length of the piece without its leading "▁"; byte-fallback
pieces count 1; control, unknown and unused pieces are boundaries and count 0. Table entries beyond
the tokenizer's own vocabulary (a model may pad its vocab) are boundaries that count 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgolf.errors import DataError

LEADING_SPACE = "\u2581"


@dataclass(frozen=True)
class ByteLUTs:
    """The three canonical tables, indexed by token id."""

    base_bytes: np.ndarray  # int16
    has_leading_space: np.ndarray  # bool
    is_boundary: np.ndarray  # bool

    @property
    def size(self) -> int:
        return int(self.base_bytes.shape[0])


_MAX_TOKENIZER_BYTES = 256 * 1024 * 1024


def load_tokenizer(path: Path):  # -> sentencepiece.SentencePieceProcessor
    """Load a SentencePiece model, with one clear error for a missing or broken file."""
    import sentencepiece as spm

    from pgolf.statefile import read_bytes

    path = Path(path)
    # A folder is "a directory", not "not found"; a pipe would block the load forever.
    proto = read_bytes(path, max_bytes=_MAX_TOKENIZER_BYTES, missing_ok=True)
    if proto is None:
        raise DataError(f"{path}: tokenizer model not found")
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(proto)
    except (OSError, RuntimeError, TypeError) as err:
        raise DataError(f"{path}: not a SentencePiece model ({str(err).strip() or 'unreadable'})") from None
    return sp


def build_luts(sp, table_size: int | None = None) -> ByteLUTs:
    """The canonical tables for tokenizer `sp` (a SentencePieceProcessor or a model path)."""
    if isinstance(sp, str | Path):
        sp = load_tokenizer(Path(sp))
    vocab = sp.vocab_size()
    size = max(vocab, table_size or 0)
    base = np.zeros(size, dtype=np.int16)
    lead = np.zeros(size, dtype=bool)
    boundary = np.ones(size, dtype=bool)
    for i in range(vocab):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(LEADING_SPACE):
            lead[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return ByteLUTs(base, lead, boundary)


def token_bytes(prev: np.ndarray, target: np.ndarray, luts: ByteLUTs) -> np.ndarray:
    """Bytes of each target token given the token before it (vectorized; int32)."""
    extra = luts.has_leading_space[target] & ~luts.is_boundary[prev]
    return luts.base_bytes[target].astype(np.int32) + extra


def bits_per_byte(nll_nats_sum: float, byte_count: int) -> float:
    """val_bpb from summed negative log-likelihood (nats) over the scored tokens and their bytes."""
    if byte_count <= 0:
        raise DataError("no bytes to score")
    return nll_nats_sum / np.log(2.0) / byte_count
