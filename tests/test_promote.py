"""Promotion execution: the plan and its gates, budget refusals, concurrent promotions, early abort."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgolf import git
from pgolf.compute.early_abort import choose_point
from pgolf.compute.ssh import PID_FILE
from pgolf.config import EarlyAbortConfig
from pgolf.ledger import LedgerRow
from pgolf.loop.promote import (
    InFlight,
    PromotionResult,
    plan_promotion,
    promote_run,
    run_promotion_queue,
    sweep_at_start,
)
from pgolf.workspace import Workspace, init_workspace
from sshd_server import LocalSshd, running_sshd
from tiny_train import TINY_ENV, TORCHRUN

QUICK_SCRIPT = """\
import json, os, time
release = os.environ.get("RELEASE_FILE")
while release and not os.path.exists(release):  # held until the test lets it finish
    time.sleep(0.05)
result = {"status": "ok", "val_bpb": 1.2, "artifact_bytes": 5000, "steps": 3, "seed": 1,
          "curve": [{"step": 3, "val_bpb": 1.2}]}
with open(os.environ["PGOLF_RESULT_JSON"], "w") as fh:
    json.dump(result, fh)
print("step:3/3 val_loss:2.0 val_bpb:1.2", flush=True)
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | bool) else str(value)


def make_workspace(tmp_path: Path, *, budget: dict, ssh: dict, script: str | None = QUICK_SCRIPT,
                   parents: tuple[str, ...] = ("L1",)) -> Workspace:
    """A workspace with an [tiers.ssh] section, [budget] settings and pending local rows."""
    source = None
    if script is not None:
        source = tmp_path / "script.py"
        source.write_text(script)
    ws = init_workspace(tmp_path / "ws", train_script=source)
    text = ws.config_path.read_text()
    head, _, tail = text.partition("[budget]")
    tail = tail.split("\n[", 1)[1]
    lines = ["[budget]", *(f"{k} = {_toml(v)}" for k, v in budget.items()), "", "[tiers.ssh]"]
    lines += [f"{k} = {_toml(v)}" if k != "env" else
              "env = { " + ", ".join(f'{ek} = "{ev}"' for ek, ev in v.items()) + " }" for k, v in ssh.items()]
    ws.config_path.write_text(head + "\n".join(lines) + "\n\n[" + tail)
    for run_id in parents:
        ws.ledger().append(LedgerRow(commit=git.head_commit(ws.root), tier="local", val_bpb=1.3,
                                     artifact_bytes=200_000, memory_gb=None, status="keep",
                                     promoted="pending", run_id=run_id, description=f"idea {run_id}"))
    return ws


def ssh_settings(sshd: LocalSshd, tmp_path: Path, **extra: object) -> dict:
    return {"host": sshd.host, "user": sshd.user, "port": sshd.port, "identity_file": str(sshd.client_key),
            "remote_dir": str(tmp_path / "remote"), "command": f"{sys.executable} train_gpt.py",
            "timeout_seconds": 60, **extra}


UNREACHABLE = {"host": "127.0.0.1", "port": 1, "gpus": 8, "price_per_gpu_hour": 2.5}


def _promoted(ws: Workspace, run_id: str) -> str:
    return next(r.promoted for r in ws.ledger().rows() if r.run_id == run_id)


def _pgolf(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pgolf", "--workspace", str(ws.root), *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_dry_run_prints_the_plan_and_every_gate_and_spends_nothing(tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 100.0},
                        ssh={**UNREACHABLE, "env": {"NUM_LAYERS": "12", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}})
    proc = _pgolf(ws, "promote", "L1", "--dry-run")

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "promote L1" in out and "8 × H100 SXM" in out
    for gate in ("remote_tier", "parent", "artifact_bytes", "reserve", "rate_limit", "confirmation"):
        assert gate in out
    assert "8 GPUs need --yes" in out and "FAIL" in out
    assert "changes the GPU/process count" in out and "tier env" in out
    assert "nothing was reserved or spent" in out
    assert ws.budget().history() == []
    assert not ws.runs_dir.exists() or list(ws.runs_dir.iterdir()) == []
    assert _promoted(ws, "L1") == "pending"

    data = json.loads(_pgolf(ws, "promote", "L1", "--dry-run", "--yes", "--json").stdout)
    assert data["ok"] is True and data["dry_run"] is True and data["gpus"] == 8
    # The worst case: the timeout, copying (300 s) and stopping the remote process (70 s).
    assert data["worst_seconds"] == 1800 + 300 + 70
    assert data["reserved_usd"] == pytest.approx(20.0 * (1800 + 300 + 70) / 3600)
    assert data["env"]["NUM_LAYERS"] == "12" and data["overrides"] == {"NUM_LAYERS": "12",
                                                                        "CUDA_VISIBLE_DEVICES": "0,1,2,3"}


