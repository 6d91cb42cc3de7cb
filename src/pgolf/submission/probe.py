"""The LUT audit's probe tokenizer: a small synthetic vocabulary with SentencePiece's query methods.

One definition serves both audit modes: the static interpreter queries it through `audit_query`, and
`_lut_runner` (run with `python -I -m`) hands it to the submission's function. It imports nothing heavy so
the subprocess starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgolf.submission.lut_interp import Unsupported

EXECUTE_TIMEOUT_S = 60.0  # `audit lut --execute` default; here, in the light module the CLI imports at start

# Ids SentencePiece gives its special pieces; the probe vocabulary puts them in the same places.
_SPECIAL_IDS = {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1}


class ProbeTokenizer:
    """A vocabulary of (piece, kind) pairs answering SentencePiece's queries in both naming styles."""

    def __init__(self, vocab: Sequence[Sequence[str]]) -> None:
        self.vocab = [(str(piece), str(kind)) for piece, kind in vocab]

    def vocab_size(self) -> int:
        """Number of pieces."""
        return len(self.vocab)

    def id_to_piece(self, i: int) -> str:
        """The piece with id `i`."""
        return self.vocab[i][0]

    def piece_to_id(self, piece: str) -> int:
        """The id of `piece`, or the unknown piece's id when the vocabulary lacks it (as SentencePiece does)."""
        if not isinstance(piece, str):
            raise TypeError(f"piece_to_id takes a str, not {type(piece).__name__}")
        return next((i for i, (p, _) in enumerate(self.vocab) if p == piece), _SPECIAL_IDS["unk_id"])

    def is_control(self, i: int) -> bool:
        """True for control pieces (<s>, </s>)."""
        return self.vocab[i][1] == "control"

    def is_unknown(self, i: int) -> bool:
        """True for the unknown piece."""
        return self.vocab[i][1] == "unknown"

    def is_unused(self, i: int) -> bool:
        """True for unused pieces."""
        return self.vocab[i][1] == "unused"

    def is_byte(self, i: int) -> bool:
        """True for byte-fallback pieces (<0xNN>)."""
        return self.vocab[i][1] == "byte"

    def unk_id(self) -> int:
        """Id of the unknown piece."""
        return _SPECIAL_IDS["unk_id"]

    def bos_id(self) -> int:
        """Id of the beginning-of-sequence piece."""
        return _SPECIAL_IDS["bos_id"]

    def eos_id(self) -> int:
        """Id of the end-of-sequence piece."""
        return _SPECIAL_IDS["eos_id"]

    def pad_id(self) -> int:
        """Id of the padding piece (none)."""
        return _SPECIAL_IDS["pad_id"]

    get_piece_size = GetPieceSize = piece_size = vocab_size
    IdToPiece, PieceToId = id_to_piece, piece_to_id
    IsControl, IsUnknown, IsUnused, IsByte = is_control, is_unknown, is_unused, is_byte

    def audit_query(self, method: str, *args: Any) -> Any:
        """A query from the static interpreter; a bad argument is the script's problem, so Unsupported."""
        try:
            return getattr(self, method)(*args)
        except (IndexError, TypeError) as err:
            raise Unsupported(f"tokenizer query {method}{args}: {err}") from None
