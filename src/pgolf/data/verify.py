"""Checks of a dataset folder: shard names, headers, sizes, token range, and BOS at document starts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgolf.data.shards import BOS_ID, load_shard
from pgolf.errors import DataError

_SUFFIX_VOCAB = re.compile(r"_sp(\d+)$")
_CHUNK = 1 << 24


@dataclass(frozen=True)
class ShardReport:
    """One checked shard."""

    path: Path
    split: str  # val or train
    tokens: int
    documents: int  # BOS tokens
    max_token: int


@dataclass
class DatasetReport:
    """The result of checking a dataset folder; `problems` are one line each."""

    directory: Path
    vocab_size: int | None
    shards: list[ShardReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def tokens(self, split: str) -> int:
        """Total tokens of a split."""
        return sum(s.tokens for s in self.shards if s.split == split)


def verify_dataset(
    directory: Path, *, tokenizer: Path | None = None, vocab_size: int | None = None,
    progress: Callable[[Path], None] | None = None,
) -> DatasetReport:
    """Check every `fineweb_val_*.bin` and `fineweb_train_*.bin` in `directory`; never raises on bad shards."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a dataset folder")
    report = DatasetReport(directory, None)
    report.vocab_size = _vocab_size(directory, tokenizer, vocab_size, report)
    for split in ("val", "train"):
        paths = sorted(directory.glob(f"fineweb_{split}_*.bin"))
        if not paths:
            message = f"{directory}: no fineweb_{split}_*.bin shards"
            (report.problems if split == "val" else report.warnings).append(message)
        for index, path in enumerate(paths):
            if progress is not None:
                progress(path)
            shard = _check_shard(path, split, report.vocab_size, report.problems)
            if shard is None:
                continue
            report.shards.append(shard)
            if not shard.tokens:
                report.problems.append(f"{path}: no tokens (the header says 0)")
            elif index == 0 and not _starts_with_bos(path):
                report.problems.append(f"{path}: the {split} split does not start with BOS={BOS_ID}")
            elif shard.documents == 0:
                report.problems.append(f"{path}: no BOS={BOS_ID} token, so no document starts")
    return report


def _vocab_size(directory: Path, tokenizer: Path | None, explicit: int | None, report: DatasetReport) -> int | None:
    if explicit is not None:
        return explicit
    if tokenizer is not None:
        from pgolf.scoring.luts import load_tokenizer

        sp = load_tokenizer(tokenizer)
        if sp.bos_id() != BOS_ID or not sp.is_control(BOS_ID):
            report.problems.append(f"{tokenizer}: BOS id is {sp.bos_id()}, the shards use {BOS_ID}")
        return int(sp.vocab_size())
    match = _SUFFIX_VOCAB.search(directory.name)
    if match:
        return int(match[1])
    report.warnings.append("vocab size unknown (pass --tokenizer or --vocab-size): token range not checked")
    return None


def _check_shard(path: Path, split: str, vocab_size: int | None, problems: list[str]) -> ShardReport | None:
    try:
        tokens = load_shard(path)
    except DataError as err:
        problems.append(str(err))
        return None
    top, documents = 0, 0
    for start in range(0, tokens.size, _CHUNK):
        chunk = tokens[start : start + _CHUNK]
        top = max(top, int(chunk.max()))
        documents += int(np.count_nonzero(chunk == BOS_ID))
    if vocab_size is not None and tokens.size and top >= vocab_size:
        where = int(np.argmax(tokens >= vocab_size))
        problems.append(f"{path}: token {int(tokens[where])} at position {where} is out of range for "
                        f"vocab size {vocab_size}")
    return ShardReport(path, split, int(tokens.size), documents, top)


def _starts_with_bos(path: Path) -> bool:
    return int(load_shard(path)[0]) == BOS_ID