def test_a_promotion_that_would_break_the_reserve_is_refused_with_the_reason(tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 15.0, "reserve_usd": 5.0}, ssh=UNREACHABLE)
    result = promote_run(ws, ws.config(), "L1", yes=True)

    assert result.status == "refused"
    assert result.reason.startswith("reserve:") and "reserve floor $5.00" in result.reason
    assert _promoted(ws, "L1") == "refused"
    assert ws.budget().history() == []
    assert not ws.run_dir(result.plan.remote_run_id).exists()
    proc = _pgolf(ws, "promote", "L1", "--yes")
    assert proc.returncode == 1 and "not promoted: reserve:" in proc.stderr


def test_the_rate_limit_refuses_and_keeps_the_row_pending(tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 100.0, "min_seconds_between_paid_runs": 3600},
                        ssh=UNREACHABLE)
    ws.budget().reserve(1.0, gpus=8, run_id="earlier")  # a paid run started just now

    result = promote_run(ws, ws.config(), "L1", yes=True)

    assert result.status == "pending" and result.reason.startswith("rate_limit:")
    assert "next in" in result.reason
    assert _promoted(ws, "L1") == "pending"
    assert len(ws.budget().history()) == 1


def test_eight_gpus_need_yes_or_auto_confirm(tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 100.0}, ssh=UNREACHABLE)
    result = promote_run(ws, ws.config(), "L1")
    assert (result.status, result.reason) == ("pending", "confirmation: 8 GPUs need --yes (or "
                                                         "budget.auto_confirm = true)")
    auto = ws.config().model_copy(update={"budget": ws.config().budget.model_copy(update={"auto_confirm": True})})
    assert plan_promotion(ws, auto, "L1").refusal is None


def test_a_missing_remote_tier_or_key_leaves_the_row_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ws = init_workspace(tmp_path / "ws")
    ws.ledger().append(LedgerRow(commit=git.head_commit(ws.root), tier="local", val_bpb=1.3,
                                 artifact_bytes=200_000, memory_gb=None, status="keep", promoted="pending",
                                 run_id="L1", description="idea"))
    result = promote_run(ws, ws.config(), "L1", yes=True)
    assert (result.status, result.reason.split(":")[0]) == ("pending", "remote_tier")
    assert _promoted(ws, "L1") == "pending", "fixing pgolf.toml later lets the queue retry it"

    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    ws.config_path.write_text(ws.config_path.read_text() + '\n[tiers.runpod]\ngpu_count = 1\n')
    result = promote_run(ws, ws.config(), "L1", yes=True)
    assert (result.status, result.reason.split(":")[0]) == ("pending", "api_key")
    assert _promoted(ws, "L1") == "pending"
    assert ws.budget().history() == []


def test_cancel_stops_the_run_and_the_queue(sshd: LocalSshd, tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 10.0, "min_seconds_between_paid_runs": 0},
                        ssh=ssh_settings(sshd, tmp_path, gpus=1, price_per_gpu_hour=2.5,
                                         env={"RELEASE_FILE": str(tmp_path / "never")}), parents=("L1", "L2"))
    cancel = threading.Event()
    pid_file = tmp_path / "remote" / "L1-ssh" / PID_FILE

    def cancel_once_running() -> None:
        while not pid_file.exists():
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_once_running, daemon=True).start()
    results = run_promotion_queue(ws, ws.config(), cancel=cancel)

    # The same rule as a local run stopped by the user (pgolf.loop.outcome): aborted, with what it cost.
    assert [(r.plan.run_id, r.status) for r in results] == [("L1", "aborted")], "L2 is never started"
    assert "stopped by the user" in results[0].reason and results[0].cost_usd > 0
    assert _promoted(ws, "L2") == "pending"
    (entry,) = ws.budget().history()
    assert entry.state == "settled" and entry.actual_usd == pytest.approx(results[0].cost_usd)


