"""Benchmark pgolf's train_gpt.py against the challenge's baseline script: training tokens per second on GPU.

Run (on a CUDA machine; fetch the challenge's script yourself, it is never committed here):
    curl -LO https://raw.githubusercontent.com/openai/parameter-golf/main/train_gpt.py
    .venv/bin/python benchmarks/bench_train_gpu.py --reference ./train_gpt.py [--steps 200] [--nproc 1]

Both scripts train the default configuration (9x512, 524,288 tokens per step, 20 compile-warmup steps)
for --steps steps with no wallclock cap and no intermediate validation, on the same synthetic shards
(uniform random tokens: speed does not depend on the text) and the same vocab-1024 tokenizer. Each runs
in its own folder, and the tokens per second come from the final `step:N/N ... train_time:Xms` line each
prints (training time only: warmup, validation and export are excluded by both). The ratio
pgolf / reference must be at least 1.0; the exit code is 1 when it is not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgolf.data.shards import write_shard

OURS = Path(__file__).resolve().parents[1] / "src" / "pgolf" / "templates" / "train_gpt.py"
SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "tokenizers" / "fineweb_1024_bpe.model"
TOKENS_PER_STEP = 524_288
TRAIN_TOKENS = 16 * 2**20  # the stream wraps around, so one shard serves any number of steps
VAL_TOKENS = 2**20 + 1
TARGET_RATIO = 1.0
_FINAL_STEP = re.compile(r"^step:(\d+)/(\d+) val_loss:\S+ val_bpb:\S+ train_time:(\d+)ms")
_EXACT = re.compile(r"^final_int8_zlib_roundtrip_exact val_loss:\S+ val_bpb:(\S+)")


@dataclass
class Measurement:
    """One script's run: steps, training time and the score it printed."""

    steps: int
    train_ms: float
    val_bpb: float | None

    @property
    def tokens_per_second(self) -> float:
        return self.steps * TOKENS_PER_STEP / (self.train_ms / 1000.0)


def write_synthetic_shards(data_dir: Path, seed: int) -> None:
    """One train shard and one validation shard of uniform random tokens below 1024."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    write_shard(data_dir / "fineweb_train_000000.bin", rng.integers(0, 1024, TRAIN_TOKENS, dtype=np.uint16))
    write_shard(data_dir / "fineweb_val_000000.bin", rng.integers(0, 1024, VAL_TOKENS, dtype=np.uint16))


def find_tokenizer(given: Path | None, reference: Path, work: Path) -> Path:
    """--tokenizer, else the challenge's sp1024 model beside the project or the reference, else the demo one."""
    for candidate in (given, SHARED_TOKENIZER, reference.parent / "data" / "tokenizers" / "fineweb_1024_bpe.model"):
        if candidate is not None and candidate.is_file():
            return candidate
    from pgolf.data.demo import build_demo_dataset  # an offline vocab-1024 tokenizer, built in seconds

    print("no sp1024 tokenizer found: building the demo corpus's vocab-1024 tokenizer", flush=True)
    return build_demo_dataset(work / "demo").tokenizer_path


def run_script(name: str, script: Path, work: Path, env: dict[str, str], nproc: int, timeout: float) -> Measurement:
    """Run one script in its own folder; its log goes to <folder>/train.log."""
    run_dir = work / name
    run_dir.mkdir(exist_ok=True)
    local = run_dir / "train_gpt.py"
    shutil.copyfile(script, local)
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    print(f"running {name} ({script}) ...", flush=True)
    proc = subprocess.run([*launcher, str(local)], cwd=run_dir, env={**os.environ, **env, "RUN_ID": name},
                          capture_output=True, text=True, timeout=timeout)
    (run_dir / "train.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    final = [m for line in proc.stdout.splitlines() if (m := _FINAL_STEP.match(line))]
    if proc.returncode != 0 or not final:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise SystemExit(f"{name} failed (exit {proc.returncode}); log: {run_dir / 'train.log'}\n{tail}")
    exact = [m for line in proc.stdout.splitlines() if (m := _EXACT.match(line))]
    steps, _, train_ms = final[-1].groups()
    return Measurement(int(steps), float(train_ms), float(exact[-1][1]) if exact else None)


def report(reference: list[Measurement], ours: list[Measurement]) -> float:
    """Print the side-by-side table; return the ratio of median tokens per second."""
    def median(runs: list[Measurement], attr: str) -> float:
        return statistics.median(getattr(run, attr) for run in runs)

    ref_tps, our_tps = median(reference, "tokens_per_second"), median(ours, "tokens_per_second")
    rows = [
        ("steps", f"{reference[0].steps}", f"{ours[0].steps}"),
        ("train time (ms, median)", f"{median(reference, 'train_ms'):.0f}", f"{median(ours, 'train_ms'):.0f}"),
        ("step avg (ms)", f"{median(reference, 'train_ms') / reference[0].steps:.2f}",
         f"{median(ours, 'train_ms') / ours[0].steps:.2f}"),
        ("tokens/s (median)", f"{ref_tps:,.0f}", f"{our_tps:,.0f}"),
        ("final int8+zlib val_bpb", f"{reference[-1].val_bpb}", f"{ours[-1].val_bpb}"),
    ]
    print(f"\n{'':26}{'reference':>16}{'pgolf':>16}")
    for label, ref, our in rows:
        print(f"{label:26}{ref:>16}{our:>16}")
    ratio = our_tps / ref_tps
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"\nratio pgolf/reference tokens/s: {ratio:.3f} ({verdict} the target >= {TARGET_RATIO})")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="the challenge's train_gpt.py")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per run (default 200)")
    parser.add_argument("--nproc", type=int, default=1, help="GPUs per run, through torchrun when > 1")
    parser.add_argument("--repeats", type=int, default=1, help="runs per script, alternating (median)")
    parser.add_argument("--tokenizer", type=Path, help="a vocab-1024 SentencePiece model")
    parser.add_argument("--keep", type=Path, help="keep run folders and logs here instead of a temp dir")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run before giving up")
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"{args.reference}: not a file (fetch the challenge's train_gpt.py first)")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark compares GPU training speed")
    work = args.keep or Path(tempfile.mkdtemp(prefix="pgolf-bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data_dir = work / "data"
        write_synthetic_shards(data_dir, seed=0)
        env = {
            "DATA_PATH": str(data_dir), "TOKENIZER_PATH": str(find_tokenizer(args.tokenizer, args.reference, work)),
            "VOCAB_SIZE": "1024", "ITERATIONS": str(args.steps), "MAX_WALLCLOCK_SECONDS": "0",
            "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "50",
        }
        print(f"{torch.cuda.get_device_name(0)} x{args.nproc}, torch {torch.__version__}, {args.steps} steps",
              flush=True)
        reference, ours = [], []
        for i in range(args.repeats):  # alternate, so drift in clocks or temperature hits both alike
            reference.append(run_script(f"reference{i}", args.reference, work, env, args.nproc, args.timeout))
            ours.append(run_script(f"pgolf{i}", OURS, work, env, args.nproc, args.timeout))
        ratio = report(reference, ours)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ratio >= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
