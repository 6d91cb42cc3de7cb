"""End to end on CPU with the real train_gpt.py: a noise floor and three search experiments."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from pgolf import git
from pgolf.config import parse_config
from pgolf.ledger import COLUMNS
from pgolf.loop.demo import DEMO_SEARCH_SPACE, PLANTED, demo_script
from pgolf.loop.hyperparams import find, read_hyperparameters, set_defaults
from pgolf.loop.proposers.search import validate_space
from pgolf.loop.refs import BEST_BRANCH, TAG_PREFIX
from pgolf.loop.supervisor import check_env_conflicts, run_loop
from pgolf.workspace import init_workspace, render_config

pytestmark = pytest.mark.slow

TINY = {"NUM_LAYERS": 1, "MODEL_DIM": 32, "NUM_HEADS": 2, "NUM_KV_HEADS": 1, "MLP_MULT": 2,
        "TRAIN_SEQ_LEN": 64, "TRAIN_BATCH_TOKENS": 1024, "ITERATIONS": 3, "WARMUP_STEPS": 0,
        "WARMDOWN_ITERS": 1, "VAL_LOSS_EVERY": 0, "TRAIN_LOG_EVERY": 1, "VAL_TOKENS_LIMIT": 2048,
        "VAL_BATCH_SIZE": 2048}
SPACE = """[proposer.search_space]
MATRIX_LR = { type = "float", low = 0.005, high = 0.2, log = true }
NUM_LAYERS = { type = "int", low = 1, high = 2 }
"""


def _baseline_script() -> str:
    return resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")


def test_real_script_baseline_and_three_judged_search_experiments(tmp_path: Path, demo_dataset):
    script = tmp_path / "train_gpt.py"
    script.write_text(set_defaults(_baseline_script(), TINY))
    ws = init_workspace(tmp_path / "ws", train_script=script, dataset_dir=str(demo_dataset.dataset_dir),
                        tokenizer_path=str(demo_dataset.tokenizer_path), vocab_size=1024,
                        wallclock_seconds=120, timeout_seconds=300, search_space=SPACE,
                        local_env='OMP_NUM_THREADS = "1"', replicates=2, loop_extra="max_replicates = 2\n")
    summary = run_loop(ws, experiments=3)  # with at most 2 paired seeds a candidate: a dozen real runs
    lines = ws.results_tsv.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    assert all(len(line.split("\t")) == 16 for line in lines)
    rows = ws.ledger().rows()
    assert [r.status for r in rows[:2]] == ["baseline", "baseline"]
    assert all(r.val_bpb and 0 < r.val_bpb < 20 and r.artifact_bytes and r.steps == 3 for r in rows[:2])
    experiments = [r for r in rows if r.description.startswith("tpe: ")]
    assert len(experiments) == 3
    # Every proposal was judged to the end (screened out, or replicated with paired seeds and tested).
    assert all(r.status in ("keep", "discard") for r in experiments), [(r.status, r.description) for r in rows]
    assert len(summary.experiments) == 3
    for r in experiments:
        result = json.loads((ws.run_dir(r.run_id) / "result.json").read_text())
        assert result["status"] == "ok" and result["val_bpb"] == pytest.approx(r.val_bpb)
        # The searched values reached the script: what ran is what the diff says.
        ran = read_hyperparameters((ws.run_dir(r.run_id) / "train_gpt.py").read_text())
        assert result["hyperparameters"]["num_layers"] == ran["num_layers"].default
    discarded = {TAG_PREFIX + r.run_id for r in experiments if r.status == "discard"}
    assert set(git.git(ws.root, "tag", "-l", f"{TAG_PREFIX}*").split()) == discarded
    kept = [r for r in experiments if r.status == "keep"]
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == (kept[-1].commit if kept else rows[0].commit)
    history = ws.program_md.read_text().split("<!-- EXPERIMENTS_START -->")[1].split("<!-- EXPERIMENTS_END -->")[0]
    assert all(r.run_id in history for r in rows[-8:])


def test_demo_workspace_searches_values_the_script_really_uses():
    script = demo_script()
    params = read_hyperparameters(script)
    config_text = render_config(search_space=DEMO_SEARCH_SPACE)


    config = parse_config(tomllib.loads(config_text))
    validate_space(config.proposer.search_space, script)
    assert check_env_conflicts(config, script, "search") == []  # no env value overrides the script
    assert find(params, "NUM_LAYERS").default == 2 and find(params, "ITERATIONS").default == 20
    # The planted improvement: the demo starts outside the searched range, which is all better (measured).
    for name, value in PLANTED.items():
        space = config.proposer.search_space[name]
        assert find(params, name).default == value and not space.low <= value <= space.high
    # The default space of a new workspace names settings of the baseline script too.
    validate_space(parse_config(tomllib.loads(render_config())).proposer.search_space, _baseline_script())
