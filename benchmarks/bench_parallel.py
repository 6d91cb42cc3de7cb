"""Experiments per hour with 1, 2, 4 and 16 local slots, on a stub training command that sleeps.

    .venv/bin/python benchmarks/bench_parallel.py [--sleep 10] [--rounds 2] [--slots 1,2,4,16]

Each slot count gets its own workspace whose train_gpt.py sleeps `--sleep` seconds and prints a
constant score, so every proposal is screened and discarded (no replicates) and the loop's own cost
is what differs. The noise floor is measured first and not timed; then `rounds × slots` experiments
are timed. Printed beside the targets: throughput relative to 1 slot (2 slots ≥ 1.8×, 16 slots ≥ 12×,
sleep-bound) and the scheduler's overhead per experiment (≤ 0.2 s), two ways:
- "added wall": the wall-clock time pgolf adds per experiment, (wall − rounds × the command's mean run
  time) / experiments: the loop's serial work, what throughput pays;
- "slot idle": slot-seconds per experiment beyond the command's own lifetime (wall × slots / experiments
  − its mean run time, its interpreter's start-up included). With more slots than cores this includes
  the queue for the CPUs: 16 proposals at once on a 2-core machine wait for each other.
Also the slot-seconds beyond the bare sleep (the launcher and the command's own start-up included).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pgolf.loop.supervisor import run_loop
from pgolf.workspace import init_workspace

STUB = '''\
import json, os, time

class Hyperparameters:
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    seed = int(os.environ.get("SEED", 1337))

args = Hyperparameters()
time.sleep(float(os.environ.get("STUB_SLEEP", "1")))
print("step:1/1 train_loss:1.0000 train_time:1ms step_avg:1.00ms", flush=True)
print("final_int8_zlib_roundtrip_exact val_loss:1.70000000 val_bpb:1.00000000", flush=True)
with open(os.environ["PGOLF_RESULT_JSON"], "w") as fh:
    json.dump({"status": "ok", "val_bpb": 1.0, "val_loss": 1.7, "artifact_bytes": 1000, "code_bytes": 900,
               "model_bytes": 100, "steps": 1, "train_ms": 1, "seed": args.seed}, fh)
'''
SPACE = '[proposer.search_space]\nMATRIX_LR = { type = "float", low = 0.001, high = 0.5, log = true }\n'
TARGETS = {2: 1.8, 16: 12.0}
OVERHEAD_TARGET = 0.2


def _workspace(root: Path, slots: int, sleep: float):
    script = root.parent / f"{root.name}-train_gpt.py"
    script.write_text(STUB)
    return init_workspace(root, train_script=script, search_space=SPACE, slots=slots,
                          local_env=f'STUB_SLEEP = "{sleep}"', wallclock_seconds=sleep + 60,
                          timeout_seconds=sleep + 120)


def measure(slots: int, sleep: float, rounds: int, base: Path) -> tuple[int, float, float]:
    """(experiments, wall seconds, mean seconds the command itself lived) for `rounds × slots`
    experiments on `slots` slots."""
    ws = _workspace(base / f"slots{slots}", slots, sleep)
    run_loop(ws, experiments=0)  # the noise floor, untimed
    experiments = rounds * slots
    start = time.perf_counter()
    summary = run_loop(ws, experiments=experiments)
    wall = time.perf_counter() - start
    done = len(summary.experiments)
    if done != experiments:
        sys.exit(f"{slots} slots: {done} of {experiments} experiments ran ({summary.stop_reason})")
    lived = sum(r.seconds for r in summary.experiments) / done
    return done, wall, lived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=10.0, help="seconds each stub run sleeps")
    parser.add_argument("--rounds", type=int, default=2, help="experiments per slot")
    parser.add_argument("--slots", default="1,2,4,16", help="slot counts, comma-separated")
    args = parser.parse_args()
    counts = [int(c) for c in args.slots.split(",")]
    base = Path(tempfile.mkdtemp(prefix="pgolf-bench-parallel-"))
    try:
        rates: dict[int, float] = {}
        print(f"stub run: sleep {args.sleep:g} s; {args.rounds} experiments per slot\n")
        print(f"{'slots':>5} {'exps':>5} {'wall s':>8} {'exps/hour':>10} {'speed-up':>9} {'target':>8} "
              f"{'added wall':>11} {'slot idle':>10} {'target':>7} {'beyond sleep':>13}   (s per experiment)")
        overheads: dict[int, tuple[float, float]] = {}
        for slots in counts:
            done, wall, lived = measure(slots, args.sleep, args.rounds, base)
            rates[slots] = done / wall * 3600
            speedup = rates[slots] / rates[counts[0]]
            added = (wall - args.rounds * lived) / done
            idle = wall * slots / done - lived
            beyond = wall * slots / done - args.sleep
            overheads[slots] = (added, idle)
            target = f">= {TARGETS[slots]:.1f}x" if slots in TARGETS else "-"
            print(f"{slots:>5} {done:>5} {wall:>8.1f} {rates[slots]:>10.0f} {speedup:>8.2f}x {target:>8} "
                  f"{added:>11.3f} {idle:>10.3f} {'<= ' + str(OVERHEAD_TARGET):>7} {beyond:>13.3f}", flush=True)
        met = all(rates[s] / rates[counts[0]] >= t for s, t in TARGETS.items() if s in rates and counts[0] == 1)
        print(f"\nspeed-up targets {'met' if met else 'NOT met'}")
        for label, index in (("added wall", 0), ("slot idle", 1)):
            over = [f"{s} slots ({o[index]:.3f} s)" for s, o in overheads.items() if o[index] > OVERHEAD_TARGET]
            print(f"overhead <= {OVERHEAD_TARGET} s as {label}: " + (f"NOT met at {', '.join(over)}" if over else "met"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
