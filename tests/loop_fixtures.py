"""Helpers for the loop's tests: a fast fake training script that honours the training contract."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from pgolf.workspace import Workspace, init_workspace

# Prints the official log lines and writes result.json like train_gpt.py, in milliseconds. Its score is
# a smooth function of two hyperparameters plus a little seed noise, so search has something to find.
FAKE_TRAIN = '''\
import json, math, os, sys, time

class Hyperparameters:
    iterations = int(os.environ.get("ITERATIONS", 20))
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    num_layers = int(os.environ.get("NUM_LAYERS", 4))
    model_dim = int(os.environ.get("MODEL_DIM", 64))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    num_heads = int(os.environ.get("NUM_HEADS", 4))
    num_kv_heads = int(os.environ.get("NUM_KV_HEADS", 4))
    mlp_mult = int(os.environ.get("MLP_MULT", 2))
    train_batch_tokens = int(os.environ.get("TRAIN_BATCH_TOKENS", 4096))
    seed = int(os.environ.get("SEED", 1337))

args = Hyperparameters()
sleep = float(os.environ.get("FAKE_SLEEP", "0"))
if os.environ.get("FAKE_CRASH"):
    raise RuntimeError("fake crash for the test")
hold = os.environ.get("FAKE_HOLD_FILE")
print(f"started pid {os.getpid()}", flush=True)
while hold and os.path.exists(hold):
    time.sleep(0.05)
for step in range(1, args.iterations + 1):
    if sleep:
        time.sleep(sleep / args.iterations)
    print(f"step:{step}/{args.iterations} train_loss:{4.0 - step * 0.01:.4f} train_time:{step * 10}ms step_avg:10.00ms", flush=True)
bpb = 1.5 + 0.5 * (math.log(args.matrix_lr) - math.log(0.02)) ** 2 + 0.01 * (args.num_layers - 6) ** 2
bpb += 0.0005 * ((args.seed * 7919) % 10) / 10
model_bytes = 1000 * args.num_layers * args.model_dim
code_bytes = len(open(__file__, "rb").read())
with open("final_model.int8.ptz", "wb") as fh:
    fh.write(b"x" * 10)
print(f"step:{args.iterations}/{args.iterations} val_loss:{bpb * 1.7:.4f} val_bpb:{bpb:.4f} train_time:{args.iterations * 10}ms step_avg:10.00ms")
print(f"Total submission size int8+zlib: {code_bytes + model_bytes} bytes")
print(f"final_int8_zlib_roundtrip_exact val_loss:{bpb * 1.7:.8f} val_bpb:{bpb:.8f}")
path = os.environ.get("PGOLF_RESULT_JSON")
if path:
    with open(path, "w") as fh:
        json.dump({"status": "ok", "val_bpb": bpb, "val_loss": bpb * 1.7, "artifact_bytes": code_bytes + model_bytes,
                   "code_bytes": code_bytes, "model_bytes": model_bytes, "steps": args.iterations,
                   "train_ms": args.iterations * 10, "seed": args.seed, "peak_memory_mb": 100.0,
                   "curve": [{"step": args.iterations, "val_bpb": bpb}]}, fh)
'''

SEARCH_SPACE = '''[proposer.search_space]
MATRIX_LR = { type = "float", low = 0.005, high = 0.08, log = true }
NUM_LAYERS = { type = "int", low = 2, high = 8 }
'''


def make_workspace(root: Path, *, script: str = FAKE_TRAIN, search_space: str = SEARCH_SPACE,
                   local_env: str = "", wallclock: float = 30, timeout: float = 60, slots: int = 1) -> Workspace:
    """A workspace in `root` whose train_gpt.py is `script` (the fake by default)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    source = root.parent / f"{root.name}-train_gpt.py"
    source.write_text(script)
    return init_workspace(root, train_script=source, search_space=search_space, local_env=local_env,
                          wallclock_seconds=wallclock, timeout_seconds=timeout, min_gain=0.002, slots=slots)


def in_flight(ws: Workspace) -> list[dict]:
    """The loop's in-flight records (`.pgolf/running/*.json`) as plain data."""
    states = []
    for path in sorted(ws.running_dir.glob("*.json")) if ws.running_dir.is_dir() else ():
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads(path.read_text()))
    return states
