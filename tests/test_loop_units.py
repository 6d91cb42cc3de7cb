"""The loop's pure parts: hyperparameter rewriting, decisions, noise floor, preflight, progress, promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgolf.budget import BudgetManager
from pgolf.config import parse_config
from pgolf.ledger import LedgerRow
from pgolf.loop.decision import RunFacts, gate_failure, hard_gates
from pgolf.loop.handoff import MAX_CHARS, build_handoff
from pgolf.loop.hyperparams import read_hyperparameters, set_defaults
from pgolf.loop.noise import noise_floor
from pgolf.loop.preflight import preflight
from pgolf.loop.progress import ProgressTracker
from pgolf.loop.promotion import decide_promotion, running_baseline

BLOCK = '''import os

class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/x")
    iterations = int(os.environ.get("ITERATIONS", 20000))  # steps
    matrix_lr = float(os.environ.get("MATRIX_LR", "0.04"))
    tie = bool(int(os.environ.get("TIE_EMBEDDINGS", "1")))
    warm = int(os.environ.get("WARMUP", max(1, 5)))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    num_layers = int(os.environ.get("NUM_LAYERS", 9))
    num_heads = int(os.environ.get("NUM_HEADS", 8))
    num_kv_heads = int(os.environ.get("NUM_KV_HEADS", 4))
    mlp_mult = int(os.environ.get("MLP_MULT", 2))

def later():
    return int(os.environ.get("NOT_IN_BLOCK", 3))
'''


def test_reads_the_block_only_with_types_and_defaults():
    params = read_hyperparameters(BLOCK)
    assert "not_in_block" not in {p.env.lower() for p in params.values()}
    assert params["iterations"].default == 20000 and params["iterations"].type == "int"
    assert params["matrix_lr"].default == 0.04 and params["matrix_lr"].type == "float"
    assert params["tie"].type == "bool" and params["tie"].default is True
    assert params["data_path"].type == "str"
    assert params["warm"].env == "WARMUP"  # nested parentheses in the default


def test_set_defaults_rewrites_literals_in_place_keeping_style():
    out = set_defaults(BLOCK, {"ITERATIONS": 500, "matrix_lr": 0.0123456789, "TIE_EMBEDDINGS": False,
                               "warmup": 7, "data_path": "/abs"})
    assert 'int(os.environ.get("ITERATIONS", 500))  # steps' in out
    assert 'float(os.environ.get("MATRIX_LR", "0.0123457"))' in out
    assert 'bool(int(os.environ.get("TIE_EMBEDDINGS", "0")))' in out
    assert 'int(os.environ.get("WARMUP", 7))' in out
    assert 'os.environ.get("DATA_PATH", "/abs")' in out
    assert out.count("\n") == BLOCK.count("\n")
    reread = read_hyperparameters(out)
    assert reread["iterations"].default == 500 and reread["matrix_lr"].default == pytest.approx(0.0123457)
    with pytest.raises(KeyError):
        set_defaults(BLOCK, {"NO_SUCH": 1})


def _facts(**kw) -> RunFacts:
    base = dict(returncode=0, timed_out=False, interrupted=False, result_status="ok", val_bpb=1.20,
                artifact_bytes=1000, train_seconds=10.0)
    return RunFacts(**{**base, **kw})


@pytest.mark.parametrize(("facts", "status"), [
    (_facts(val_bpb=1.20), None),                                   # scored within the gates: the judge decides
    (_facts(artifact_bytes=16_000_001), "oversize"),
    (_facts(train_seconds=30.0), "timeout"),
    (_facts(timed_out=True, val_bpb=None), "timeout"),
    (_facts(interrupted=True), "aborted"),
    (_facts(result_status="aborted", val_bpb=None), "aborted"),
    (_facts(result_status="crashed", val_bpb=None, returncode=1), "crash"),
])
def test_hard_gates_come_first(facts, status):
    failed, _gates = gate_failure(facts, artifact_limit=16_000_000, wallclock_seconds=10.0)
    assert (failed.status if failed else None) == status


def test_time_gate_allows_the_step_in_flight():
    size, time_gate = hard_gates(_facts(train_seconds=12.0, step_seconds=2.5), artifact_limit=10**7,
                                 wallclock_seconds=10.0)
    assert size.passed and time_gate.passed
    assert not hard_gates(_facts(train_seconds=12.0, step_seconds=1.0), artifact_limit=10**7,
                          wallclock_seconds=10.0)[1].passed


def _row(status: str, bpb: float | None, commit: str = "c1", run_id: str = "r1", **kw) -> LedgerRow:
    return LedgerRow(commit=commit, tier=kw.pop("tier", "local"), val_bpb=bpb, artifact_bytes=100,
                     memory_gb=None, status=status, run_id=run_id, **kw)


def test_noise_floor_pools_sigma_over_every_group_at_the_incumbent():
    rows = [_row("baseline", 1.30, "old", seed=1), _row("baseline", 1.31, "old", seed=2),
            _row("baseline", 1.20, "new", seed=1), _row("baseline", 1.22, "new", seed=2),
            _row("crash", None, "new", seed=3)]
    floor = noise_floor(rows, min_gain=0.002, screen_sigmas=1.0)
    assert floor is not None and floor.commit == "new" and floor.runs == 2
    assert floor.mean == pytest.approx(1.21)
    # σ² pooled: (0.005² · 2 + 0.01² · 2) / 2 dof
    assert floor.sigma == pytest.approx(((0.00005 + 0.0002) / 2) ** 0.5) and floor.dof == 2 and floor.groups == 2
    assert floor.threshold == pytest.approx(floor.sigma * (1 + 1 / 2) ** 0.5)
    assert noise_floor(rows[:1], min_gain=0.002, screen_sigmas=1.0) is None
    tight = noise_floor([_row("baseline", 1.2, seed=1), _row("baseline", 1.2, seed=2)], min_gain=0.002,
                        screen_sigmas=1.0)
    assert tight is not None and tight.threshold == 0.002


def test_preflight_catches_syntax_network_and_oversize():
    assert preflight(BLOCK, artifact_limit=10**7, margin_bytes=0).ok
    bad = preflight(BLOCK + "\ndef broken(:\n", artifact_limit=10**7, margin_bytes=0)
    assert not bad.ok and "compiles" in bad.failure
    net = preflight("import urllib.request\n" + BLOCK, artifact_limit=10**7, margin_bytes=0)
    assert not net.ok and "urllib" in net.failure
    odd = preflight("import somethingodd\n" + BLOCK, artifact_limit=10**7, margin_bytes=0)
    assert odd.ok and any(c.name == "imports" and not c.passed for c in odd.checks)
    # Doubling the width roughly quadruples the model: 4 MB measured becomes ~15 MB, over 16 MB - 1 MB.
    wider = set_defaults(BLOCK, {"MODEL_DIM": 1024})
    big = preflight(wider, artifact_limit=16_000_000, margin_bytes=1_000_000, parent_source=BLOCK,
                    parent_model_bytes=4_000_000)
    assert big.oversize and not big.ok and "projected" in big.failure
    same = preflight(BLOCK, artifact_limit=16_000_000, margin_bytes=1_000_000, parent_source=BLOCK,
                     parent_model_bytes=4_000_000)
    assert same.ok and not same.oversize


def test_progress_from_official_log_lines():
    tracker = ProgressTracker(tokens_per_step=524288, wallclock_seconds=600)
    tracker.feed("step:100/20000 train_loss:3.2100 train_time:50000ms step_avg:500.00ms")
    p = tracker.feed("some other line")
    assert (p.step, p.total_steps, p.train_loss) == (100, 20000, 3.21)
    assert p.tokens_per_second == pytest.approx(524288 / 0.5)
    assert p.eta_seconds == pytest.approx(550.0)  # the wallclock limit comes before 19,900 more steps
    p = tracker.feed("step:200/20000 val_loss:2.1000 val_bpb:1.2345 train_time:100000ms step_avg:500.00ms")
    assert p.val_bpb == 1.2345 and p.step == 200


def test_handoff_is_compact_and_lists_failures_and_dead_ends():
    rows = [_row("baseline", 1.3, run_id="r1"), _row("crash", None, run_id="r2", description="x" * 500),
            _row("discard", 1.35, run_id="r3", description="wider MLP")]
    rows += [_row("discard", 1.4, run_id=f"r{i}", description="y" * 2000) for i in range(4, 30)]
    text = build_handoff(rows, None, None, "research " * 2000, description_file="/tmp/d.txt")
    assert len(text) <= MAX_CHARS
    assert "Failures" in text and "Dead ends" in text and "/tmp/d.txt" in text


def test_promotion_queues_only_with_a_remote_tier_and_enough_gain(tmp_path: Path):
    budget = BudgetManager(tmp_path / "budget.json", parse_config({}).budget)
    local_only = parse_config({})
    decision = decide_promotion(local_only, budget, [], val_bpb=1.0, artifact_bytes=10, baseline_mean=1.3)
    assert decision.promoted == "no" and "no remote tier" in decision.reason
    remote = parse_config({"tiers": {"ssh": {"host": "gpu.example"}, "remote": "ssh"}})
    small = decide_promotion(remote, budget, [], val_bpb=1.28, artifact_bytes=10, baseline_mean=1.3)
    assert small.promoted == "no" and small.gates[0].name == "relative_gain" and not small.gates[0].passed
    big = decide_promotion(remote, budget, [], val_bpb=1.2, artifact_bytes=10, baseline_mean=1.3)
    assert big.promoted == "pending" and big.relative_gain == pytest.approx(0.1 / 1.3)
    assert {g.name for g in big.gates} == {"relative_gain", "artifact_bytes", "budget"}
    # The running baseline is the last promoted local run, not the first baseline.
    rows = [_row("keep", 1.2, promoted="pending")]
    assert running_baseline(rows, 1.3) == 1.2
    again = decide_promotion(remote, budget, rows, val_bpb=1.19, artifact_bytes=10, baseline_mean=1.3)
    assert again.promoted == "no"


def test_a_wallclock_cut_of_a_step_limited_run_is_a_crash_never_a_score():
    cut = _facts(wallclock_cut="stopping_early: wallclock_cap train_time:120010ms step:7/20")
    failed, _ = gate_failure(cut, artifact_limit=16_000_000, wallclock_seconds=200.0, step_limited=True)
    assert failed is not None and failed.status == "crash" and "step:7/20" in failed.reason
    assert gate_failure(cut, artifact_limit=16_000_000, wallclock_seconds=200.0)[0] is None  # wallclock-limited
