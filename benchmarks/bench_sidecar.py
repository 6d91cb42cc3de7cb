"""Benchmark `verify_sidecar` (the byte-sidecar check of `pgolf check --val-data`) on a full-size split.

Run: .venv/bin/python benchmarks/bench_sidecar.py [--tokenizer MODEL] [--tokens N] [--repeats R]

Writes a synthetic validation split of N tokens (default 47,851,520, the canonical CaseOps split) to a
temporary folder: random ids of the tokenizer, a BOS every 1,000 tokens, and a sidecar built as an exporter
builds one (canonical bytes, a byte-fallback run's bytes on its last piece), in a process of its own. Each
verification runs in a fresh process (Linux carries a parent's peak RSS into a forked child); the median
time and the peak RSS of that process are printed beside the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_S = 2.0
CANONICAL_CASEOPS_VAL_TOKENS = 47_851_520
DEFAULT_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "tokenizers" / "fineweb_8192_bpe.model"
_VERIFY = """
import json, resource, sys, time
from pgolf.submission.sidecar import verify_sidecar
start = time.perf_counter()
report = verify_sidecar(sys.argv[1], sys.argv[2])
print(json.dumps({"s": time.perf_counter() - start, "status": report.status, "summary": report.summary,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _write_split(where: Path, tokenizer: Path, count: int) -> None:
    import numpy as np

    from pgolf.data.shards import BOS_ID, write_shard
    from pgolf.scoring.luts import build_luts, load_tokenizer, token_bytes

    sp = load_tokenizer(tokenizer)
    luts = build_luts(sp)
    tokens = np.random.default_rng(0).integers(4, sp.vocab_size(), size=count, dtype=np.uint16)
    tokens[::1000] = BOS_ID
    side = np.empty(count, dtype=np.int32)
    side[0] = 0
    side[1:] = token_bytes(tokens[:-1], tokens[1:], luts)
    is_byte = np.array([sp.is_byte(i) for i in range(sp.vocab_size())])[tokens]
    inner = is_byte & np.concatenate((is_byte[1:], [False]))  # a byte piece followed by another one
    ends = np.flatnonzero(is_byte & ~inner)
    starts = np.flatnonzero(is_byte & ~np.concatenate(([False], is_byte[:-1])))
    side[is_byte] = 0
    side[ends] = ends - starts + 1
    write_shard(where / "fineweb_val_000000.bin", tokens)
    write_shard(where / "fineweb_val_bytes_000000.bin", side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="a SentencePiece model")
    parser.add_argument("--tokens", type=int, default=CANONICAL_CASEOPS_VAL_TOKENS, help="tokens in the split")
    parser.add_argument("--repeats", type=int, default=3, help="verifications (the median is kept)")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child that writes the split
    args = parser.parse_args()
    if args.write is not None:
        _write_split(args.write, args.tokenizer, args.tokens)
        return
    if not args.tokenizer.is_file():
        sys.exit(f"{args.tokenizer}: no tokenizer (pass --tokenizer MODEL)")
    with tempfile.TemporaryDirectory(prefix="pgolf-bench-sidecar-") as tmp:
        subprocess.run([sys.executable, __file__, "--write", tmp, "--tokenizer", str(args.tokenizer),
                        "--tokens", str(args.tokens)], check=True)
        runs = []
        for _ in range(args.repeats):
            done = subprocess.run([sys.executable, "-c", _VERIFY, tmp, str(args.tokenizer)], capture_output=True,
                                  text=True, check=True)
            runs.append(json.loads(done.stdout))
    median = statistics.median(r["s"] for r in runs)
    print(f"verify_sidecar on {args.tokens:,} tokens: median {median:.2f} s (n={len(runs)}), peak RSS "
          f"{max(r['rss_mb'] for r in runs):.0f} MB   target <= {TARGET_S} s")
    print(f"verdict: {runs[-1]['status']}: {runs[-1]['summary']}")
    print("PASS" if median <= TARGET_S and runs[-1]["status"] == "PASS" else "MISS", "target")


if __name__ == "__main__":
    main()
