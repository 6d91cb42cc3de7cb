"""The RunPod backend against a fake RunPod API on 127.0.0.1 whose pods are the test's sshd.

In every outcome (normal, exception, SIGTERM, SIGKILL then a new start) no pod of the workspace is left
running, and the pod of another workspace on the same account is never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fake_runpod import API_KEY, FakeRunpod, serving
from pgolf import git
from pgolf.compute import pods
from pgolf.compute.base import RunRequest
from pgolf.compute.pods import PodLifecycle, register_cleanup, unregister_cleanup, workspace_id
from pgolf.compute.runpod import RunpodBackend, RunpodClient, RunpodError
from pgolf.compute.ssh import PID_FILE, SshBackend
from pgolf.errors import PgolfError
from pgolf.ledger import LedgerRow
from pgolf.loop.promote import InFlight, plan_promotion, promote_run, run_promotion_queue, sweep_at_start
from pgolf.workspace import Workspace, init_workspace
from sshd_server import LocalSshd, running_sshd

pytestmark = pytest.mark.slow

# Stands in for train_gpt.py on the "pod": quick, or hanging until killed (FAKE_MODE=hang).
FAKE_SCRIPT = """\
import json, os, time
print("step:1/2 train_loss:5.0000", flush=True)
if os.environ.get("FAKE_MODE") == "hang":
    open("started", "w").close()
    time.sleep(300)
result = {"status": "ok", "reason": "", "val_bpb": 1.25, "val_loss": 2.1, "artifact_bytes": 123456,
          "steps": 2, "train_ms": 1000, "seed": int(os.environ.get("SEED", "0")),
          "curve": [{"step": 1, "val_bpb": 1.5}, {"step": 2, "val_bpb": 1.25}], "hyperparameters": {}}
with open(os.environ["PGOLF_RESULT_JSON"], "w") as fh:
    json.dump(result, fh)
print("final_int8_zlib_roundtrip_exact val_loss:2.10000000 val_bpb:1.25000000", flush=True)
"""


@dataclass
class Setup:
    ws: Workspace
    fake: FakeRunpod
    other_pod: str
    remote: Path

    @property
    def ws_id(self) -> str:
        return workspace_id(self.ws)

    def mine(self) -> list[dict]:
        return self.fake.pods_of(self.ws_id)

    def set_mode(self, mode: str) -> None:
        text = self.ws.config_path.read_text()
        self.ws.config_path.write_text(text.replace('FAKE_MODE = "ok"', f'FAKE_MODE = "{mode}"')
                                       .replace('FAKE_MODE = "hang"', f'FAKE_MODE = "{mode}"'))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    # Keys are authorized only through a pod's PUBLIC_KEY, as on RunPod.
    with running_sshd(tmp_path_factory.mktemp("sshd"), authorize_client=False) as server:
        yield server


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _kill_what_ran_on(remote: Path):
    """When the fake deletes a pod, end the processes that ran "on" it, as a real deletion would."""
    def on_delete(_pod: dict) -> None:
        for pid_file in remote.glob(f"*/{PID_FILE}"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    return on_delete


@pytest.fixture
def setup(sshd: LocalSshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_SCRIPT)
    ws = init_workspace(tmp_path / "ws", train_script=script)
    remote = tmp_path / "remote"
    fake = FakeRunpod(sshd.host, sshd.port, sshd.authorized_keys)
    with serving(fake):
        text = ws.config_path.read_text()
        text = text.replace("total_usd = 0.0", "total_usd = 100.0")
        text = text.replace("min_seconds_between_paid_runs = 3600", "min_seconds_between_paid_runs = 0")
        ws.config_path.write_text(text + f"""
