"""Safe start: real `pgolf run` processes refused before any run, and the first-steps watch on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import pytest

from loop_fixtures import FAKE_TRAIN, make_workspace
from pgolf.errors import PgolfError
from pgolf.loop.setup_check import FirstStepsWatch, check_setup, cuda_available, script_needs_cuda
from pgolf.loop.supervisor import run_loop
from pgolf.workspace import Workspace

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# The challenge's own script starts like this: it refuses to run without CUDA.
CUDA_ONLY = '''import os, torch
class Hyperparameters:
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    num_layers = int(os.environ.get("NUM_LAYERS", 4))
def main():
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA is required")
    device = torch.device("cuda", 0)
    state = torch.load("x.pt", map_location="cpu")
'''


def _pgolf(ws: Workspace, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", "PGOLF_WORKSPACE": str(ws.root), **env}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def _refused(proc: subprocess.CompletedProcess[str], ws: Workspace) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert ws.ledger().rows() == [] and not any(ws.runs_dir.iterdir())  # nothing ran, nothing recorded
    return lines[0]


def test_cuda_only_script_on_a_machine_without_cuda_is_refused_before_any_run(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws", script=CUDA_ONLY)
    started = time.monotonic()
    line = _refused(_pgolf(ws, "run", "-n", "1", CUDA_VISIBLE_DEVICES=""), ws)
    assert "train_gpt.py needs CUDA (line 6 raises when torch.cuda.is_available() is false)" in line
    assert "this machine has no CUDA GPU" in line
    assert time.monotonic() - started < 60  # a refusal, not a training run


def test_a_data_path_that_does_not_exist_is_refused_with_where_it_is_set(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws", script=FAKE_TRAIN + 'open(os.environ["DATA_PATH"] + "/x")\n')
    line = _refused(_pgolf(ws, "run", "-n", "1"), ws)
    assert f"data: {ws.root}/data/datasets/fineweb10B_sp1024 does not exist ([data] dataset_dir in pgolf.toml)" in line
    assert "pgolf data fineweb" in line


def test_tokenizer_whose_vocab_differs_from_the_config(tmp_path: Path):
    tokenizer = SHARED / "tokenizers" / "fineweb_8192_bpe.model"
    report = check_setup(source="os.environ['TOKENIZER_PATH']", env={}, dataset_dir=tmp_path,
                         tokenizer_path=tokenizer, vocab_size=1024, has_cuda=False)
    assert report.problems == ["tokenizer: fineweb_8192_bpe.model has 8192 pieces but [data] vocab_size = 1024; "
                               "set vocab_size to match the tokenizer the shards were made with"]
    good = check_setup(source="os.environ['TOKENIZER_PATH']", env={}, dataset_dir=tmp_path,
                       tokenizer_path=SHARED / "tokenizers" / "fineweb_1024_bpe.model", vocab_size=1024,
                       has_cuda=False)
    assert good.problems == []
    folder = tmp_path / "fineweb10B_sp8192"
    folder.mkdir()
    (folder / "fineweb_val_000000.bin").write_bytes(b"\0" * 10)
    (folder / "fineweb_train_000000.bin").write_bytes(b"\0" * 10)
    shards = check_setup(source="DATA_PATH", env={}, dataset_dir=folder, tokenizer_path=tokenizer,
                         vocab_size=1024, has_cuda=False)
    assert "shorter than its" in shards.problems[0]
    assert "tokenized for vocab size 8192 but [data] vocab_size = 1024" in shards.problems[1]


def test_what_counts_as_needing_cuda():
    template = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    assert script_needs_cuda(template) == ""  # pgolf's baseline runs on CUDA, MPS and CPU
    assert script_needs_cuda(CUDA_ONLY).startswith("line 6 raises")
    nccl = "import torch.distributed as dist\ndist.init_process_group(backend='nccl')\nx = torch.load('m', map_location='cpu')\n"
    assert script_needs_cuda(nccl) == "line 2 sets up CUDA and the script names no other device"
    assert script_needs_cuda(nccl + "dev = 'cpu'\n") == ""
    report = check_setup(source="print(1)", env={"DEVICE": "cuda"}, dataset_dir=Path("/nonexistent"),
                         tokenizer_path=Path("/nonexistent"), vocab_size=1024, has_cuda=False)
    assert len(report.problems) == 1 and "DEVICE=cuda in [tiers.local] env" in report.problems[0]


def test_the_full_baseline_on_a_cpu_is_warned_about_before_it_starts():
    template = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    kwargs = {"dataset_dir": Path("/nonexistent"), "tokenizer_path": Path("/nonexistent"), "vocab_size": 1024}
    full = check_setup(source=template.replace("DATA_PATH", "X").replace("TOKENIZER_PATH", "Y"), env={},
                       has_cuda=False, **kwargs)
    assert full.problems == [] and full.warnings == [
        "this machine has no CUDA GPU and each step trains 524,288 tokens: a step may take minutes on a CPU; "
        "`pgolf init DIR --profile cpu` writes a model sized for it"]
    small = check_setup(source=template.replace("DATA_PATH", "X").replace("TOKENIZER_PATH", "Y"),
                        env={"TRAIN_BATCH_TOKENS": "4096"}, has_cuda=False, **kwargs)
    assert small.warnings == []
    on_gpu = check_setup(source="x = 1", env={"TRAIN_BATCH_TOKENS": "524288"}, has_cuda=True, **kwargs)
    assert on_gpu.warnings == [] and on_gpu.problems == []


def test_cuda_probe_honours_hidden_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_available() is False
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert cuda_available() is False


def test_a_baseline_that_crashes_after_its_first_step_is_still_a_crash_row(tmp_path: Path):
    late = FAKE_TRAIN.replace("bpb = 1.5", 'raise RuntimeError("late crash")\nbpb = 1.5')
    ws = make_workspace(tmp_path / "ws", script=late)
    with pytest.raises(PgolfError, match="baseline run r0001 ended as crash"):
        run_loop(ws, experiments=1)
    assert [r.status for r in ws.ledger().rows()] == ["crash"]


class _Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def run_started(self, *args: object) -> None:
        pass

    def run_line(self, run_id: str, text: str) -> None:
        pass

    def run_finished(self, record: object) -> None:
        pass


def test_first_steps_watch_warns_of_a_run_the_wallclock_will_cut(tmp_path: Path):
    slow = FAKE_TRAIN.replace("step_avg:10.00ms", "step_avg:5000.00ms")
    ws = make_workspace(tmp_path / "ws", script=slow, wallclock=30)
    events = _Messages()
    run_loop(ws, experiments=0, events=events)  # the fake only claims 5 s per step: the noise floor is measured
    warned = [m for m in events.lines if "per step" in m]
    assert warned and warned[0] == ("warning: r0001 takes 5.00 s per step: 20 steps would need 100 s, so the "
                                    "wallclock cap of 30 s stops it near step 6 of 20; on a CPU, `pgolf init "
                                    "DIR --profile cpu` writes a model sized for it")
    assert [m.split()[1] for m in warned] == ["r0001", "r0002"]  # once per run


def test_first_steps_watch_sees_memory_and_a_run_that_never_steps(tmp_path: Path):
    folder = tmp_path / "r0001"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "import time; x = b'x' * 60_000_000; time.sleep(30)"],
                             cwd=folder)
    events = _Messages()
    try:
        with FirstStepsWatch(events, lambda run_id: tmp_path / run_id, wallclock_seconds=600,
                             memory_total=70_000_000, no_step_seconds=0.5, poll_seconds=0.1) as watch:
            watch.run_started("r0001", "baseline", "baseline, seed 1337", {})
            done = threading.Event()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not done.is_set():
                if len(events.lines) >= 2:
                    done.set()
                time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    memory = [m for m in events.lines if "of this machine" in m]
    stuck = [m for m in events.lines if "has not finished a training step" in m]
    assert len(memory) == 1 and "of this machine's 0.1 GB memory" in memory[0], events.lines
    assert len(stuck) == 1 and "holding 0.1 GB of memory" in stuck[0], events.lines
