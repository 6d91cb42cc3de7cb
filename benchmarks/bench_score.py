"""Benchmark `pgolf score` on a validation split the size of the sp8192 one (40,540,161 tokens).

Run: .venv/bin/python benchmarks/bench_score.py [--tokenizer MODEL] [--repeats N]

Builds the shard from real text (the demo corpus's documents encoded with the sp8192 tokenizer, BOS
before each, repeated to length), then reports the median time of the counting itself (in process) and
the peak memory (max RSS) and wall time of the whole `pgolf score` command (a subprocess), next to the
public audit tool's numbers on the same input and pgolf's targets.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pgolf.data.demo import collect_documents
from pgolf.data.shards import BOS_ID, write_shard
from pgolf.scoring.count import count_scored_bytes
from pgolf.scoring.luts import build_luts, load_tokenizer

VAL_TOKENS = 40_540_161
SEQ_LEN = 2048
REFERENCE = {"counting_s": 3.6, "peak_mb": 1250.0}  # the public audit tool on the same input
TARGET = {"counting_s": 0.5, "peak_mb": 400.0}
DEFAULT_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "tokenizers" / "fineweb_8192_bpe.model"


def build_val_shard(tokenizer: Path, out: Path) -> None:
    """A realistic stream: real documents, BOS-separated, tiled to VAL_TOKENS tokens."""
    sp = load_tokenizer(tokenizer)
    parts = []
    for ids in sp.encode([d.text for d in collect_documents()]):
        parts.append(np.array([BOS_ID, *ids], dtype=np.uint16))
    unit = np.concatenate(parts)
    write_shard(out, np.resize(unit, VAL_TOKENS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pgolf-bench-") as tmp:
        shard = Path(tmp) / "fineweb_val_000000.bin"
        t0 = time.perf_counter()
        build_val_shard(args.tokenizer, shard)
        print(f"built {shard.name}: {VAL_TOKENS:,} tokens in {time.perf_counter() - t0:.1f} s")

        luts = build_luts(args.tokenizer)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = count_scored_bytes(shard, luts, seq_len=SEQ_LEN)
            times.append(time.perf_counter() - t0)
        counting = statistics.median(times)

        command = [sys.executable, "-m", "pgolf", "score", "--tokenizer", str(args.tokenizer), "--val",
                   str(shard), "--seq-len", str(SEQ_LEN), "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
        assert json.loads(proc.stdout) == result.as_dict(), "the command and the library disagree"

    print(f"scored targets {result.tokens:,}  bytes {result.bytes:,}  tokens/byte {result.tokens_per_byte:.6f}")
    print()
    print(f"{'metric':<34}{'pgolf':>10}{'audit tool':>12}{'target':>10}")
    print(f"{'counting, median of ' + str(args.repeats) + ' (s)':<34}{counting:>10.3f}"
          f"{REFERENCE['counting_s']:>12.1f}{'<= ' + str(TARGET['counting_s']):>10}")
    print(f"{'peak RSS, whole command (MB)':<34}{peak_mb:>10.0f}"
          f"{REFERENCE['peak_mb']:>12.0f}{'<= ' + str(int(TARGET['peak_mb'])):>10}")
    print(f"{'wall time, whole command (s)':<34}{wall:>10.2f}{'-':>12}{'-':>10}")
    print(f"counting runs (s): {', '.join(f'{t:.3f}' for t in times)}")


if __name__ == "__main__":
    main()