def test_a_kill_during_a_remote_run_is_recovered_at_the_next_start(sshd: LocalSshd, tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 10.0, "min_seconds_between_paid_runs": 0},
                        ssh=ssh_settings(sshd, tmp_path, gpus=1, price_per_gpu_hour=2.5,
                                         env={"RELEASE_FILE": str(tmp_path / "never")}))
    proc = subprocess.Popen([sys.executable, "-m", "pgolf", "--workspace", str(ws.root), "promote", "L1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = tmp_path / "remote" / "L1-ssh" / PID_FILE
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, "the remote run never started"
        time.sleep(0.05)
    remote_group = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert [e.state for e in ws.budget().history()] == ["reserved"]
    assert len(list(InFlight.folder(ws).glob("*.json"))) == 1

    messages = sweep_at_start(ws, ws.config())

    assert any("recorded as crash" in m for m in messages), messages
    stop = time.monotonic() + 15
    while _group_alive(remote_group) and time.monotonic() < stop:
        time.sleep(0.1)
    assert not _group_alive(remote_group), "the remote process group was killed"
    (entry,) = ws.budget().history()
    assert entry.state == "settled" and entry.actual_usd > 0
    (crash,) = [r for r in ws.ledger().rows() if r.parent_run == "L1"]
    assert crash.status == "crash" and crash.cost_usd == pytest.approx(entry.actual_usd, abs=1e-4)
    assert _promoted(ws, "L1") == "yes"
    assert list(InFlight.folder(ws).glob("*.json")) == []
    assert run_promotion_queue(ws, ws.config()) == [], "never paid for twice"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_concurrent_promotions_cannot_overspend(sshd: LocalSshd, tmp_path: Path):
    # Room for exactly one reservation: 1 GPU × $2.50/h × (60 s timeout + 370 s allowances) = $0.30.
    release = tmp_path / "release"
    ws = make_workspace(tmp_path, budget={"total_usd": 0.4, "min_seconds_between_paid_runs": 0},
                        ssh=ssh_settings(sshd, tmp_path, gpus=1, price_per_gpu_hour=2.5,
                                         env={"RELEASE_FILE": str(release)}),
                        parents=("L1", "L2"))
    barrier = threading.Barrier(2)
    results: dict[str, PromotionResult] = {}
    refused = threading.Event()

    def promote(run_id: str) -> None:
        barrier.wait()
        results[run_id] = promote_run(ws, ws.config(), run_id)
        if results[run_id].status == "refused":
            refused.set()

    threads = [threading.Thread(target=promote, args=(r,)) for r in ("L1", "L2")]
    for t in threads:
        t.start()
    # The winner's run holds its reservation until the loser has been refused.
    assert refused.wait(timeout=60)
    release.touch()
    for t in threads:
        t.join(timeout=120)

    assert sorted(r.status for r in results.values()) == ["keep", "refused"]
    loser = next(r for r in results.values() if r.status == "refused")
    assert loser.reason.startswith("reserve:")
    entries = ws.budget().history()
    assert [e.state for e in entries] == ["settled"]
    st = ws.budget().status()
    assert st.spent_usd <= 0.4 and st.reserved_usd == 0
    kept = next(r for r in results.values() if r.status == "keep")
    assert entries[0].actual_usd == pytest.approx(kept.cost_usd) and kept.cost_usd > 0


def test_the_queue_promotes_pending_rows_in_order(sshd: LocalSshd, tmp_path: Path):
    ws = make_workspace(tmp_path, budget={}, ssh=ssh_settings(sshd, tmp_path, gpus=1), parents=("L1", "L2"))
    results = run_promotion_queue(ws, ws.config())

    assert [(r.plan.run_id, r.status) for r in results] == [("L1", "keep"), ("L2", "keep")]
    rows = ws.ledger().rows()
    remote = [(r.tier, r.parent_run, r.val_bpb, r.cost_usd) for r in rows if r.tier == "ssh"]
    assert remote == [("ssh", "L1", 1.2, 0.0), ("ssh", "L2", 1.2, 0.0)]
    assert [_promoted(ws, p) for p in ("L1", "L2")] == ["yes", "yes"]
    assert ws.budget().history() == [], "a free SSH host is not a paid run"
    assert run_promotion_queue(ws, ws.config()) == []


def test_early_abort_over_ssh_is_recorded_as_aborted_with_the_money_saved(
        sshd: LocalSshd, demo_dataset, tmp_path: Path):
    ws = make_workspace(
        tmp_path, script=None, budget={"total_usd": 10.0, "min_seconds_between_paid_runs": 0},
        ssh=ssh_settings(sshd, tmp_path, gpus=1, price_per_gpu_hour=2.5, sync_data=True, timeout_seconds=240,
                         command=f"{TORCHRUN} --standalone --nproc_per_node={{gpus}} train_gpt.py",
                         env={**TINY_ENV, "ITERATIONS": "6"}))
    text = ws.config_path.read_text()
    text = text.replace('dataset_dir = "data/datasets/fineweb10B_sp1024"',
                        f'dataset_dir = "{demo_dataset.dataset_dir}"')
    ws.config_path.write_text(text.replace('tokenizer_path = "data/tokenizers/fineweb_1024_bpe.model"',
                                           f'tokenizer_path = "{demo_dataset.tokenizer_path}"'))
    # The best remote run so far reached val_bpb 0.30 at step 2: nothing tiny gets near that.
    ws.ledger().append(LedgerRow(commit="0" * 40, tier="ssh", val_bpb=0.25, artifact_bytes=1, memory_gb=None,
                                 status="keep", run_id="S0", parent_run="L0"))
    ws.run_dir("S0").mkdir(parents=True)
    (ws.run_dir("S0") / "result.json").write_text(json.dumps(
        {"status": "ok", "val_bpb": 0.25, "curve": [{"step": 2, "val_bpb": 0.30}, {"step": 6, "val_bpb": 0.25}]}))

    plan = plan_promotion(ws, ws.config(), "L1")
    assert plan.early_abort is not None
    assert (plan.early_abort.step, plan.early_abort.reference_run) == (2, "S0")
    assert plan.env["EARLY_ABORT_BPB"] == "0.320000"
    # Synced data without a data_dir lands in <remote_dir>/data, seen from the run folder as ../data.
    assert plan.env["DATA_PATH"] == f"../data/datasets/{demo_dataset.dataset_dir.name}"
    result = promote_run(ws, ws.config(), "L1")

    assert result.status == "aborted", result.reason
    row = result.row
    assert row is not None and row.val_bpb is None and row.parent_run == "L1" and row.steps == 2
    assert "val_bpb" in row.description and "saved ~$" in row.description
    assert result.saved_usd > 0 and result.cost_usd > 0
    assert result.saved_usd == pytest.approx(result.plan.expected_usd - result.cost_usd)
    (entry,) = ws.budget().history()
    assert entry.state == "settled" and entry.actual_usd == pytest.approx(result.cost_usd)
    assert json.loads((ws.run_dir(row.run_id) / "env.json").read_text())["EARLY_ABORT_STEP"] == "2"
    assert _promoted(ws, "L1") == "yes"
    assert (tmp_path / "remote" / "data" / "tokenizers" / demo_dataset.tokenizer_path.name).is_file()


def test_the_checkpoint_is_the_first_point_past_the_fraction():
    curve = [(0, 4.0), (100, 2.0), (200, 1.5), (300, 1.4)]
    point = choose_point(curve, EarlyAbortConfig(at_fraction=0.3, margin_bpb=0.02), "S0")
    assert point is not None and (point.step, point.reference_bpb) == (100, 2.0)
    assert point.env() == {"EARLY_ABORT_STEP": "100", "EARLY_ABORT_BPB": "2.020000"}
    assert choose_point([(300, 1.4)], EarlyAbortConfig(), "S0") is None, "the last step saves nothing"
    assert choose_point([], EarlyAbortConfig(), "S0") is None


def test_several_ssh_hosts_run_promotions_at_once(sshd: LocalSshd, tmp_path: Path):
    release = tmp_path / "release"
    ws = make_workspace(tmp_path, budget={}, ssh=ssh_settings(sshd, tmp_path, gpus=1,
                                                              env={"RELEASE_FILE": str(release)}),
                        parents=("L1", "L2"))
    # A second host (the same sshd, by another name), one slot each: two workers.
    text = ws.config_path.read_text().replace(
        "[tiers.ssh]\n", f'[tiers.ssh]\nhosts = [{{ host = "localhost", port = {sshd.port}, user = "{sshd.user}" }}]\n')
    ws.config_path.write_text(text)
    results: list[PromotionResult] = []
    queue = threading.Thread(target=lambda: results.extend(run_promotion_queue(ws, ws.config())))
    queue.start()
    deadline = time.monotonic() + 60
    while len(list(ws.promotions_dir.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    flights = [json.loads(p.read_text()) for p in ws.promotions_dir.glob("*.json")]
    release.touch()
    queue.join(timeout=120)
    assert sorted(f["host"] for f in flights) == [f"127.0.0.1:{sshd.port}", f"localhost:{sshd.port}"]
    assert sorted(r.status for r in results) == ["keep", "keep"]
    commands = [ws.run(r.plan.remote_run_id).command.read_text() for r in results]
    assert any("@127.0.0.1 port" in c for c in commands) and any("@localhost port" in c for c in commands)


def test_a_kill_with_promotions_in_flight_on_two_hosts_recovers_both(sshd: LocalSshd, tmp_path: Path):
    ws = make_workspace(tmp_path, budget={"total_usd": 10.0, "min_seconds_between_paid_runs": 0},
                        ssh=ssh_settings(sshd, tmp_path, gpus=1, price_per_gpu_hour=2.5,
                                         env={"RELEASE_FILE": str(tmp_path / "never")}),
                        parents=("L1", "L2"))
    text = ws.config_path.read_text().replace(
        "[tiers.ssh]\n", f'[tiers.ssh]\nhosts = [{{ host = "localhost", port = {sshd.port}, user = "{sshd.user}" }}]\n')
    ws.config_path.write_text(text)
    queue = ("from pathlib import Path; from pgolf.workspace import Workspace; "
             "from pgolf.loop.promote import run_promotion_queue; "
             f"ws = Workspace(Path({str(ws.root)!r})); run_promotion_queue(ws, ws.config())")
    proc = subprocess.Popen([sys.executable, "-c", queue], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_files = [tmp_path / "remote" / f"{run}-ssh" / PID_FILE for run in ("L1", "L2")]
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.read_text().strip() for p in pid_files):
        assert proc.poll() is None and time.monotonic() < deadline, "both remote runs never started"
        time.sleep(0.05)
    groups = [int(p.read_text()) for p in pid_files]
    hosts = sorted(json.loads(p.read_text())["host"] for p in ws.promotions_dir.glob("*.json"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert hosts == [f"127.0.0.1:{sshd.port}", f"localhost:{sshd.port}"], "one run on each host"
    assert [e.state for e in ws.budget().history()] == ["reserved", "reserved"]

    messages = sweep_at_start(ws, ws.config())

    assert sum("recorded as crash" in m for m in messages) == 2, messages
    stop = time.monotonic() + 15
    while any(_group_alive(g) for g in groups) and time.monotonic() < stop:
        time.sleep(0.1)
    assert not [g for g in groups if _group_alive(g)], "every remote process group was killed, on its own host"
    assert [e.state for e in ws.budget().history()] == ["settled", "settled"]
    crashes = sorted((r.parent_run, r.status) for r in ws.ledger().rows() if r.parent_run in ("L1", "L2"))
    assert crashes == [("L1", "crash"), ("L2", "crash")]
    assert _promoted(ws, "L1") == _promoted(ws, "L2") == "yes"
    assert list(ws.promotions_dir.glob("*.json")) == []
    assert run_promotion_queue(ws, ws.config()) == [], "never paid for twice"
