"""Benchmark the experiment loop: its own overhead per experiment, and TPE search against random sampling.

Run: .venv/bin/python benchmarks/bench_loop.py overhead [--experiments N]
     .venv/bin/python benchmarks/bench_loop.py search [--experiments 8] [--seed 0] [--out DIR]

`overhead` runs the loop with a trivial training command (prints the official lines, writes
result.json, exits) and reports the wall time per experiment minus the training subprocess's own time:
proposing, committing, preflight, reading the result, deciding, the ledger row, git moves, program.md.
Target: at most 1.5 s.

`search` measures the demo's noise floor once, copies the workspace, and runs the same number of
experiments with Optuna TPE and with random sampling of the same space (same proposer seed, same
training seeds), printing the best val_bpb after each experiment side by side. It trains the demo's
small model for real: several minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pgolf.loop.demo import prepare_demo
from pgolf.loop.events import ExperimentRecord, QuietEvents
from pgolf.loop.lab import Lab
from pgolf.loop.supervisor import run_loop
from pgolf.status import HAS_SCORE, Status
from pgolf.workspace import Workspace, init_workspace

OVERHEAD_TARGET_SECONDS = 1.5

# The fastest script that honours the training contract: the loop's cost is all that is left.
TRIVIAL_TRAIN = '''\
import json, os

class Hyperparameters:
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    num_layers = int(os.environ.get("NUM_LAYERS", 9))

args = Hyperparameters()
bpb = 1.2 + (args.matrix_lr - 0.03) ** 2 + 0.001 * args.num_layers + int(os.environ["SEED"]) % 7 * 1e-4
print(f"step:10/10 train_loss:2.0000 train_time:10ms step_avg:1.00ms")
print(f"step:10/10 val_loss:{bpb * 1.7:.4f} val_bpb:{bpb:.4f} train_time:10ms step_avg:1.00ms")
with open(os.environ["PGOLF_RESULT_JSON"], "w") as fh:
    json.dump({"status": "ok", "val_bpb": bpb, "artifact_bytes": 1000, "model_bytes": 500, "steps": 10,
               "train_ms": 10, "seed": int(os.environ["SEED"])}, fh)
'''
TRIVIAL_SPACE = """[proposer.search_space]
MATRIX_LR = { type = "float", low = 0.01, high = 0.08, log = true }
NUM_LAYERS = { type = "int", low = 4, high = 12 }
"""


def bench_overhead(experiments: int) -> None:
    """Loop seconds per experiment, excluding the training subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train_gpt.py"
        script.write_text(TRIVIAL_TRAIN)
        ws = init_workspace(Path(tmp) / "ws", train_script=script, search_space=TRIVIAL_SPACE)
        run_loop(ws, experiments=1)  # noise floor, study creation and imports are not per-experiment costs
        start = time.perf_counter()
        summary = run_loop(ws, experiments=experiments)
        total = time.perf_counter() - start
    # Every run's subprocess (replicates included) is training time; decisions ran nothing.
    training = [r.seconds for r in summary.records if r.kind != "decision"]
    overhead = (total - sum(training)) / len(summary.experiments)
    print(f"{experiments} experiments ({len(training)} runs with replicates) in {total:.2f} s; training "
          f"subprocesses {sum(training):.2f} s (median {statistics.median(training):.3f} s each)")
    print(f"{'metric':<40}{'pgolf':>10}{'target':>10}")
    print(f"{'loop overhead per experiment (s)':<40}{overhead:>10.3f}{OVERHEAD_TARGET_SECONDS:>10.1f}")
    print("within target" if overhead <= OVERHEAD_TARGET_SECONDS else "OVER TARGET")


def _set_sampler(ws: Workspace, sampler: str, seed: int) -> None:
    text = ws.config_path.read_text()
    text = text.replace('kind = "search"', f'kind = "search"\nsearch_sampler = "{sampler}"\nseed = {seed}')
    ws.config_path.write_text(text)


class _Progress(QuietEvents):
    def __init__(self, label: str) -> None:
        self.label = label

    def run_finished(self, record: ExperimentRecord) -> None:
        bpb = "-" if record.val_bpb is None else f"{record.val_bpb:.4f}"
        print(f"  [{self.label}] {record.run_id} {record.status:<9} {bpb}  {record.description}", flush=True)


def _best_curve(ws: Workspace, floor_mean: float) -> list[float]:
    """Best val_bpb known after each experiment (the noise-floor mean before any)."""
    best, curve = floor_mean, []
    for row in ws.ledger().rows():
        if row.status == Status.BASELINE:
            continue
        if row.val_bpb is not None and row.status in HAS_SCORE:
            best = min(best, row.val_bpb)
        curve.append(best)
    return curve


def bench_search(experiments: int, seed: int, out: Path) -> None:
    """TPE against random sampling on the demo, from one shared noise floor."""
    if out.exists():
        shutil.rmtree(out)
    tpe_ws = prepare_demo(out / "tpe", progress=lambda m: print(f"  {m}", flush=True))
    config = tpe_ws.config()
    run_loop(tpe_ws, experiments=0, events=_Progress("floor"))  # the noise floor only
    floor = Lab(tpe_ws, config).noise()
    assert floor is not None, "the noise floor was not measured"
    print(f"noise floor: mean {floor.mean:.4f}, sigma {floor.sigma:.4f}, threshold {floor.threshold:.4f}")
    shutil.copytree(tpe_ws.root, out / "random", symlinks=True)
    random_ws = Workspace(out / "random")
    for ws, sampler in ((tpe_ws, "tpe"), (random_ws, "random")):
        _set_sampler(ws, sampler, seed)
        start = time.perf_counter()
        run_loop(ws, experiments=experiments, events=_Progress(sampler))
        print(f"{sampler}: {experiments} experiments in {time.perf_counter() - start:.0f} s", flush=True)
    tpe, rnd = _best_curve(tpe_ws, floor.mean), _best_curve(random_ws, floor.mean)
    print(f"\nbest val_bpb after each experiment (noise floor {floor.mean:.4f} ± {floor.sigma:.4f})")
    print(f"{'experiment':>10}{'search (TPE)':>14}{'random':>10}")
    for i, (a, b) in enumerate(zip(tpe, rnd, strict=False), start=1):
        print(f"{i:>10}{a:>14.4f}{b:>10.4f}")
    print(f"{'final':>10}{tpe[-1]:>14.4f}{rnd[-1]:>10.4f}   (lower is better)")
    # A comparison in which one side never trained is no comparison: say so and fail.
    crashed = {name: sum(r.status == "crash" for r in ws.ledger().rows())
               for name, ws in (("search (TPE)", tpe_ws), ("random", random_ws))}
    print("crashed runs: " + ", ".join(f"{name} {n}" for name, n in crashed.items()))
    if any(n == experiments for n in crashed.values()):
        raise SystemExit("every run of one side crashed: the comparison is invalid (see its run folders)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    over = sub.add_parser("overhead", help="loop overhead per experiment with a trivial training command")
    over.add_argument("--experiments", type=int, default=10)
    search = sub.add_parser("search", help="TPE against random sampling on the demo")
    search.add_argument("--experiments", type=int, default=8)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--out", type=Path, default=Path("bench-out/loop-search"))
    args = parser.parse_args()
    if args.what == "overhead":
        bench_overhead(args.experiments)
    else:
        bench_search(args.experiments, args.seed, args.out)


if __name__ == "__main__":
    sys.exit(main())
