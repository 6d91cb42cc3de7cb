"""Settings for a real training run of the baseline script that takes seconds on one CPU core."""

from __future__ import annotations

import sys
from pathlib import Path

TORCHRUN = Path(sys.executable).with_name("torchrun")

TINY_ENV = {
    "OMP_NUM_THREADS": "1", "ITERATIONS": "4", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1",
    "TRAIN_BATCH_TOKENS": "2048", "TRAIN_SEQ_LEN": "128", "VAL_BATCH_SIZE": "8192",
    "VAL_TOKENS_LIMIT": "8192", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2",
    "NUM_KV_HEADS": "1", "WARMUP_STEPS": "0", "COMPILE": "0",
}
