"""Artifact bytes: the script's bytes plus the compressed model file(s), measured on the files that ship."""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgolf.errors import DataError
from pgolf.rules import Ruleset


@dataclass(frozen=True)
class ArtifactSize:
    """Measured bytes of one artifact against a ruleset's decimal limit."""

    code_bytes: int
    model_bytes: int
    total_bytes: int
    limit: int
    ok: bool
    headroom: int

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


def measure_artifact(script: Path, model_files: list[Path], ruleset: Ruleset) -> ArtifactSize:
    """Code bytes (the script file as it ships) + model bytes (the files as they ship) vs the limit."""
    code = _file_size(Path(script))
    model = sum(_file_size(Path(p)) for p in model_files)
    total = code + model
    return ArtifactSize(
        code_bytes=code, model_bytes=model, total_bytes=total,
        limit=ruleset.artifact_limit_bytes, ok=not ruleset.over_artifact_limit(total),
        headroom=ruleset.headroom_bytes(total),
    )


def _file_size(path: Path) -> int:
    try:
        if not path.is_file():
            raise DataError(f"{path}: not a file")
        return path.stat().st_size
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None


def _zstd_22(data: bytes) -> bytes | None:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdCompressor(level=22).compress(data)


def _brotli_11(data: bytes) -> bytes | None:
    try:
        import brotli
    except ImportError:
        return None
    return brotli.compress(data, quality=11)


COMPRESSORS: dict[str, Callable[[bytes], bytes | None]] = {
    "zlib-9": lambda data: zlib.compress(data, 9),
    "lzma-9e": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
    "zstd-22": _zstd_22,
    "brotli-11": _brotli_11,
}


def compressed_sizes(path: Path) -> dict[str, int | None]:
    """Size of a file (e.g. a serialized state dict) under each compressor; None when it is not installed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    sizes: dict[str, int | None] = {}
    for name, compress in COMPRESSORS.items():
        out = compress(data)
        sizes[name] = None if out is None else len(out)
    return sizes
