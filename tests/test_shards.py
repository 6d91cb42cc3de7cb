"""The shard format and `pgolf data verify`: every defect is one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgolf.data.shards import HEADER_BYTES, load_shard, read_header, write_shard
from pgolf.data.verify import verify_dataset
from pgolf.errors import DataError


def _dataset(tmp_path: Path, name: str = "toy_sp64") -> Path:
    d = tmp_path / name
    d.mkdir()
    rng = np.random.default_rng(0)
    for split, count in (("val", 1), ("train", 2)):
        for i in range(count):
            tokens = rng.integers(2, 64, size=500).astype(np.uint16)
            tokens[[0, 120, 333]] = 1
            write_shard(d / f"fineweb_{split}_{i:06d}.bin", tokens)
    return d


def test_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    tokens = np.array([1, 5, 65535, 0, 7], dtype=np.uint16)
    write_shard(tmp_path / "a.bin", tokens)
    assert (tmp_path / "a.bin").stat().st_size == HEADER_BYTES + 2 * tokens.size
    loaded = load_shard(tmp_path / "a.bin")
    assert isinstance(loaded, np.memmap)
    assert loaded.tolist() == tokens.tolist()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: b"\x00" * 4 + raw[4:], "bad magic 0"),
        (lambda raw: raw[:4] + (2).to_bytes(4, "little") + raw[8:], "unsupported shard version 2"),
        (lambda raw: raw[:-2], "does not match header token count 5"),
        (lambda raw: raw[:100], "shorter than its 1024-byte header"),
    ],
)
def test_each_header_defect_is_one_clear_error(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(5))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError) as err:
        read_header(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_token_out_of_vocab(tmp_path: Path) -> None:
    write_shard(tmp_path / "s.bin", np.array([1, 2, 70, 3]))
    with pytest.raises(DataError, match="token 70 at position 2 is out of range for vocab size 64"):
        load_shard(tmp_path / "s.bin", vocab_size=64)


def test_verify_good_dataset(tmp_path: Path) -> None:
    report = verify_dataset(_dataset(tmp_path))
    assert report.ok, report.problems
    assert report.vocab_size == 64  # from the folder's _sp64 suffix
    assert report.tokens("val") == 500 and report.tokens("train") == 1000
    assert [s.documents for s in report.shards] == [3, 3, 3]


def test_verify_reports_each_defect(tmp_path: Path) -> None:
    d = _dataset(tmp_path)
    write_shard(d / "fineweb_train_000001.bin", np.array([1, 2, 99]))  # out of range for sp64
    write_shard(d / "fineweb_val_000000.bin", np.array([5, 6, 7, 1]))  # val does not start with BOS
    report = verify_dataset(d)
    assert len(report.problems) == 2
    assert "does not start with BOS=1" in report.problems[0]
    assert "token 99 at position 2 is out of range for vocab size 64" in report.problems[1]
    report = verify_dataset(d, vocab_size=128)
    assert len(report.problems) == 1


def test_verify_missing_val_split_and_bad_folder(tmp_path: Path) -> None:
    d = _dataset(tmp_path)
    (d / "fineweb_val_000000.bin").unlink()
    assert any("no fineweb_val_*.bin" in p for p in verify_dataset(d).problems)
    with pytest.raises(DataError, match="not a dataset folder"):
        verify_dataset(tmp_path / "nowhere")


def test_cli_reports_a_corrupted_header_in_one_line(demo_dataset, tmp_path: Path) -> None:
    d = tmp_path / "pydocs_sp1024"
    shutil.copytree(demo_dataset.dataset_dir, d)
    victim = d / "fineweb_train_000001.bin"
    raw = bytearray(victim.read_bytes())
    raw[0:4] = (12345).to_bytes(4, "little")
    victim.write_bytes(bytes(raw))
    proc = subprocess.run([sys.executable, "-m", "pgolf", "data", "verify", str(d)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "300"}, timeout=60)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert errors == [f"error: {victim}: bad magic 12345 (expected 20240520)"]
