"""`pgolf show`, `pgolf ledger` and `pgolf status` on real run folders made by real loops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loop_fixtures import make_workspace
from pgolf import git
from pgolf.loop.explain import explain
from pgolf.loop.supervisor import run_loop
from pgolf.workspace import Workspace


def _pgolf(ws: Workspace | Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    root = ws.root if isinstance(ws, Workspace) else ws
    env = {**os.environ, "COLUMNS": str(columns), "PGOLF_WORKSPACE": str(root)}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace after a noise floor and four search experiments of the fake script."""
    ws = make_workspace(tmp_path_factory.mktemp("explain") / "ws")
    run_loop(ws, experiments=4)
    return ws


def test_show_prints_the_decision_with_its_numbers_and_the_run(searched: Workspace):
    row = next(r for r in searched.ledger().rows() if r.status == "discard")
    proc = _pgolf(searched, "show", row.run_id, "--lines", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    decision = json.loads((searched.run_dir(row.run_id) / "decision.json").read_text())
    assert out.startswith(f"{row.run_id} · {row.status} · local · commit {row.commit[:8]}")
    assert f"gain {decision['gain']:+.4f} · bar {decision['verdict']['bar']:.4f} · n 1 · σ " in out
    assert f"p {decision['verdict']['p_value']:.3g}" in out
    assert "gate artifact_bytes ok" in out and "Preflight ok: 4 of 4 checks passed" in out
    assert "Command   cd " in out and "train_gpt.py" in out
    assert "Steps     20 of 20: all planned steps" in out
    assert "+++ b/train_gpt.py" in out and "MATRIX_LR" in out
    assert "Log (last 2 lines of" in out and "final_int8_zlib_roundtrip_exact" in out
    sheet = out.split("\nDiff (")[0].splitlines()  # all but the verbatim diff and log lines: at 80 columns
    assert sheet and max(len(line) for line in sheet) <= 80
    data = json.loads(_pgolf(searched, "show", row.run_id, "--json").stdout)
    assert data["decision"]["gain"] == pytest.approx(decision["gain"]) and data["steps"]["done"] == 20


def test_show_of_a_kept_candidate_names_its_replicates_and_paired_seeds(searched: Workspace):
    rows = searched.ledger().rows()
    kept = next(r for r in rows if r.status == "keep")
    out = _pgolf(searched, "show", kept.run_id).stdout
    made_for_it = [r for r in rows if r.parent_run == kept.run_id and r.status in ("replicate", "baseline")]
    assert made_for_it and {r.status for r in made_for_it} == {"replicate", "baseline"}
    for r in made_for_it:
        assert f"{r.run_id} {r.status} {r.val_bpb:.4f} (seed {r.seed})" in out
    verdict = json.loads((searched.run_dir(kept.run_id) / "decision.json").read_text())["verdict"]
    assert f"n {verdict['n']}" in out and verdict["n"] >= 2


def test_show_of_a_baseline_a_missing_run_and_a_path(searched: Workspace):
    out = _pgolf(searched, "show", "r0001").stdout
    assert "baseline" in out.splitlines()[0] and "Decision  baseline" in out
    missing = _pgolf(searched, "show", "r9999")
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: no run r9999 in this workspace")
    path = _pgolf(searched, "show", "../../etc")
    assert path.returncode == 2 and "is not a run id" in path.stderr and "Traceback" not in path.stderr


def test_show_says_when_the_wallclock_cap_cut_the_run(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    folder = ws.run_dir("r0001")
    folder.mkdir(parents=True)
    (folder / "train.log").write_text("train_batch_tokens:524288 train_seq_len:1024 iterations:20000 warmup_steps:20 "
                                      "max_wallclock_seconds:600.000\nstep:1/20000 train_loss:6.9 train_time:12000ms "
                                      "step_avg:12000.00ms\nstep:48/20000 val_loss:6.1 val_bpb:3.6 train_time:"
                                      "601000ms step_avg:12520.83ms\nstopping_early: wallclock_cap train_time:601000ms "
                                      "step:48/20000\n")
    (folder / "decision.json").write_text('{"status": "keep", "gain": ')  # a writer killed mid-file
    out = _pgolf(ws, "show", "r0001").stdout
    assert "Steps     48 of 20,000: cut by the wallclock cap" in out
    assert "not in the ledger" in out.splitlines()[0]
    assert "Decision  none recorded (unreadable (JSONDecodeError))" in out


def test_ledger_reads_at_80_columns_and_wraps_only_the_description(searched: Workspace):
    proc = _pgolf(searched, "ledger")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["run", "status", "val_bpb", "gain", "description", "/", "reason"]
    rows = searched.ledger().rows()
    starts = [line for line in lines if line.startswith("r0")]
    assert [line.split()[0] for line in starts] == [r.run_id for r in rows]
    for line, row in zip(starts, rows, strict=True):
        assert line.split()[1] == row.status  # every status whole, on its row's first line
    wide = _pgolf(searched, "ledger", columns=160).stdout.splitlines()
    assert wide[0].split()[:3] == ["run", "commit", "tier"] and wide[0].split()[-1] == "reason"


def test_ledger_json_carries_gain_and_reason_and_a_bogus_tier_is_refused(searched: Workspace):
    data = json.loads(_pgolf(searched, "ledger", "--json").stdout)
    judged = [d for d in data if d["status"] in ("keep", "discard")]
    assert judged and all(isinstance(d["gain"], float) and d["reason"] for d in judged)
    assert all(isinstance(d["n"], int) and isinstance(d["bar"], float) for d in judged)
    assert all(d["gain"] is None for d in data if d["status"] == "baseline")
    bogus = _pgolf(searched, "ledger", "--tier", "bogus")
    assert bogus.returncode == 2 and "unknown tier 'bogus'; choose one of local, ssh, runpod" in bogus.stderr
    empty = _pgolf(searched, "ledger", "--tier", "ssh")
    assert empty.returncode == 0 and empty.stdout.strip() == "no runs of tier ssh yet"


def test_a_positive_gain_is_never_a_discard_without_its_bar():
    old = explain({"status": "discard", "reason": "gain +0.0010 does not beat the noise floor 0.0020",
                   "gain": 0.001, "threshold": 0.002})
    assert old.short_reason() == "gain +0.0010 <= bar 0.0020"
    verdict = {"action": "discard", "reason": "not significant", "gain": 0.003, "bar": 0.002, "n": 3,
               "sigma": {"value": 0.0011, "dof": 4, "groups": 2}, "p_value": 0.12, "alpha": 0.05,
               "test": "paired-t"}
    judged = explain({"status": "discard", "reason": "not significant", "verdict": verdict})
    assert judged.short_reason() == "gain +0.0030 > bar 0.0020 but not significant (n 3, p 0.12 > alpha 0.05)"
    assert judged.numbers() == "gain +0.0030 · bar 0.0020 · n 3 · σ 0.0011 · p 0.12 · alpha 0.05 · test paired-t"
    screened = explain({**verdict, "status": "discard", "gain": 0.0015, "n": 1})
    assert screened.short_reason() == "gain +0.0015 <= bar 0.0020 (n 1)"
    bare = explain({"status": "discard", "reason": "?", "gain": 0.003})
    assert bare.short_reason() == "gain +0.0030, bar not recorded"
    lost = explain({"status": "discard", "reason": "gain -0.0100 is below the bar", "gain": -0.01, "bar": 0.002})
    assert lost.short_reason() == "gain -0.0100 is below the bar"


HOLD_AFTER_STEPS = '''import os, time
class Hyperparameters:
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    num_layers = int(os.environ.get("NUM_LAYERS", 4))
for step in range(1, 6):
    print(f"step:{step}/100 train_loss:4.0 train_time:{step * 2000}ms step_avg:2000.00ms", flush=True)
while os.path.exists(os.environ["HOLD"]):
    time.sleep(0.05)
'''


def test_status_sees_a_running_loop_then_its_orphan_after_kill_9(tmp_path: Path):
    hold = tmp_path / "hold"
    hold.touch()
    ws = make_workspace(tmp_path / "ws", script=HOLD_AFTER_STEPS, local_env=f'HOLD = "{hold}"', wallclock=600)
    loop = subprocess.Popen([sys.executable, "-m", "pgolf", "run", "-n", "1"], cwd=ws.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    child = 0
    try:
        deadline = time.monotonic() + 60
        status: dict = {}
        while time.monotonic() < deadline:
            status = json.loads(_pgolf(ws, "status", "--json").stdout)
            flight = status["loop"]["inflight"]
            if flight and flight[0]["step"] == 5:
                break
            time.sleep(0.3)
        assert status["loop"]["running"] and status["loop"]["pid"] == loop.pid
        run = status["loop"]["inflight"][0]
        assert (run["run_id"], run["kind"], run["step"], run["total_steps"]) == ("r0001", "baseline", 5, 100)
        assert run["eta_seconds"] == pytest.approx(190.0)
        text = _pgolf(ws, "status").stdout
        assert f"Loop      running (pid {loop.pid})" in text, text
        assert "r0001 baseline (running, slot 1): step 5/100" in text, text
        child = json.loads((ws.running_dir / "r0001.json").read_text())["child_pid"]
        os.kill(loop.pid, signal.SIGKILL)
        loop.wait(timeout=10)
        after = json.loads(_pgolf(ws, "status", "--json").stdout)
        assert not after["loop"]["running"] and after["loop"]["inflight"] == []
        assert after["loop"]["orphaned"][0]["run_id"] == "r0001"
        text = _pgolf(ws, "status").stdout
        assert "warning: r0001 is orphaned: in flight, but no `pgolf run` holds the workspace" in text, text
        assert "the next `pgolf run` records it as crash" in text
    finally:
        hold.unlink(missing_ok=True)  # lets the held training finish by itself
        if loop.poll() is None:
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()
        if child:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
                time.sleep(0.1)


def test_status_counts_by_status_and_states_the_noise_floor(searched: Workspace):
    data = json.loads(_pgolf(searched, "status", "--json").stdout)
    rows = searched.ledger().rows()
    assert sum(data["by_status"].values()) == len(rows)
    assert data["by_status"]["baseline"] == sum(r.status == "baseline" for r in rows)
    floor = data["noise_floor"]
    assert floor["groups"] >= 1 and floor["runs"] >= 2 and floor["bar"] >= 0.002
    # Measured at pgolf/best (a kept candidate with its replicates), not at the last baseline row's commit.
    best = git.git(searched.root, "rev-parse", "pgolf/best")
    scores = [r.val_bpb for r in rows if r.commit == best and r.status in ("keep", "replicate", "baseline")]
    assert floor["commit"] == best and floor["runs"] == len(scores)
    assert floor["mean"] == pytest.approx(sum(scores) / len(scores))
    assert data["loop"] == {"running": False, "pid": None, "inflight": [], "orphaned": [], "damaged": []}
    text = _pgolf(searched, "status").stdout
    assert "Loop      not running" in text
    assert f"pooled over {floor['groups']} group" in text and f"over {floor['runs']} runs" in text
    assert f"Runs      {len(rows)}: " in text


def test_init_profile_cpu_writes_a_small_local_env_and_says_so(tmp_path: Path):
    proc = _pgolf(tmp_path, "init", str(tmp_path / "cpu"), "--profile", "cpu", columns=200)
    assert proc.returncode == 0, proc.stderr
    assert "Profile cpu (as asked; `--profile gpu` for the other): [tiers.local] env trains a 2-layer" in proc.stdout
    from pgolf.workspace import Workspace as W

    config = W(tmp_path / "cpu").config()
    assert config.tiers.local.env["MODEL_DIM"] == "128" and config.tiers.local.env["ITERATIONS"] == "100"
    assert config.proposer.search_space["WARMDOWN_ITERS"].high == 100
    assert "WARMDOWN_ITERS" not in config.tiers.local.env  # never an env entry for a searched value
    hidden = subprocess.run([sys.executable, "-m", "pgolf", "init", str(tmp_path / "auto")], capture_output=True,
                            text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "COLUMNS": "200"})
    assert "Profile cpu (this machine shows no CUDA GPU" in hidden.stdout
    gpu = _pgolf(tmp_path, "init", str(tmp_path / "gpu"), "--profile", "gpu", columns=200)
    assert "Profile gpu (as asked" in gpu.stdout and W(tmp_path / "gpu").config().tiers.local.env == {}
    bad = _pgolf(tmp_path, "init", str(tmp_path / "bad"), "--profile", "tpu")
    assert bad.returncode == 2 and not (tmp_path / "bad").exists()


def test_status_reports_a_damaged_inflight_record_and_leaves_it_for_recovery(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    ws.running_dir.mkdir(parents=True)
    damaged = ws.running_dir / "r0009.json"
    damaged.write_text('{"run_id": "r0009", "kind": ')  # a writer killed mid-file
    data = json.loads(_pgolf(ws, "status", "--json").stdout)
    assert data["loop"]["running"] is False and data["loop"]["orphaned"] == []
    assert data["loop"]["damaged"][0].startswith("ignored a damaged r0009.json (")
    text = _pgolf(ws, "status", columns=200).stdout
    assert "warning: .pgolf/running/: ignored a damaged r0009.json (" in text
    assert "the next `pgolf run` removes it" in text
    assert damaged.exists()  # status only looks; the next `pgolf run` repairs
