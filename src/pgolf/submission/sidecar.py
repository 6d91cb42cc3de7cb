"""Verifying a submitter-built byte sidecar against the tokenizer's decode of the validation tokens.

A reversible tokenizer transform (CaseOps: lower-cased words plus private-use control symbols) exports,
beside each validation shard `fineweb_val_NNNNNN.bin`, a sidecar `fineweb_val_bytes_NNNNNN.bin` in the same
shard format: one uint16 per token, the original UTF-8 bytes that token stands for (0 for each document's
BOS). The script then divides by their sum instead of the canonical tables'. README rule 2 asks a changed
tokenizer to prove val_bpb right, and the bytes are those the token ids decode to (openai/parameter-golf
#1604). ASCII case changes keep byte counts, so a token's original bytes are its canonical bytes
(`pgolf.scoring.luts`), except that a control symbol of the transform (a piece of private-use characters
only, after its leading "▁") stands for no original byte. An escape symbol (CaseOps' U+E004, U+E000 in
its first version) marks the control symbol after it as a literal character of the text: that one keeps
its UTF-8 bytes.

A sidecar that counts the raw text's bytes (piece surfaces, as the CaseOps exporter does) also counts what the
tokenizer's normalization removed before the tokens were made: the challenge's tokenizers (nmt_nfkc, extra
whitespace removed) turn "\n\n" into one space and "ﬁ" into "fi". Those bytes exist in the documents but no
token id decodes to them, so such a sidecar divides by more bytes than the canonical rule and its val_bpb is
lower by that factor: not comparable with scores divided by the tables, and flagged (WARN) with the figure.
Bytes given to tokens that stand for no text at all (a document's BOS, a control symbol of the transform)
have no such explanation: a FAIL.

An exporter may place a character's bytes on any one of its byte-fallback pieces (the piece surfaces
SentencePiece reports give a multi-byte character to its last byte piece), so a run of consecutive
byte-fallback tokens is compared as one unit; every other token is compared on its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgolf.data.shards import load_shard
from pgolf.errors import DataError
from pgolf.scoring.luts import LEADING_SPACE, ByteLUTs, build_luts, load_tokenizer, token_bytes
from pgolf.submission.checks import FAIL, PASS, WARN

_VAL_SHARD = re.compile(r"^fineweb_val_\d+\.bin$")
_CHUNK = 1 << 20  # tokens per pass: a few tens of MB of work arrays whatever the split
_EXAMPLES = 5
_ESCAPES = frozenset({"\ue004", "\ue000"})  # CaseOps' escape symbol (v2, v1)


@dataclass
class SidecarReport:
    """The verdict of one sidecar verification, with its numbers and evidence lines."""

    status: str  # PASS, WARN or FAIL
    summary: str
    evidence: list[str] = field(default_factory=list)
    tokens: int = 0
    sidecar_bytes: int = 0
    decoded_bytes: int = 0
    mismatches: int = 0  # tokens (a byte-fallback run counting once) whose entry differs from the decode

    @property
    def inflation(self) -> float | None:
        """sidecar bytes / decoded bytes - 1 (positive: val_bpb understated by that factor)."""
        return self.sidecar_bytes / self.decoded_bytes - 1.0 if self.decoded_bytes else None


def sidecar_name(shard_name: str) -> str:
    """The sidecar's file name for a validation shard's (the exporters' naming)."""
    return shard_name.replace("fineweb_val_", "fineweb_val_bytes_", 1)


def find_sidecar_data(folder: Path) -> tuple[Path | None, Path | None]:
    """(folder holding validation shards and their sidecars, the one *.model) inside a records folder; each
    None when absent or ambiguous."""
    shard_dirs = {p.parent for p in folder.rglob("fineweb_val_*.bin")
                  if _VAL_SHARD.match(p.name) and (p.parent / sidecar_name(p.name)).exists()}
    models = [p for p in folder.rglob("*.model") if p.is_file()]
    return (shard_dirs.pop() if len(shard_dirs) == 1 else None), (models[0] if len(models) == 1 else None)


@dataclass(frozen=True)
class _Tables:
    """Per token id: the original-byte tables and the masks the comparison needs."""

    luts: ByteLUTs  # canonical, with every control symbol of the transform at 0 base bytes
    control: np.ndarray  # bool: a control symbol of the transform
    escape: np.ndarray  # bool: the escape symbol, after which a control symbol is a literal character
    literal: np.ndarray  # int32: a control symbol's UTF-8 bytes, when it is a literal character
    is_byte: np.ndarray  # bool: a byte-fallback piece

    @property
    def has_escape(self) -> bool:
        return bool(self.escape.any())


def _tables(sp) -> _Tables:
    luts = build_luts(sp)
    control = np.zeros(luts.size, dtype=bool)
    escape = np.zeros(luts.size, dtype=bool)
    is_byte = np.zeros(luts.size, dtype=bool)
    for i in range(sp.vocab_size()):
        is_byte[i] = sp.is_byte(i)
        piece = sp.id_to_piece(i).removeprefix(LEADING_SPACE)
        if piece and not luts.is_boundary[i] and not is_byte[i] \
                and all(unicodedata.category(c) == "Co" for c in piece):
            control[i] = True
            escape[i] = piece in _ESCAPES
    base = luts.base_bytes.copy()
    base[control] = 0
    literal = np.where(control, luts.base_bytes, 0).astype(np.int32)
    return _Tables(ByteLUTs(base, luts.has_leading_space, luts.is_boundary), control, escape, literal, is_byte)


def _pairs(val_dir: Path) -> list[tuple[Path, Path]]:
    if not val_dir.exists():
        raise DataError(f"{val_dir}: no such folder")
    if not val_dir.is_dir():
        raise DataError(f"{val_dir}: not a folder (give the folder holding fineweb_val_*.bin and their sidecars)")
    shards = sorted(p for p in val_dir.iterdir() if _VAL_SHARD.match(p.name))
    if not shards:
        raise DataError(f"{val_dir}: no validation shards fineweb_val_NNNNNN.bin")
    pairs = [(p, p.with_name(sidecar_name(p.name))) for p in shards]
    for shard, side in pairs:
        if not side.exists():
            raise DataError(f"{val_dir}: {shard.name} has no byte sidecar {side.name} beside it")
    return pairs


@dataclass
class _Tally:
    """Running totals over the concatenated split (shards in name order, as the scripts read them)."""

    tokens: int = 0
    sidecar: int = 0
    decoded: int = 0
    control: int = 0
    mismatches: int = 0
    at_control: int = 0
    nontext_tokens: int = 0  # boundary tokens and (unescaped, unspaced) control symbols given bytes
    nontext_bytes: int = 0
    excess: int = 0  # bytes the sidecar gives beyond the decode, over the tokens that have more
    excess_after_space: int = 0  # of which on tokens after whitespace (a leading "▁", or a document's start)
    examples: list[str] = field(default_factory=list)


def _compare(tally: _Tally, tokens: np.ndarray, side: np.ndarray, prev: int | None, tables: _Tables,
             describe: Callable[..., str]) -> None:
    """Add one chunk of a shard: `prev` is the token before it (None at the start of the split)."""
    n = tokens.shape[0]
    target = tokens.astype(np.intp)  # one conversion for every table lookup below
    before = np.empty_like(target)
    before[1:] = target[:-1]
    before[0] = prev if prev is not None else 0
    expected = token_bytes(before, target, tables.luts)
    if prev is None:  # the split's first token follows nothing: no leading space to count
        expected[0] = tables.luts.base_bytes[target[0]]
    if tables.has_escape:  # a control symbol right after the escape symbol is a literal character
        escaped = np.flatnonzero(tables.escape[before])
        escaped = escaped[escaped > 0] if prev is None else escaped
        expected[escaped] += tables.literal[target[escaped]]
    control = tables.control
    got = side.astype(np.int32)
    diff = got - expected
    tally.tokens += n
    tally.sidecar += int(got.sum(dtype=np.int64))
    tally.decoded += int(expected.sum(dtype=np.int64))
    tally.control += int(np.count_nonzero(control[target]))
    # Tokens that stand for no text: a boundary, or a control symbol with no space before it and not escaped.
    nontext = tables.luts.is_boundary[target] | (control[target] & ~tables.luts.has_leading_space[target])
    if tables.has_escape:
        literal = tables.escape[before]  # the symbol after the escape is a character of the text
        if prev is None:
            literal[0] = False
        nontext &= ~literal
    given = got[nontext]
    tally.nontext_tokens += int(np.count_nonzero(given))
    tally.nontext_bytes += int(given.sum(dtype=np.int64))
    over = np.maximum(diff, 0)
    tally.excess += int(over.sum(dtype=np.int64))
    spaced = tables.luts.has_leading_space[target] | tables.luts.is_boundary[before]
    if prev is None:
        spaced[0] = True
    tally.excess_after_space += int(over[spaced].sum(dtype=np.int64))
    differ = np.flatnonzero(diff)
    if not differ.size:
        return
    # Units: every token alone, except that a run of byte-fallback tokens is one unit.
    byte = tables.is_byte[target]
    opens = np.concatenate(([True], ~(byte[:-1] & byte[1:])))  # where a unit starts
    starts = np.flatnonzero(opens)
    if differ.size * 8 < n:  # few differences (the usual case): look each one's unit up
        unit = np.searchsorted(starts, differ, side="right") - 1
    else:
        unit = (np.cumsum(opens, dtype=np.intp) - 1)[differ]
    first = np.flatnonzero(np.concatenate(([True], unit[1:] != unit[:-1])))  # `unit` is sorted
    units = unit[first]
    sums = np.add.reduceat(diff[differ], first)
    bad = units[sums != 0]
    tally.mismatches += int(bad.size)
    unit_end = np.where(bad + 1 < starts.size, starts[np.minimum(bad + 1, starts.size - 1)] - 1, n - 1)
    tally.at_control += int(np.count_nonzero(control[target[unit_end]]))
    room = max(0, _EXAMPLES - len(tally.examples))
    for b, end in zip(bad[:room], unit_end[:room], strict=True):
        tally.examples.append(describe(int(starts[b]), int(end), target, got, expected))


def _describer(sp, name: str, offset: int) -> Callable[..., str]:
    """Formats one mismatching unit of a chunk starting at `offset` of shard sidecar `name`."""
    def describe(start: int, end: int, target: np.ndarray, got: np.ndarray, expected: np.ndarray) -> str:
        ids = [int(t) for t in target[start:end + 1][:6]]
        where = f"{offset + start:,}" if start == end else f"{offset + start:,}..{offset + end:,}"
        return (f"{name}[{where}]: {'byte-fallback run ' if start != end else ''}token "
                f"{' '.join(map(str, ids))} {' '.join(repr(sp.id_to_piece(i)) for i in ids)}: "
                f"sidecar {int(got[start:end + 1].sum())}, decode {int(expected[start:end + 1].sum())}")
    return describe


def verify_sidecar(val_dir: Path, tokenizer_path: Path) -> SidecarReport:
    """Compare every validation shard's byte sidecar with the bytes its tokens decode to.

    PASS on an exact match; FAIL when the entries do not line up with the tokens or their total exceeds the
    decode (an inflated denominator understates val_bpb); WARN for per-token differences that are not an
    inflation. Missing or malformed files raise DataError with one line.
    """
    val_dir, tokenizer_path = Path(val_dir), Path(tokenizer_path)
    pairs = _pairs(val_dir)
    sp = load_tokenizer(tokenizer_path)
    tables = _tables(sp)
    tally = _Tally()
    per_shard = []
    prev: int | None = None
    for shard, side_path in pairs:
        tokens = load_shard(shard, sp.vocab_size())
        side = load_shard(side_path)
        count = tokens.shape[0]
        if side.shape[0] != count:
            return SidecarReport(FAIL, f"sidecar has {side.shape[0]:,} entries for {count:,} tokens "
                                 f"({side_path.name} against {shard.name}): its byte counts do not line up with "
                                 "the tokens", [f"{side_path}: {side.shape[0]:,} entries; {shard}: {count:,} tokens"],
                                 tokens=tally.tokens + count)
        before = tally.sidecar, tally.decoded
        lo = 0
        while lo < count:
            hi = min(count, lo + _CHUNK)
            while hi < count and tables.is_byte[tokens[hi - 1]] and tables.is_byte[tokens[hi]]:
                hi += 1  # a chunk never cuts a byte-fallback run: its bytes may sit on any of its pieces
            _compare(tally, tokens[lo:hi], side[lo:hi], prev, tables, _describer(sp, side_path.name, lo))
            prev, lo = int(tokens[hi - 1]), hi
        per_shard.append(f"{shard.name} + {side_path.name}: {count:,} tokens, sidecar "
                         f"{tally.sidecar - before[0]:,} bytes, decode {tally.decoded - before[1]:,} bytes")
    if not tally.tokens:
        raise DataError(f"{val_dir}: the validation shards hold no tokens")
    return _verdict(tally, per_shard)


def _verdict(t: _Tally, per_shard: list[str]) -> SidecarReport:
    totals = (f"sidecar {t.sidecar:,} bytes, the tokenizer's decode {t.decoded:,} bytes over {t.tokens:,} tokens "
              f"({t.control:,} control-symbol tokens of the transform count 0)")
    numbers = dict(tokens=t.tokens, sidecar_bytes=t.sidecar, decoded_bytes=t.decoded, mismatches=t.mismatches)
    where = f" ({t.at_control:,} at control symbols)" if t.at_control else ""
    evidence = [totals, *t.examples, *per_shard]
    if t.mismatches == 0:
        return SidecarReport(PASS, f"sidecar matches the tokenizer's decode: {t.decoded:,} bytes over {t.tokens:,} "
                             "tokens", evidence, **numbers)
    if t.nontext_bytes:
        factor = t.sidecar / t.decoded if t.decoded else float("inf")
        return SidecarReport(FAIL, f"the sidecar gives {t.nontext_bytes:,} bytes to {t.nontext_tokens:,} tokens that "
                             "stand for no text (document boundaries, the transform's control symbols): it counts "
                             f"{t.sidecar:,} bytes where the tokens decode to {t.decoded:,}, {(factor - 1) * 100:+.3f}% "
                             f"inflation, so val_bpb is understated by a factor {factor:.6f}; {t.mismatches:,} tokens "
                             f"differ{where}", evidence, **numbers)
    if t.sidecar > t.decoded:
        factor = t.sidecar / t.decoded
        share = t.excess_after_space / t.excess * 100 if t.excess else 0.0
        return SidecarReport(WARN, f"the sidecar counts {t.sidecar - t.decoded:,} bytes more than the tokens decode to "
                             f"({(factor - 1) * 100:+.3f}%; {t.mismatches:,} tokens differ, {share:.0f}% of the excess "
                             "after whitespace): the raw text's bytes that the tokenizer's normalization removed "
                             "(collapsed whitespace, NFKC) cannot be told from added ones without the documents, and "
                             f"no token id decodes to them, so val_bpb is lower by a factor {1 / factor:.6f} than the "
                             "canonical byte rule gives: not comparable with scores divided by the tables; flagged for "
                             "review", evidence, **numbers)
    return SidecarReport(WARN, f"{t.mismatches:,} tokens differ from the tokenizer's decode{where} (sidecar "
                         f"{t.sidecar:,} bytes, decode {t.decoded:,}: not an inflation)", evidence, **numbers)
