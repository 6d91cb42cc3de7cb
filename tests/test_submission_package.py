"""`pgolf submit package` from three real tiny CPU runs of the baseline script, then `pgolf check` on it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pgolf import git
from pgolf.cli.app import app
from pgolf.ledger import LedgerRow
from pgolf.logs import read_run_result
from pgolf.submission.checks import NA, PASS, CheckOptions
from pgolf.submission.package import PackageRefused, package_runs
from pgolf.workspace import Workspace, init_workspace

TINY = {"ITERATIONS": "2", "NUM_LAYERS": "1", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
        "MLP_MULT": "1", "TRAIN_BATCH_TOKENS": "2048", "TRAIN_SEQ_LEN": "128", "VAL_BATCH_SIZE": "262144",
        "VAL_LOSS_EVERY": "0", "WARMUP_STEPS": "0", "OMP_NUM_THREADS": "1"}
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def demo_runs(demo_dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[str]]:
    """A workspace with three finished CPU runs of its baseline script (one per seed) and their ledger rows."""
    ws = init_workspace(tmp_path_factory.mktemp("ws") / "golf", dataset_dir=str(demo_dataset.dataset_dir),
                        tokenizer_path=str(demo_dataset.tokenizer_path))
    commit = git.head_commit(ws.root)
    procs = {}
    for seed in SEEDS:
        run_id = f"demo-seed{seed}"
        folder = ws.run_dir(run_id)
        folder.mkdir(parents=True)
        (folder / "train_gpt.py").write_bytes(ws.train_script.read_bytes())
        env = {**TINY, "SEED": str(seed), "DATA_PATH": str(demo_dataset.dataset_dir),
               "TOKENIZER_PATH": str(demo_dataset.tokenizer_path), "RUN_ID": run_id,
               "PGOLF_RESULT_JSON": str(folder / "result.json")}
        command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " python train_gpt.py"
        (folder / "command.txt").write_text(command + "\n")
        log = open(folder / "train.log", "wb")  # noqa: SIM115 - closed after the process ends
        procs[run_id] = (subprocess.Popen([sys.executable, "train_gpt.py"], cwd=folder, stdout=log,
                                          stderr=subprocess.STDOUT, env={**os.environ, **env}), log)
    for run_id, (proc, log) in procs.items():
        assert proc.wait(timeout=300) == 0, (ws.run_dir(run_id) / "train.log").read_text()[-2000:]
        log.close()
        result = read_run_result(ws.run_dir(run_id))
        ws.ledger().append(LedgerRow(commit=commit, tier="local", val_bpb=result.val_bpb,
                                     artifact_bytes=result.artifact_bytes, memory_gb=None, status="baseline",
                                     run_id=run_id, seed=result.seed, steps=result.steps,
                                     train_seconds=result.train_seconds))
    return ws, list(procs)


def test_package_then_check_passes_apart_from_cpu_rules(demo_runs, tmp_path: Path) -> None:
    ws, run_ids = demo_runs
    runner = CliRunner()
    result = runner.invoke(app, ["--workspace", str(ws.root), "submit", "package", "--runs", ",".join(run_ids),
                                 "--name", "Demo Baseline", "--author", "Ada", "--github-id", "ada",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    folder = Path(json.loads(result.stdout)["folder"])
    assert folder.parent == tmp_path / "records" / "track_10min_16mb"
    assert folder.name.endswith("_Demo_Baseline")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "submission.json", "train_gpt.py", "train_seed1.log", "train_seed2.log", "train_seed3.log"]
    assert (folder / "train_gpt.py").read_bytes() == ws.train_script.read_bytes()

    meta = json.loads((folder / "submission.json").read_text())
    results = [read_run_result(ws.run_dir(r)) for r in run_ids]
    assert meta["seeds"] == list(SEEDS)
    assert meta["val_bpb"] == pytest.approx(sum(r.val_bpb for r in results) / 3, abs=1e-8)
    assert meta["bytes_total"] == max(r.artifact_bytes for r in results)
    assert meta["bytes_code"] == ws.train_script.stat().st_size
    assert meta["hardware"].startswith("CPU")
    readme = (folder / "README.md").read_text()
    assert "SEED=2" in readme and "| 3 |" in readme

    check = runner.invoke(app, ["--workspace", str(ws.root), "check", str(folder), "--json"])
    assert check.exit_code == 0, check.stdout
    statuses = {c["name"]: c["status"] for c in json.loads(check.stdout)["checks"]}
    assert statuses.pop("time_limits") == statuses.pop("hardware") == NA
    assert set(statuses.values()) == {PASS}, statuses  # val coverage from the demo manifest, LUTs CORRECT, ...


def test_package_refuses_and_leaves_nothing_when_a_check_fails(demo_runs, tmp_path: Path) -> None:
    ws, run_ids = demo_runs
    with pytest.raises(PackageRefused, match="statistics"):
        package_runs(ws, run_ids, name="Claim", track="track_10min_16mb", author="a", github_id="a",
                     day=date(2026, 5, 1), out_dir=tmp_path, options=CheckOptions(against=[1.0]))
    assert not tmp_path.joinpath("track_10min_16mb").exists()  # nor the track folder made for it
    refused = CliRunner().invoke(app, ["--workspace", str(ws.root), "submit", "package", "--runs", ",".join(run_ids),
                                       "--name", "Claim", "--author", "a", "--github-id", "a", "--against", "1.0"])
    assert isinstance(refused.exception, PackageRefused)
    assert not (ws.root / "records").exists()  # a refused package leaves no empty folder behind
    with pytest.raises(PackageRefused, match="no ledger row"):
        package_runs(ws, ["nope"], name="x", track="track_10min_16mb", author="a", github_id="a")
    with pytest.raises(PackageRefused, match="listed twice"):
        package_runs(ws, [run_ids[0], run_ids[0]], name="x", track="track_10min_16mb", author="a",
                     github_id="a")
