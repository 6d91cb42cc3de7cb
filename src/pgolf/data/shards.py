"""The challenge's token shard format: a 256 x int32 little-endian header, then uint16 tokens.

Header: magic 20240520, version 1, token count; the file size must be exactly header + 2 x count.
Shards are read memory-mapped, so a 40M-token validation split costs no copy.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from pgolf.errors import DataError

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
BOS_ID = 1


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Write `tokens` (any integer array with values < 65536) as one shard."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):
        raise DataError(f"{path}: token ids must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, tokens.size
    with open(path, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(tokens.astype("<u2", copy=False).tobytes())


def read_header(path: Path) -> int:
    """Validate a shard's header and size; return its token count."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, or a pipe that would block the read forever
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise DataError(f"{path}: cannot read shard ({kind})")
        size = info.st_size
        with open(path, "rb") as fh:
            raw = fh.read(HEADER_BYTES)
    except OSError as err:
        raise DataError(f"{path}: cannot read shard ({err.strerror})") from None
    if len(raw) < HEADER_BYTES:
        raise DataError(f"{path}: shard shorter than its {HEADER_BYTES}-byte header ({size} bytes)")
    header = np.frombuffer(raw, dtype="<i4")
    if header[0] != SHARD_MAGIC:
        raise DataError(f"{path}: bad magic {int(header[0])} (expected {SHARD_MAGIC})")
    if header[1] != SHARD_VERSION:
        raise DataError(f"{path}: unsupported shard version {int(header[1])} (expected {SHARD_VERSION})")
    count = int(header[2])
    expected = HEADER_BYTES + 2 * count
    if count < 0 or size != expected:
        raise DataError(f"{path}: size {size} bytes does not match header token count {count} "
                        f"(expected {expected} bytes)")
    return count


def load_shard(path: Path, vocab_size: int | None = None) -> np.ndarray:
    """A shard's tokens as a read-only memory-mapped uint16 array; checks range when vocab_size is given."""
    count = read_header(path)
    tokens = np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(count,))
    if vocab_size is not None and count:
        top = int(tokens.max())
        if top >= vocab_size:
            where = int(np.argmax(tokens >= vocab_size))
            raise DataError(f"{path}: token {top} at position {where} is out of range for vocab size "
                            f"{vocab_size}")
    return tokens
