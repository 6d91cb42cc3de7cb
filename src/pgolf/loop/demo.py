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
# Runs are step-limited (ITERATIONS) so that the noise floor measures seeds, not the machine's load;
# the wallclock limit is only a cap for the slowest proposals.
DEMO_STEPS = 20
DEMO_DEFAULTS: dict[str, object] = {
    "NUM_LAYERS": 2, "MODEL_DIM": 64, "NUM_HEADS": 4, "NUM_KV_HEADS": 2, "MLP_MULT": 2,
    "TRAIN_SEQ_LEN": 128, "TRAIN_BATCH_TOKENS": 2048, "ITERATIONS": DEMO_STEPS, "WARMUP_STEPS": 0,
    "WARMDOWN_ITERS": 6, "VAL_LOSS_EVERY": 0, "TRAIN_LOG_EVERY": 5, "VAL_TOKENS_LIMIT": 16_384,
    "VAL_BATCH_SIZE": 16_384,
}
DEMO_SEARCH_SPACE = """[proposer.search_space]         # searched values are rewritten in train_gpt.py's defaults
MATRIX_LR = { type = "float", low = 0.01, high = 0.12, log = true }
TIED_EMBED_LR = { type = "float", low = 0.01, high = 0.3, log = true }
NUM_LAYERS = { type = "int", low = 1, high = 3 }
MODEL_DIM = { type = "categorical", choices = [48, 64, 96] }
"""


def demo_script() -> str:
    """The baseline train_gpt.py with the demo's small model written into its defaults."""
    source = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    return set_defaults(source, DEMO_DEFAULTS)


def prepare_demo(directory: Path, *, train_seconds: float = 120.0,
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
            wallclock_seconds=train_seconds, timeout_seconds=round(train_seconds * 4 + 180),
            search_space=DEMO_SEARCH_SPACE,
        )
    say(f"created the demo workspace {root} (small model: {DEMO_DEFAULTS['NUM_LAYERS']} layers, "
        f"width {DEMO_DEFAULTS['MODEL_DIM']}, {DEMO_STEPS} steps per run, at most {train_seconds:g} s)")
    return ws