[tiers.runpod]
api_url = "{fake.url}"
gpu_count = 8
price_per_gpu_hour = 2.69
ssh_user = "{sshd.user}"
identity_file = "{sshd.client_key}"
remote_dir = "{remote}"
command = "{sys.executable} train_gpt.py"
ready_timeout_seconds = 30
timeout_seconds = 60
env = {{ FAKE_MODE = "ok" }}
""")
        ws.ledger().append(LedgerRow(commit=git.head_commit(ws.root), tier="local", val_bpb=1.30,
                                     artifact_bytes=100_000, memory_gb=None, status="keep",
                                     promoted="pending", run_id="L1", seed=7, description="try x"))
        # Another workspace on the same account, whose owner is dead on this very host: an orphan,
        # but not ours to sweep.
        other = fake.add_pod("pgolf-0therw0rksp-r9", {
            pods.TAG_WORKSPACE: "0therw0rksp", pods.TAG_PID: str(_dead_pid()),
            pods.TAG_HOST: socket.gethostname(), pods.TAG_RUN: "r9"})
        fake.on_delete = _kill_what_ran_on(remote)
        monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
        yield Setup(ws, fake, other, remote)


def _assert_other_untouched(s: Setup) -> None:
    assert s.other_pod in s.fake.pods
    assert s.fake.calls_to(s.other_pod) == []


def _assert_no_reservation_left(s: Setup) -> None:
    states = [e.state for e in s.ws.budget().history()]
    assert states and "reserved" not in states


def _assert_crash_row_holds_the_settled_cost(s: Setup) -> None:
    """One crash row for L1 whose cost is what the budget settled for the pod (> 0); L1 is promoted."""
    rows = s.ws.ledger().rows()
    (crash,) = [r for r in rows if r.parent_run == "L1"]
    (entry,) = s.ws.budget().history()
    assert crash.status == "crash" and entry.state == "settled" and entry.actual_usd > 0
    assert crash.cost_usd == pytest.approx(entry.actual_usd, abs=1e-4)
    assert next(r for r in rows if r.run_id == "L1").promoted == "yes"
    assert list(InFlight.folder(s.ws).glob("*.json")) == []


def test_normal_run_terminates_the_pod_and_settles_price_times_lifetime(setup: Setup):
    s = setup
    result = promote_run(s.ws, s.ws.config(), "L1", yes=True)

    assert result.status == "keep", result.reason
    assert s.mine() == []
    _assert_other_untouched(s)
    row = result.row
    assert row is not None and (row.tier, row.parent_run, row.val_bpb, row.seed) == ("runpod", "L1", 1.25, 7)
    rows = {r.run_id: r for r in s.ws.ledger().rows()}
    assert rows["L1"].promoted == "yes" and row.run_id in rows
    posts = [c for c in s.fake.calls if (c.method, c.path) == ("POST", "/v1/pods")]
    assert len(posts) == 1
    body = posts[0].body
    assert body["gpuCount"] == 8 and body["gpuTypeIds"] == ["NVIDIA H100 80GB HBM3"]
    assert body["name"].startswith(f"pgolf-{s.ws_id}-")
    tags = body["env"]
    assert tags[pods.TAG_WORKSPACE] == s.ws_id and tags[pods.TAG_PID] == str(os.getpid())
    assert tags[pods.TAG_RUN] == row.run_id and tags["PUBLIC_KEY"].startswith("ssh-ed25519 ")
    assert all(c.authorized for c in s.fake.calls)
    pod_id = next(c.path.rsplit("/", 1)[1] for c in s.fake.calls if c.method == "DELETE")
    record = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url)).load_record(pod_id)
    assert record is not None and record.terminated_at is not None
    lifetime = record.terminated_at - record.created_at
    assert record.cost_usd == pytest.approx(21.52 * lifetime / 3600)
    (entry,) = s.ws.budget().history()
    assert entry.state == "settled" and entry.actual_usd == pytest.approx(record.cost_usd)
    assert row.cost_usd == pytest.approx(record.cost_usd, abs=1e-4)
    run_dir = s.ws.run_dir(row.run_id)
    assert json.loads((run_dir / "env.json").read_text())["FAKE_MODE"] == "ok"
    assert json.loads((run_dir / "plan.json").read_text())["gpus"] == 8
    # The key is never written anywhere in the workspace.
    for path in s.ws.root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert API_KEY.encode() not in path.read_bytes(), path


def test_exception_mid_run_still_terminates_and_records_a_crash(setup: Setup,
                                                                 monkeypatch: pytest.MonkeyPatch):
    s = setup
    before = signal.getsignal(signal.SIGTERM)

    def broken_fetch(self, remote_run, run_dir, timeout):
        raise RuntimeError("the network broke while fetching results")

    # A bug (not a failed run) propagates, but only after the pod was terminated and its cost recorded.
    monkeypatch.setattr(SshBackend, "_fetch_results", broken_fetch)
    with pytest.raises(RuntimeError, match="network broke"):
        promote_run(s.ws, s.ws.config(), "L1", yes=True)

    assert s.mine() == []
    _assert_other_untouched(s)
    _assert_no_reservation_left(s)
    _assert_crash_row_holds_the_settled_cost(s)
    assert signal.getsignal(signal.SIGTERM) is before, "the chained handler is removed afterwards"


def _start_promotion(s: Setup) -> subprocess.Popen:
    env = {**os.environ, "RUNPOD_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pgolf", "--workspace", str(s.ws.root), "promote", "L1",
                             "--yes"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not list(s.remote.glob("*/started")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the promotion never started training: {proc.stdout.read().decode()}")
        time.sleep(0.05)
    return proc


def test_sigterm_mid_run_terminates_the_pod_then_dies_as_sigterm_would(setup: Setup):
    s = setup
    s.set_mode("hang")
    proc = _start_promotion(s)
    assert len(s.mine()) == 1

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)

    assert proc.returncode == -signal.SIGTERM, proc.stdout.read().decode()
    assert s.mine() == []
    _assert_other_untouched(s)
    # The handler only deleted the pod and wrote its record (the budget's lock may have been held);
    # the next start settles the money and records the crash.
    (record,) = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url)).records()
    assert record.terminated_at is not None and record.cost_usd > 0
    messages = sweep_at_start(s.ws, s.ws.config())
    assert any("recorded as crash" in m for m in messages), messages
    _assert_no_reservation_left(s)
    _assert_crash_row_holds_the_settled_cost(s)
    _assert_other_untouched(s)


def test_sigkill_leaves_an_orphan_that_the_next_start_sweeps(setup: Setup):
    s = setup
    s.set_mode("hang")
    proc = _start_promotion(s)
    proc.kill()
    proc.wait(timeout=30)
    (orphan,) = s.mine()

    listing = subprocess.run([sys.executable, "-m", "pgolf", "--workspace", str(s.ws.root), "compute",
                              "pods", "list", "--json"], env={**os.environ, "RUNPOD_API_KEY": API_KEY},
                             capture_output=True, text=True, check=True)
    (listed,) = json.loads(listing.stdout)
    assert (listed["id"], listed["owner"]) == (orphan["id"], "gone")

    assert len(list(InFlight.folder(s.ws).glob("*.json"))) == 1, "the promotion left its in-flight file"

    # The next start: the supervisor's sweep (or a promotion, or the queue) recovers it.
    messages = sweep_at_start(s.ws, s.ws.config())
    assert any("recorded as crash" in m for m in messages), messages
    assert s.mine() == []
    _assert_other_untouched(s)
    _assert_crash_row_holds_the_settled_cost(s)
    assert s.ws.budget().history()[0].extra["pod_id"] == orphan["id"]
    assert run_promotion_queue(s.ws, s.ws.config(), yes=True) == [], "L1 is never paid for twice"
    assert sweep_at_start(s.ws, s.ws.config()) == []

    # Promoting it again is still possible, when asked for by name.
    s.set_mode("ok")
    result = promote_run(s.ws, s.ws.config(), "L1", yes=True)
    assert result.status == "keep", result.reason
    assert s.mine() == []
    assert [e.state for e in s.ws.budget().history()] == ["settled", "settled"]


def test_settled_cost_is_the_pod_price_times_its_lifetime(setup: Setup):
    s = setup
    config = s.ws.config()
    budget = s.ws.budget(config)
    ticks = itertools.count(1000.0, 900.0)  # the pod is created at t=1000 and deleted at t=1900
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url), budget, clock=lambda: next(ticks))
    reservation = budget.reserve(5.0, gpus=8, run_id="R1")
    backend = RunpodBackend(s.ws, config.tiers.runpod, lifecycle, poll_seconds=0.05)
    outcome = backend.run(RunRequest(
        run_id="R1", workspace_root=s.ws.root, commit=git.head_commit(s.ws.root),
        command=f"{sys.executable} train_gpt.py", run_dir=s.ws.run_dir("R1"), env={"FAKE_MODE": "ok"},
        gpus=8, reservation_id=reservation))

    assert outcome.returncode == 0 and outcome.error == ""
    assert outcome.cost_usd == pytest.approx(21.52 * 900 / 3600)
    (entry,) = budget.history()
    assert (entry.state, entry.seconds) == ("settled", 900.0)
    assert entry.actual_usd == pytest.approx(21.52 * 900 / 3600)
    assert s.mine() == []


@pytest.mark.parametrize("price_on_get", [True, False])
def test_a_pod_without_a_price_is_settled_at_the_known_or_configured_price(setup: Setup, price_on_get: bool):
    s = setup
    s.fake.price_on_create = False
    if not price_on_get:
        s.fake.cost_per_hr = None  # the provider never says: the configured price applies
    config = s.ws.config()
    budget = s.ws.budget(config)
    ticks = itertools.count(1000.0, 900.0)
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url), budget, clock=lambda: next(ticks),
                             price_per_gpu_hour=2.0)
    reservation = budget.reserve(5.0, gpus=8, run_id="R3")
    backend = RunpodBackend(s.ws, config.tiers.runpod, lifecycle, poll_seconds=0.05)
    outcome = backend.run(RunRequest(
        run_id="R3", workspace_root=s.ws.root, commit=git.head_commit(s.ws.root),
        command=f"{sys.executable} train_gpt.py", run_dir=s.ws.run_dir("R3"), env={"FAKE_MODE": "ok"},
        gpus=8, reservation_id=reservation))

    price = 21.52 if price_on_get else 2.0 * 8
    assert outcome.cost_usd == pytest.approx(price * 900 / 3600)
    (entry,) = budget.history()
    assert entry.state == "settled" and entry.actual_usd == pytest.approx(price * 900 / 3600)


def test_the_deadline_terminates_the_pod_whatever_it_is_doing(setup: Setup):
    s = setup
    s.fake.polls_until_ready = 10**6  # ssh never comes up; the tier would wait 30 s for it
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url))
    backend = RunpodBackend(s.ws, s.ws.config().tiers.runpod, lifecycle, poll_seconds=0.05)
    started = time.time()
    outcome = backend.run(RunRequest(
        run_id="R4", workspace_root=s.ws.root, commit=git.head_commit(s.ws.root), command="true",
        run_dir=s.ws.run_dir("R4"), gpus=8, deadline=started + 2.0))

    assert outcome.timed_out and "deadline" in outcome.error
    assert s.mine() == []
    (record,) = lifecycle.records()
    assert record.terminated_at is not None and record.terminated_at - started < 5.0
    assert time.time() - started < 10.0


def test_a_failed_termination_keeps_the_reservation_for_the_sweep(setup: Setup):
    s = setup
    s.fake.refuse_deletes = True
    result = promote_run(s.ws, s.ws.config(), "L1", yes=True)  # an outcome, not an exception

    assert result.outcome is not None and "could not terminate pod" in result.outcome.error
    assert "the pod may still be running" in result.reason and result.cost_usd == 0
    (pod,) = s.mine()
    (entry,) = s.ws.budget().history()
    assert entry.state == "reserved", "never released while the pod may still run"
    # This process ends (its pid in the tags now names a dead one); the provider works again.
    dead = str(_dead_pid())
    pod["env"][pods.TAG_PID] = dead
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url))
    (record,) = lifecycle.records()
    record.tags[pods.TAG_PID] = dead
    lifecycle._save(record)
    s.fake.refuse_deletes = False

    messages = sweep_at_start(s.ws, s.ws.config())

    assert any(pod["id"] in m and "terminated" in m for m in messages), messages
    assert s.mine() == []
    (entry,) = s.ws.budget().history()
    assert entry.state == "settled" and entry.actual_usd > 0
    pods.run_cleanups()  # the failed pod's exit cleanup: now a no-op (its record says terminated)


def test_a_signal_while_the_budget_is_locked_does_not_deadlock(setup: Setup):
    s = setup
    budget = s.ws.budget(s.ws.config())
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url), budget)
    reservation = budget.reserve(5.0, gpus=8, run_id="R5")

    def too_long(signum, frame):
        raise TimeoutError("the signal handler blocked on the budget's lock")

    seen: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))  # chained to
    old_alarm = signal.signal(signal.SIGALRM, too_long)
    try:
        pod = lifecycle.create(RunpodBackend(s.ws, s.ws.config().tiers.runpod, lifecycle).pod_body(RunRequest(
            run_id="R5", workspace_root=s.ws.root, commit="", command="", run_dir=s.ws.run_dir("R5"), gpus=8,
            reservation_id=reservation)), run_id="R5", reservation_id=reservation)
        signal.alarm(10)
        with budget._locked():  # the interrupted code holds the budget's lock
            os.kill(os.getpid(), signal.SIGTERM)
        signal.alarm(0)

        assert seen == [signal.SIGTERM]
        assert s.mine() == []
        record = lifecycle.load_record(pod.id)
        assert record is not None and record.terminated_at is not None and not record.settled
        assert budget.history()[0].state == "reserved"
        lifecycle.terminate(pod.id)  # normal code afterwards settles it
        (entry,) = budget.history()
        assert entry.state == "settled" and entry.actual_usd == pytest.approx(record.cost_usd)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, original)


def test_a_pod_dearer_than_planned_is_terminated_at_once(setup: Setup):
    s = setup
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url), max_cost_per_hr=10.0)
    backend = RunpodBackend(s.ws, s.ws.config().tiers.runpod, lifecycle)
    outcome = backend.run(RunRequest(
        run_id="R2", workspace_root=s.ws.root, commit=git.head_commit(s.ws.root), command="true",
        run_dir=s.ws.run_dir("R2"), gpus=8))
    assert "above the planned $10.00/h" in outcome.error
    assert s.mine() == []
    assert not (s.remote / "R2").exists(), "nothing ran on it"


def test_a_refused_key_is_one_line_without_the_key(setup: Setup):
    with pytest.raises(RunpodError) as err:
        RunpodClient("wrong-key-123", setup.fake.url, retries=0).list_pods()
    assert "HTTP 401" in str(err.value) and "wrong-key-123" not in str(err.value)


def test_cleanups_chain_to_the_previous_handler_and_are_removed_after(tmp_path: Path):
    seen: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append("previous handler"))
    try:
        token = register_cleanup(lambda: seen.append("cleanup"))
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == ["cleanup", "previous handler"]
        assert unregister_cleanup(token) is False  # it already ran
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == ["cleanup", "previous handler", "previous handler"]
        assert signal.getsignal(signal.SIGTERM) is not pods._on_signal
    finally:
        signal.signal(signal.SIGTERM, previous)


def _request(s: Setup, run_id: str, reservation: str) -> RunRequest:
    return RunRequest(run_id=run_id, workspace_root=s.ws.root, commit=git.head_commit(s.ws.root),
                      command=f"{sys.executable} train_gpt.py", run_dir=s.ws.run_dir(run_id),
                      env={"FAKE_MODE": "ok"}, gpus=8, reservation_id=reservation)


def test_a_lost_create_answer_keeps_the_reservation_until_the_next_start_settles_the_pod(setup: Setup):
    s = setup
    config = s.ws.config()
    budget = s.ws.budget(config)
    sent_at = time.time() - 900.0  # the create request went out 900 s before the next start
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url, retries=0), budget, clock=lambda: sent_at)
    reservation = budget.reserve(10.0, gpus=8, run_id="R6")
    s.fake.lose_create_answers = 1  # the pod is made, the connection closes unanswered
    s.fake.failing_lists = 1  # and the by-name cleanup right after it fails
    backend = RunpodBackend(s.ws, config.tiers.runpod, lifecycle, poll_seconds=0.05)

    outcome = backend.run(_request(s, "R6", reservation))

    assert "may exist" in outcome.error and outcome.cost_usd == 0
    (pod,) = s.mine()
    (entry,) = budget.history()
    assert entry.state == "reserved", "never released while the pod exists"
    assert pods.pod_may_be_running(s.ws, reservation), "what a promotion checks before releasing"

    messages = sweep_at_start(s.ws, config)  # the next start (a real clock from here on)

    assert any(pod["id"] in m and "terminated" in m for m in messages), messages
    assert s.mine() == []
    _assert_other_untouched(s)
    record = lifecycle.load_record(pod["id"])
    assert record is not None and record.created_at == sent_at and record.terminated_at >= sent_at + 900
    (entry,) = budget.history()
    assert entry.state == "settled" and "release_reason" not in entry.extra
    assert entry.actual_usd == pytest.approx(21.52 * (record.terminated_at - sent_at) / 3600) and entry.actual_usd > 0
    assert entry.extra["pod_id"] == pod["id"]
    assert [r.state for r in lifecycle.records()] == ["created"], "the record by name is gone"
    assert sweep_at_start(s.ws, config) == []


def test_a_lost_create_that_made_no_pod_is_released_only_after_the_grace(setup: Setup):
    s = setup
    config = s.ws.config()
    budget = s.ws.budget(config)
    now = [1000.0]
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url, retries=0), budget,
                             clock=lambda: now[0], unknown_create_grace_seconds=30.0)
    reservation = budget.reserve(5.0, gpus=8, run_id="R7")
    s.fake.lose_create_answers = 1
    s.fake.lost_creates_make_pods = False
    body = RunpodBackend(s.ws, config.tiers.runpod, lifecycle).pod_body(_request(s, "R7", reservation))

    with pytest.raises(PgolfError, match="may exist"):
        lifecycle.create(body, run_id="R7", reservation_id=reservation)
    now[0] = 1020.0  # listed without it, but within the grace: it may still appear
    (waiting,) = lifecycle.sweep_orphans()

    assert "kept until 30 s" in waiting.problem
    assert budget.history()[0].state == "reserved"

    now[0] = 1031.0
    (closed,) = lifecycle.sweep_orphans()

    assert closed.problem == "" and closed.outcome.startswith("never created")
    (entry,) = budget.history()
    assert entry.state == "released" and "never created" in entry.extra["release_reason"]
    assert not pods.pod_may_be_running(s.ws, reservation)
    assert lifecycle.sweep_orphans() == []
    _assert_other_untouched(s)


def test_a_refused_create_releases_the_reservation_at_once(setup: Setup):
    s = setup
    s.fake.refuse_creates = True

    result = promote_run(s.ws, s.ws.config(), "L1", yes=True)

    assert result.status == "crash" and "HTTP 400" in result.reason
    assert s.mine() == []
    (entry,) = s.ws.budget().history()
    assert entry.state == "released" and result.cost_usd == 0
    assert PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url)).records() == []
    _assert_other_untouched(s)


def test_a_lost_create_answer_with_a_working_listing_settles_the_pod_at_once(setup: Setup):
    s = setup
    config = s.ws.config()
    budget = s.ws.budget(config)
    ticks = itertools.count(1000.0, 600.0)  # the request at t=1000, the deletion at t=1600
    lifecycle = PodLifecycle(s.ws, RunpodClient(API_KEY, s.fake.url, retries=0), budget, clock=lambda: next(ticks))
    reservation = budget.reserve(10.0, gpus=8, run_id="R8")
    s.fake.lose_create_answers = 1
    body = RunpodBackend(s.ws, config.tiers.runpod, lifecycle).pod_body(_request(s, "R8", reservation))

    with pytest.raises(PgolfError, match="was terminated"):
        lifecycle.create(body, run_id="R8", reservation_id=reservation)

    assert s.mine() == []
    (entry,) = budget.history()
    assert entry.state == "settled" and entry.actual_usd == pytest.approx(21.52 * 600 / 3600)
    _assert_other_untouched(s)


def test_two_concurrent_runpod_workers_never_reserve_past_the_credits(setup: Setup):
    s = setup
    s.ws.ledger().append(LedgerRow(commit=git.head_commit(s.ws.root), tier="local", val_bpb=1.29,
                                   artifact_bytes=100_000, memory_gb=None, status="keep", promoted="pending",
                                   run_id="L2", seed=8, description="try y"))
    one = plan_promotion(s.ws, s.ws.config(), "L1", yes=True).reserved_usd
    text = s.ws.config_path.read_text().replace("total_usd = 100.0", f"total_usd = {one * 1.5:.4f}")
    s.ws.config_path.write_text(text.replace("gpu_count = 8", "gpu_count = 8\nmax_pods = 2"))
    config = s.ws.config()
    assert config.tiers.runpod.max_pods == 2
    s.fake.polls_until_ready = 2  # the winner holds its reservation for seconds; the other asks in milliseconds
    results = run_promotion_queue(s.ws, config, yes=True)
    # Both workers started at once; the budget let exactly one reserve, the other is refused with why.
    assert sorted(r.status for r in results) == ["keep", "refused"], [(r.status, r.reason) for r in results]
    refused = next(r for r in results if r.status == "refused")
    assert refused.reason.startswith("reserve:")
    creates = [c for c in s.fake.calls if c.method == "POST" and c.path == "/v1/pods"]
    assert len(creates) == 1
    st = s.ws.budget().status()
    assert st.spent_usd <= one * 1.5 and st.reserved_usd == 0
    assert [e.state for e in s.ws.budget().history()] == ["settled"]
    _assert_other_untouched(s)
