"""Artifact bytes measured on the files that ship, against the ruleset's decimal limit."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from pgolf.artifact import compressed_sizes, measure_artifact
from pgolf.errors import DataError
from pgolf.rules import get_ruleset

RULES = get_ruleset()
LIMIT = RULES.artifact_limit_bytes


def _sized(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: the size is real, no disk is written
    return path


def _pgolf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pgolf", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})


def test_sizes_are_the_files_sizes(tmp_path: Path) -> None:
    script = tmp_path / "train_gpt.py"
    script.write_text("print('hi')\n# é\n", encoding="utf-8")
    models = [_sized(tmp_path / "a.ptz", 1000), _sized(tmp_path / "b.ptz", 234)]
    size = measure_artifact(script, models, RULES)
    assert size.code_bytes == len("print('hi')\n# é\n".encode())
    assert size.model_bytes == 1234
    assert size.total_bytes == size.code_bytes + 1234
    assert size.limit == LIMIT and size.ok and size.headroom == LIMIT - size.total_bytes


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)])
def test_limit_is_inclusive_and_decimal(tmp_path: Path, extra: int, ok: bool) -> None:
    script = _sized(tmp_path / "train_gpt.py", 50_000)
    model = _sized(tmp_path / "final_model.ptz", LIMIT - 50_000 + extra)
    size = measure_artifact(script, [model], RULES)
    assert size.ok is ok and size.headroom == -extra


def test_ruleset_override_changes_the_limit(tmp_path: Path) -> None:
    script = _sized(tmp_path / "s.py", 10)
    size = measure_artifact(script, [_sized(tmp_path / "m", 100)], get_ruleset(overrides={"artifact_limit_bytes": 100}))
    assert not size.ok and size.limit == 100 and size.headroom == -10


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        measure_artifact(tmp_path / "nope.py", [], RULES)


def test_compressed_sizes_match_the_compressors(tmp_path: Path) -> None:
    data = (b"weights " * 5000) + bytes(range(256)) * 20
    path = tmp_path / "state.pt"
    path.write_bytes(data)
    sizes = compressed_sizes(path)
    assert sizes["zlib-9"] == len(zlib.compress(data, 9))
    assert sizes["lzma-9e"] == len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    import brotli
    import zstandard

    assert sizes["zstd-22"] == len(zstandard.ZstdCompressor(level=22).compress(data))
    assert sizes["brotli-11"] == len(brotli.compress(data, quality=11))


def test_optional_compressors_missing_give_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` raise ImportError
    monkeypatch.setitem(sys.modules, "brotli", None)
    path = tmp_path / "m.bin"
    path.write_bytes(b"abc" * 100)
    sizes = compressed_sizes(path)
    assert sizes["zstd-22"] is None and sizes["brotli-11"] is None and sizes["zlib-9"] > 0


def test_cli_measure_exit_codes(tmp_path: Path) -> None:
    script = _sized(tmp_path / "train_gpt.py", 60_000)
    under = _sized(tmp_path / "under.ptz", LIMIT - 60_000)
    over = _sized(tmp_path / "over.ptz", LIMIT - 60_000 + 1)
    ok = _pgolf("measure", "--script", str(script), "--model", str(under), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"code_bytes": 60_000, "model_bytes": LIMIT - 60_000, "total_bytes": LIMIT,
                                         "limit": LIMIT, "ok": True, "headroom": 0, "ruleset": RULES.name}
    bad = _pgolf("measure", "--script", str(script), "--model", str(over))
    assert bad.returncode == 1
    assert "over the limit" in bad.stdout


def test_cli_measure_compressors_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    path.write_bytes(b"0123456789" * 1000)
    proc = _pgolf("measure", "--compressors", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["raw_bytes"] == 10_000
    assert set(report["compressed"]) == {"zlib-9", "lzma-9e", "zstd-22", "brotli-11"}
    usage = _pgolf("measure", "--script", str(path))
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "error: measure: give --script and at least one --model (or --compressors MODEL)"]
