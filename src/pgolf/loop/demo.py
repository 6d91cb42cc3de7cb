"""`pgolf demo`: a workspace on the offline demo corpus with a small model that trains in seconds on CPU."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pgolf.config import CONFIG_FILENAME
from pgolf.data.demo import DATASET_NAME, TOKENIZER_NAME, VOCAB_SIZE, build_demo_dataset
from pgolf.loop.hyperparams import set_defaults
from pgolf.workspace import Workspace, init_workspace

DATA_DIR = "data"
# The small model lives in the script's hyperparameter block, not in environment variables, so that
# every value the search changes really takes effect (the environment would override the script).
# Runs are step-limited (ITERATIONS; a run the wallclock cap cuts is a crash, never a score) so that the
# noise floor measures seeds, not the machine's load.
DEMO_STEPS = 20
DEMO_SLOTS = 2
# A real improvement is planted where the search looks: the demo starts from an embedding learning rate
# far above what 20 steps tolerate (0.3: val_bpb about 3.5; 0.01-0.05: about 2.89, with seed-to-seed
# sigma about 0.01), and every value of the searched range is better. Finding it is honest work for the
# loop (screen, replicate with paired seeds, test), and it shows a replicated keep.
PLANTED = {"TIED_EMBED_LR": 0.3}
DEMO_DEFAULTS: dict[str, object] = {
    "NUM_LAYERS": 2, "MODEL_DIM": 64, "NUM_HEADS": 4, "NUM_KV_HEADS": 2, "MLP_MULT": 2,
    "TRAIN_SEQ_LEN": 128, "TRAIN_BATCH_TOKENS": 2048, "ITERATIONS": DEMO_STEPS, "WARMUP_STEPS": 0,
    "WARMDOWN_ITERS": 6, "VAL_LOSS_EVERY": 0, "TRAIN_LOG_EVERY": 5, "VAL_TOKENS_LIMIT": 16_384,
    "VAL_BATCH_SIZE": 16_384, **PLANTED,
}
DEMO_SEARCH_SPACE = """[proposer.search_space]         # searched values are rewritten in train_gpt.py's defaults
TIED_EMBED_LR = { type = "float", low = 0.01, high = 0.08, log = true }
MATRIX_LR = { type = "float", low = 0.03, high = 0.06, log = true }
"""
# One look at three paired seeds: the demo's keep costs a known number of runs.
DEMO_REPLICATES = 3
DEMO_LOOP = f"max_replicates = {DEMO_REPLICATES}\n"


def demo_script() -> str:
    """The baseline train_gpt.py with the demo's small model written into its defaults."""
    source = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    return set_defaults(source, DEMO_DEFAULTS)


def prepare_demo(directory: Path, *, train_seconds: float = 600.0,
                 progress: Callable[[str], None] | None = None) -> Workspace:
    """Build the corpus and the workspace in `directory`, or reuse both when they already exist."""
    say = progress or (lambda _msg: None)
    root = Path(directory).resolve()
    say("building the demo corpus (Python's documentation, a 1024-token BPE tokenizer)")
    build_demo_dataset(root / DATA_DIR, progress=say)
    if (root / CONFIG_FILENAME).is_file():
        say(f"continuing the existing demo workspace {root}")
        return Workspace(root)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train_gpt.py"
        script.write_text(demo_script(), encoding="utf-8")
        ws = init_workspace(
            root, train_script=script, dataset_dir=f"{DATA_DIR}/datasets/{DATASET_NAME}",
            tokenizer_path=f"{DATA_DIR}/tokenizers/{TOKENIZER_NAME}.model", vocab_size=VOCAB_SIZE,
            wallclock_seconds=train_seconds, timeout_seconds=round(train_seconds * 1.5 + 180),
            search_space=DEMO_SEARCH_SPACE, slots=DEMO_SLOTS, local_extra="step_limited = true\n",
            loop_extra=DEMO_LOOP, replicates=DEMO_REPLICATES,
        )
    say(f"created the demo workspace {root} (small model: {DEMO_DEFAULTS['NUM_LAYERS']} layers, "
        f"width {DEMO_DEFAULTS['MODEL_DIM']}, {DEMO_STEPS} steps per run, {DEMO_SLOTS} slots, at most "
        f"{train_seconds:g} s a run)")
    return ws


def demo_summary(ws: Workspace) -> list[str]:
    """What the demo found, in plain lines: the noise floor, the bar, each keep and why, the best script."""
    from pgolf import git
    from pgolf.loop.lab import Lab

    lab = Lab(ws, ws.config())
    rows = lab.rows()
    floor = lab.noise(rows)
    lines = []
    if floor is None:
        return ["No noise floor yet: the baseline runs did not finish."]
    lines.append(f"Noise floor: one run's val_bpb varies by sigma {floor.sigma:.4f} between seeds (pooled over "
                 f"{floor.groups} group(s) of repeated runs, {floor.dof} degrees of freedom).")
    lines.append(f"The bar: a change's first run had to beat the best by {floor.threshold:.4f} to be replicated; "
                 f"it was kept only if its paired replicates passed a one-sided test (alpha "
                 f"{lab.policy.alpha:g} for the whole session, spent across candidates).")
    kept = [r for r in rows if r.tier == "local" and r.status == "keep"]
    if not kept:
        lines.append("Nothing was kept in this run: every change was discarded (see `pgolf ledger`).")
    for row in kept:
        reason = _decision_reason(ws, row.run_id)
        lines.append(f"Kept {row.run_id}: {row.description.split(' [')[0]} — {reason}")
    best = lab.refs.best_commit()
    lines.append(f"The best script is commit {best[:8]} on pgolf/best: `git show pgolf/best:train_gpt.py` "
                 f"(in {ws.root}); its diff from the start: `git diff {git.git(ws.root, 'rev-list', '--max-parents=0', 'HEAD')[:8]} pgolf/best`.")
    return lines


def _decision_reason(ws: Workspace, run_id: str) -> str:
    from pgolf import statefile
    from pgolf.errors import DataError

    try:
        data = statefile.load_json(ws.run(run_id).decision, want=dict)
    except DataError:
        return "(no decision.json)"
    verdict = data.get("verdict") or {}
    if not verdict:
        return str(data.get("reason", ""))
    return (f"{verdict.get('n')} paired seeds, mean {verdict.get('candidate_mean', 0):.4f} vs "
            f"{verdict.get('incumbent_mean', 0):.4f}, p = {verdict.get('p_value', 0):.2g} "
            f"<= alpha {verdict.get('alpha', 0):.2g}")
