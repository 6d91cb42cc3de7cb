"""The baseline training script, run for real on CPU: tiny configurations on the offline demo corpus."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import pgolf.templates
from pgolf.cli.app import app
from pgolf.logs import read_run_result
from pgolf.scoring.luts import build_luts

runner = CliRunner()

SCRIPT = Path(pgolf.templates.__file__).parent / "train_gpt.py"

# A ~0.36M-parameter model whose embedding (1024 x 128) is big enough to be quantized on export.
# No wallclock cap, so the schedule (and thus the result) depends only on the step count. The early-abort
# check at step 8 is one the run passes easily: it must not stop it.
TINY = {
    "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
    "TRAIN_SEQ_LEN": "128", "TRAIN_BATCH_TOKENS": "4096", "ITERATIONS": "24", "WARMDOWN_ITERS": "8",
    "WARMUP_STEPS": "2", "VAL_LOSS_EVERY": "8", "TRAIN_LOG_EVERY": "8", "VAL_TOKENS_LIMIT": "16384",
    "VAL_BATCH_SIZE": "16384", "MAX_WALLCLOCK_SECONDS": "0", "RUN_ID": "tiny",
    "EARLY_ABORT_STEP": "8", "EARLY_ABORT_BPB": "50",
}
# Smaller still, for runs that stop within a few steps; it validates at step 0, before any training.
MICRO = {
    **TINY, "MODEL_DIM": "64", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "64",
    "TRAIN_BATCH_TOKENS": "1024", "ITERATIONS": "6", "VAL_LOSS_EVERY": "4", "TRAIN_LOG_EVERY": "1",
    "VAL_TOKENS_LIMIT": "4096", "VAL_BATCH_SIZE": "4096", "WARMUP_STEPS": "0", "EARLY_ABORT_STEP": "0",
}
RESULT_KEYS = {"status", "reason", "val_loss", "val_bpb", "pre_quant_val_loss", "pre_quant_val_bpb",
               "code_bytes", "model_bytes", "artifact_bytes", "steps", "train_ms", "eval_ms",
               "tokens_per_second", "peak_memory_mb", "params", "seed", "device", "world_size",
               "hyperparameters", "curve"}


@dataclass
class Run:
    """One finished execution of the script in its own folder."""

    run_dir: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict:
        return json.loads((self.run_dir / "result.json").read_text(encoding="utf-8"))

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(prefix)]


def run_script(run_dir: Path, dataset, env: dict[str, str], nproc: int = 1) -> Run:
    """Copy the script into `run_dir` (as pgolf's loop does) and run it there; stdout becomes train.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    script = run_dir / "train_gpt.py"
    shutil.copyfile(SCRIPT, script)
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    full_env.update({"OMP_NUM_THREADS": "1", "DATA_PATH": str(dataset.dataset_dir),
                     "TOKENIZER_PATH": str(dataset.tokenizer_path),
                     "PGOLF_RESULT_JSON": str(run_dir / "result.json"), **env})
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    proc = subprocess.run([*launcher, str(script)], cwd=run_dir, env=full_env, capture_output=True,
                          text=True, timeout=300)
    (run_dir / "train.log").write_text(proc.stdout, encoding="utf-8")
    return Run(run_dir, proc.returncode, proc.stdout, proc.stderr)


@functools.cache
def load_script_module() -> ModuleType:
    """The script imported as a module (its __main__ block does not run)."""
    name = "pgolf_train_gpt_under_test"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(demo_dataset, tmp_path_factory) -> Run:
    """The tiny configuration, one process: shared by the checks of a whole run."""
    run = run_script(tmp_path_factory.mktemp("tiny"), demo_dataset, TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_tiny_run_trains_validates_exports_and_round_trips(tiny_run):
    result = tiny_run.result
    assert set(result) >= RESULT_KEYS
    assert result["status"] == "ok" and result["reason"] == ""
    assert result["device"] == "cpu" and result["world_size"] == 1 and result["seed"] == 1337
    assert result["steps"] == 24 and result["tokens_per_step"] == 4096 and not tiny_run.lines("early_abort")
    assert result["hyperparameters"]["num_layers"] == 2 and result["hyperparameters"]["model_dim"] == 128

    # It learned: validation falls from the untrained model's ~ln(1024) nats, and so does the train loss.
    curve = result["curve"]
    assert [p["step"] for p in curve] == [0, 8, 16, 24]
    assert curve[-1]["val_bpb"] < 0.8 * curve[0]["val_bpb"]
    train_losses = [float(re.search(r"train_loss:(\S+)", line)[1]) for line in tiny_run.lines("step:")
                    if "train_loss" in line]
    assert train_losses[-1] < train_losses[0] - 1.0

    # The export really quantized something, and the model read back scores within 2% of the original.
    assert result["pre_quant_val_bpb"] == pytest.approx(curve[-1]["val_bpb"])
    assert abs(result["val_bpb"] - result["pre_quant_val_bpb"]) < 0.02 * result["pre_quant_val_bpb"]
    assert result["val_bpb"] != result["pre_quant_val_bpb"]
    model_file = tiny_run.run_dir / "final_model.int8.ptz"
    assert model_file.stat().st_size == result["model_bytes"]
    assert result["code_bytes"] == SCRIPT.stat().st_size
    assert result["artifact_bytes"] == result["model_bytes"] + result["code_bytes"]
    assert result["train_ms"] > 0 and result["eval_ms"] > 0 and result["peak_memory_mb"] > 0
    assert result["tokens_per_second"] == pytest.approx(24 * 4096 / (result["train_ms"] / 1000))


def test_tiny_run_prints_the_official_lines(tiny_run):
    result = tiny_run.result
    assert tiny_run.lines("model_params:") == [f"model_params:{result['params']}"]
    assert tiny_run.lines("world_size:") == ["world_size:1 grad_accum_steps:8"]
    assert len(tiny_run.lines("warmup_step:")) == 2
    train_line = re.compile(r"^step:\d+/24 train_loss:\d+\.\d{4} train_time:\d+ms step_avg:\d+\.\d{2}ms$")
    val_line = re.compile(r"^step:\d+/24 val_loss:\d+\.\d{4} val_bpb:\d+\.\d{4} train_time:\d+ms step_avg:")
    assert len([x for x in tiny_run.lines("step:") if train_line.match(x)]) == 12  # steps 1-10, 16, 24
    assert len([x for x in tiny_run.lines("step:") if val_line.match(x)]) == 4
    assert tiny_run.lines("Code size:") == [f"Code size: {result['code_bytes']} bytes"]
    assert tiny_run.lines("Serialized model int8+zlib:")[0].startswith(
        f"Serialized model int8+zlib: {result['model_bytes']} bytes (payload:")
    assert tiny_run.lines("Total submission size int8+zlib:") == [
        f"Total submission size int8+zlib: {result['artifact_bytes']} bytes"]
    (final,) = tiny_run.lines("final_int8_zlib_roundtrip ")
    assert re.match(r"^final_int8_zlib_roundtrip val_loss:\d+\.\d{4} val_bpb:\d+\.\d{4} eval_time:\d+ms$", final)
    assert tiny_run.lines("final_int8_zlib_roundtrip_exact") == [
        f"final_int8_zlib_roundtrip_exact val_loss:{result['val_loss']:.8f} val_bpb:{result['val_bpb']:.8f}"]
    # The challenge's own log file: a dump of the script, then the same lines.
    log_file = (tiny_run.run_dir / "logs" / "tiny.txt").read_text(encoding="utf-8")
    assert log_file.startswith(SCRIPT.read_text(encoding="utf-8"))
    assert log_file.rstrip().endswith(tiny_run.stdout.rstrip().splitlines()[-1])


def test_pgolf_logs_parse_and_measure_agree_with_the_result_file(tiny_run):
    result, run_dir = tiny_run.result, tiny_run.run_dir
    parsed = runner.invoke(app, ["logs", "parse", "--json", str(run_dir / "train.log")])
    assert parsed.exit_code == 0, parsed.output
    (log,) = json.loads(parsed.output)
    assert log["complete"] and log["label"] == "final_int8_zlib_roundtrip_exact"
    assert log["val_bpb"] == pytest.approx(result["val_bpb"], abs=5e-9)
    assert log["val_loss"] == pytest.approx(result["val_loss"], abs=5e-9)
    assert (log["artifact_bytes"], log["model_bytes"], log["code_bytes"]) == (
        result["artifact_bytes"], result["model_bytes"], result["code_bytes"])
    assert (log["steps"], log["world_size"], log["seed"]) == (result["steps"], 1, 1337)
    assert log["curve"] == [{"step": p["step"], "val_bpb": round(p["val_bpb"], 4)} for p in result["curve"]]
    assert read_run_result(run_dir).source == "result.json"

    measured = runner.invoke(app, ["measure", "--json", "--script", str(run_dir / "train_gpt.py"),
                                   "--model", str(run_dir / "final_model.int8.ptz")])
    assert measured.exit_code == 0, measured.output
    size = json.loads(measured.output)
    assert (size["total_bytes"], size["model_bytes"], size["code_bytes"]) == (
        result["artifact_bytes"], result["model_bytes"], result["code_bytes"])


def test_torchrun_two_processes_on_cpu_match_the_single_process_run(tiny_run, demo_dataset, tmp_path):
    # The export options ride along: they act after training, so the comparison is unaffected. So does
    # skipping the compile warmup, which must leave no trace (weights, optimizer state, data order reset).
    ddp_env = {**TINY, "QUANT_BITS": "6", "COMPRESSOR": "lzma", "WARMUP_STEPS": "0"}
    run = run_script(tmp_path / "ddp", demo_dataset, ddp_env, nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    result, single = run.result, tiny_run.result
    assert result["status"] == "ok" and result["world_size"] == 2
    assert run.lines("world_size:") == ["world_size:2 grad_accum_steps:4"]
    # The same global batch, split across ranks: same tokens per step, and (up to float summation order)
    # the same training, so the same score.
    assert result["tokens_per_step"] == single["tokens_per_step"] == 4096
    assert result["steps"] == single["steps"]
    assert result["pre_quant_val_bpb"] == pytest.approx(single["pre_quant_val_bpb"], rel=1e-4)
    # int6 + lzma: its own labels and file name, and a round trip that still scores close to the original.
    assert len(run.lines("final_int6_lzma_roundtrip_exact")) == 1  # only rank 0 logs
    assert run.lines("Total submission size int6+lzma:") == [
        f"Total submission size int6+lzma: {result['artifact_bytes']} bytes"]
    assert (run.run_dir / "final_model.int6.ptz").stat().st_size == result["model_bytes"]
    assert abs(result["val_bpb"] - result["pre_quant_val_bpb"]) < 0.05 * result["pre_quant_val_bpb"]


def test_default_hyperparameters_build_the_baseline_model(demo_dataset, tmp_path):
    run = run_script(tmp_path, demo_dataset, {"ITERATIONS": "0", "WARMUP_STEPS": "0", "VAL_TOKENS_LIMIT": "1024"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.lines("model_params:") == ["model_params:17059912"]
    assert run.lines("attention_mode:") == ["attention_mode:gqa num_heads:8 num_kv_heads:4"]
    assert run.lines("train_batch_tokens:") == [
        "train_batch_tokens:524288 train_seq_len:1024 iterations:0 warmup_steps:0 max_wallclock_seconds:600.000"]
    assert run.result["params"] == 17059912


def test_early_abort_stops_with_exit_code_3(demo_dataset, tmp_path):
    run = run_script(tmp_path, demo_dataset, {**MICRO, "EARLY_ABORT_STEP": "2", "EARLY_ABORT_BPB": "1.5"})
    assert run.returncode == 3, run.stderr[-3000:]
    (line,) = run.lines("early_abort:")
    assert re.match(r"^early_abort: step:2 val_bpb:\d+\.\d{4} threshold:1\.5000$", line)
    result = run.result
    assert result["status"] == "aborted" and "step 2" in result["reason"]
    assert result["steps"] == 2 and result["pre_quant_val_bpb"] > 1.5 and result["val_bpb"] is None
    assert [p["step"] for p in result["curve"]] == [0, 2]
    assert not (tmp_path / "final_model.int8.ptz").exists()


def test_divergence_stops_the_run_as_crashed_with_exit_code_2(demo_dataset, tmp_path):
    run = run_script(tmp_path, demo_dataset, {**MICRO, "SCALAR_LR": "1e30"})
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.lines("training_diverged:")
    result = run.result
    assert result["status"] == "crashed" and "non-finite train loss" in result["reason"]
    assert result["val_bpb"] is None and result["params"] > 0
    assert not (tmp_path / "final_model.int8.ptz").exists()


def test_bad_input_is_one_line_and_exit_code_1(demo_dataset, tmp_path):
    run = run_script(tmp_path, demo_dataset, {**MICRO, "DATA_PATH": str(tmp_path / "nowhere")})
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"StopRun: no train shards match {tmp_path / 'nowhere' / 'fineweb_train_*.bin'} (set DATA_PATH)"]
    assert run.result["status"] == "crashed" and "no train shards" in run.result["reason"]


def test_malformed_hyperparameters_are_one_line_naming_each_variable(demo_dataset, tmp_path):
    # The block converts at import, before main runs: these must still end as bad input, with a result.
    run = run_script(tmp_path, demo_dataset, {**MICRO, "SEED": "abc", "NUM_LAYERS": "two"})
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    reason = ("SEED: invalid literal for int() with base 10: 'abc'; "
              "NUM_LAYERS: invalid literal for int() with base 10: 'two'")
    assert run.stderr.strip().splitlines() == [f"StopRun: {reason}"]
    result = run.result
    assert result["status"] == "crashed" and result["reason"] == reason
    assert result["seed"] is None and result["steps"] is None


def test_missing_tokenizer_is_one_line_and_a_crashed_result(demo_dataset, tmp_path):
    missing = tmp_path / "absent.model"
    run = run_script(tmp_path, demo_dataset, {**MICRO, "TOKENIZER_PATH": str(missing)})
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"StopRun: TOKENIZER_PATH={missing}: no SentencePiece .model file there"]
    assert run.result["status"] == "crashed" and "TOKENIZER_PATH" in run.result["reason"]


def test_byte_tables_equal_pgolfs_canonical_tables(shared_data, demo_dataset):
    import sentencepiece as spm

    script = load_script_module()
    models = [*sorted((shared_data / "tokenizers").glob("*.model")), demo_dataset.tokenizer_path]
    assert len(models) >= 3
    for model in models:
        sp = spm.SentencePieceProcessor(model_file=str(model))
        for table_size in (sp.vocab_size(), sp.vocab_size() + 64):  # a padded vocab too
            ours = script.build_byte_luts(sp, table_size)
            canonical = build_luts(sp, table_size)
            np.testing.assert_array_equal(ours[0], canonical.base_bytes)
            np.testing.assert_array_equal(ours[1], canonical.has_leading_space)
            np.testing.assert_array_equal(ours[2], canonical.is_boundary)


@pytest.mark.parametrize("bits", [8, 6])
def test_quantization_round_trip_error_is_bounded_by_half_a_step(bits):
    script = load_script_module()
    torch.manual_seed(0)
    state = {
        "blocks.0.mlp.fc.weight": torch.randn(600, 128) * 2.0,  # large: quantized per row
        "blocks.0.attn_scale": torch.rand(128),  # control: kept in fp32
        "tok_emb.weight": torch.randn(64, 32),  # small: kept in fp16
        "counter": torch.tensor([3, 4]),  # not float: kept as is
    }
    obj, payload = script.quantize_state_dict(state, bits)
    restored = script.dequantize_state_dict(obj)
    assert set(restored) == set(state) and all(restored[k].dtype == state[k].dtype for k in state)
    assert torch.equal(restored["blocks.0.attn_scale"], state["blocks.0.attn_scale"])
    assert torch.equal(restored["counter"], state["counter"])
    assert torch.allclose(restored["tok_emb.weight"], state["tok_emb.weight"], atol=2e-3)
    weight, q = state["blocks.0.mlp.fc.weight"], obj["quantized"]["blocks.0.mlp.fc.weight"]
    qmax = 2 ** (bits - 1) - 1
    assert q.dtype == torch.int8 and int(q.abs().max()) <= qmax
    step = obj["scales"]["blocks.0.mlp.fc.weight"].float()[:, None]
    clip = torch.quantile(weight.abs(), script.CLIP_QUANTILE, dim=1)[:, None]
    inside = weight.abs() <= clip  # beyond the clip the error is the clipped excess, by design
    error = (restored["blocks.0.mlp.fc.weight"] - weight).abs()
    # Half a step of rounding, plus the fp16 rounding of the stored scale (relative 2^-11) times |q|.
    bound = (step / 2 + qmax * step * 2.0**-11).expand_as(weight)
    assert bool((error[inside] <= bound[inside]).all())
    assert float(error[inside].max()) > 0.4 * float(step.min())  # the bound is not vacuous
    assert payload == 600 * 128 + 600 * 2 + 128 * 4 + 64 * 32 * 2 + 2 * 8


@pytest.mark.parametrize("name", ["zlib", "lzma", "zstd", "brotli"])
def test_every_compressor_round_trips(name):
    script = load_script_module()
    try:
        script.check_compressor(name)
    except script.StopRun as err:
        pytest.skip(str(err))
    data = bytes(range(256)) * 200
    packed = script.compress(data, name)
    assert len(packed) < len(data) and script.decompress(packed, name) == data


def test_unknown_compressor_is_refused_before_training():
    script = load_script_module()
    with pytest.raises(script.StopRun, match="COMPRESSOR='gzip'"):
        script.check_compressor("gzip")


def test_hyperparameter_block_is_one_literal_env_line_per_setting():
    """pgolf's search rewrites these defaults with a regex: every line must keep the one-line form."""
    source = SCRIPT.read_text(encoding="utf-8")
    block = source.split("class Hyperparameters:\n", 1)[1].split("\n\n\n", 1)[0]
    form = re.compile(r'^    (\w+) = (?:(int|float)\()?os\.environ\.get\("([A-Z0-9_]+)", ([^()]+)\)\)?$')
    names = {}
    for line in block.splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = form.match(line)
        assert match, f"not in the one-line form: {line!r}"
        literal = match[4]
        if match[2]:
            assert re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", literal), line
        else:
            assert re.fullmatch(r'"[^"]*"', literal), line
        names[match[3]] = match[1]
    challenge_names = {
        "DATA_PATH", "TOKENIZER_PATH", "RUN_ID", "SEED", "VAL_BATCH_SIZE", "VAL_LOSS_EVERY", "TRAIN_LOG_EVERY",
        "ITERATIONS", "WARMDOWN_ITERS", "WARMUP_STEPS", "TRAIN_BATCH_TOKENS", "TRAIN_SEQ_LEN",
        "MAX_WALLCLOCK_SECONDS", "QK_GAIN_INIT", "VOCAB_SIZE", "NUM_LAYERS", "NUM_KV_HEADS", "MODEL_DIM",
        "NUM_HEADS", "MLP_MULT", "TIE_EMBEDDINGS", "ROPE_BASE", "LOGIT_SOFTCAP", "EMBED_LR", "HEAD_LR",
        "TIED_EMBED_LR", "TIED_EMBED_INIT_STD", "MATRIX_LR", "SCALAR_LR", "MUON_MOMENTUM", "MUON_BACKEND_STEPS",
        "MUON_MOMENTUM_WARMUP_START", "MUON_MOMENTUM_WARMUP_STEPS", "BETA1", "BETA2", "ADAM_EPS", "GRAD_CLIP_NORM",
        "VAL_TOKENS_LIMIT", "QUANT_BITS", "COMPRESSOR", "EARLY_ABORT_STEP", "EARLY_ABORT_BPB", "DEVICE", "COMPILE",
    }
    assert set(names) == challenge_names
    script = load_script_module()
    assert set(script.hyperparameter_values()) == set(names.values())


def test_learning_rate_schedule_warms_down_linearly():
    script = load_script_module()

    class Args:
        iterations, warmdown_iters = 100, 20

    assert script.lr_scale(Args, 50, 0.0, None) == 1.0
    assert script.lr_scale(Args, 90, 0.0, None) == pytest.approx(0.5)
    assert script.lr_scale(Args, 100, 0.0, None) == 0.0
    # Under a cap, the warmdown is the last WARMDOWN_ITERS steps' worth of time at the current pace:
    # 10 ms per step, 20 steps = 200 ms, and 100 ms remain.
    assert script.lr_scale(Args, 90, 900.0, 1000.0) == pytest.approx(0.5)
    assert script.lr_scale(Args, 10, 100.0, 1000.0) == 1.0
    assert math.isclose(script.lr_scale(Args, 100, 1000.0, 1000.0), 0.0)
