"""Pods that never outlive their run: tagging, termination in every outcome, the orphan sweep.

Every pod carries tags (in its env and its name) naming this workspace and the pgolf process that made
it. Termination runs from the run's own `finally`, from `atexit`, and from SIGTERM/SIGINT handlers that
chain to whatever handler was there before. A SIGKILL leaves the pod running; the next start lists this
workspace's pods and terminates those whose owner process is gone. Pods of other workspaces on the same
account are never touched. Each pod also has a record in `.pgolf/pods/<id>.json` (created, price,
terminated, cost, settled) from which its reservation is settled at price × lifetime. That record is
written under the pod's unique name before the create request is sent, so a pod whose create answer was
lost is still found (by name and tags), terminated and paid from the kept reservation; only a definite
refusal, or a listing without it long after the request, releases the reservation. A signal handler
only deletes the pod and writes its record (taking the budget's lock there could deadlock against the
interrupted code); the settlement follows in normal code, or in the next start's sweep."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.errors import BudgetRefused, PgolfError
from pgolf.workspace import Workspace

if TYPE_CHECKING:
    from pgolf.compute.runpod import PodInfo, RunpodClient

TAG_WORKSPACE = "PGOLF_WORKSPACE_ID"
TAG_PID = "PGOLF_OWNER_PID"
TAG_HOST = "PGOLF_OWNER_HOST"
TAG_START = "PGOLF_OWNER_START"
TAG_RUN = "PGOLF_RUN_ID"
TAG_RESERVATION = "PGOLF_RESERVATION"
_NAME_LIMIT = 64
_NONCE_CHARS = 6
_HANDLER_WAIT_SECONDS = 30.0

# -- cleanups that run on exit and on SIGTERM/SIGINT ------------------------------------------------

_lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
_cleanups: dict[int, Callable[[], None]] = {}
_tokens = itertools.count(1)
_previous: dict[int, Any] = {}
_atexit_done = False
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum, signal.SIG_DFL)  # before run_cleanups restores the handlers
    run_cleanups()
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # The default action: end the process exactly as the signal would have.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _atexit_done
    if not _atexit_done:
        atexit.register(run_cleanups)
        _atexit_done = True
    if threading.current_thread() is not threading.main_thread() or _previous:
        return
    for sig in _SIGNALS:
        _previous[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_previous.items()):
        if signal.getsignal(sig) is _on_signal:  # someone else's newer handler stays
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _previous.clear()


def register_cleanup(fn: Callable[[], None]) -> int:
    """Run `fn` on exit or SIGTERM/SIGINT until unregistered; returns a token."""
    with _lock:
        token = next(_tokens)
        _cleanups[token] = fn
        _install_handlers()
        return token


def unregister_cleanup(token: int) -> bool:
    """Forget a cleanup (its work was done the normal way); False when it already ran."""
    with _lock:
        found = _cleanups.pop(token, None) is not None
        if not _cleanups:
            _restore_handlers()
        return found


def run_cleanups() -> None:
    """Run every registered cleanup, newest first; one failing never stops the others.

    The previous signal handlers are back in place afterwards (nothing is left to clean up).
    """
    with _lock:
        pending = sorted(_cleanups.items(), reverse=True)
        _cleanups.clear()
        _restore_handlers()
    for _token, fn in pending:
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - a cleanup must not hide the next one
            print(f"pgolf: cleanup failed: {err}", flush=True)


@contextmanager
def cleanup_on_exit(fn: Callable[[], None]) -> Iterator[None]:
    """Within the block, `fn` runs if the process exits or is signalled (not on a normal exit)."""
    token = register_cleanup(fn)
    try:
        yield
    finally:
        unregister_cleanup(token)


# -- owners and tags ----------------------------------------------------------------------------


def workspace_id(ws: Workspace) -> str:
    """This workspace's id (created once in .pgolf/workspace_id); tags every pod it makes."""
    path = ws.workspace_id_file
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if not value:
        ws.state_dir.mkdir(parents=True, exist_ok=True)
        value = uuid.uuid4().hex[:12]
        try:
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(value + "\n")
        except FileExistsError:  # another process won the race: use its id
            return path.read_text(encoding="utf-8").strip()
    return value


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (tells a reused pid apart), or ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tags(ws_id: str, run_id: str, reservation_id: str = "") -> dict[str, str]:
    """The env tags of a pod made by this process for `run_id`."""
    pid = os.getpid()
    return {TAG_WORKSPACE: ws_id, TAG_PID: str(pid), TAG_HOST: socket.gethostname(),
            TAG_START: process_start(pid), TAG_RUN: run_id, TAG_RESERVATION: reservation_id}


def pod_name(ws_id: str, run_id: str) -> str:
    """`pgolf-<workspace id>-<run id>-<nonce>`, short enough for the provider and unique: a pod whose
    create answer was lost is found by it."""
    nonce = uuid.uuid4().hex[:_NONCE_CHARS]
    return f"{name_prefix(ws_id)}{run_id}"[:_NAME_LIMIT - _NONCE_CHARS - 1] + f"-{nonce}"


def name_prefix(ws_id: str) -> str:
    """The start of every pod name of workspace `ws_id`."""
    return f"pgolf-{ws_id}-"


def owner_state(tags: dict[str, str]) -> str:
    """`alive`, `gone`, or `other-host` (a process on another machine cannot be checked)."""
    if tags.get(TAG_HOST, "") != socket.gethostname():
        return "other-host"
    try:
        pid = int(tags.get(TAG_PID, ""))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return "gone"
    except PermissionError:
        pass  # exists, owned by someone else
    start = tags.get(TAG_START, "")
    if start and process_start(pid) not in ("", start):
        return "gone"  # the pid was reused by another process
    return "alive"


# -- the pod records and the lifecycle ----------------------------------------------------------

# Record states: the create request is in flight (no id yet); it ended without a usable answer (a pod
# may exist); the pod exists; the provider never listed a pod of that name (nothing was spent).
CREATING, UNKNOWN, CREATED, NOT_CREATED = "creating", "unknown", "created", "not created"


class CreateRefused(PgolfError):
    """The provider definitely refused a create request: no pod was made."""


@dataclass
class PodRecord:
    """What this workspace knows about one pod it made."""

    pod_id: str
    name: str
    run_id: str
    reservation_id: str
    created_at: float
    cost_per_hr: float
    tags: dict[str, str] = field(default_factory=dict)
    terminated_at: float | None = None
    cost_usd: float | None = None
    reason: str = ""
    settled: bool = False  # the cost is in the budget (or there is no reservation to settle)
    state: str = CREATED

    @property
    def key(self) -> str:
        """The record's file name: the pod id, or its unique name while the id is unknown."""
        return self.pod_id or f"{CREATING}-{self.name}"


@dataclass(frozen=True)
class WorkspacePod:
    """A pod of this workspace as the provider lists it, with its owner's state."""

    id: str
    name: str
    run_id: str
    status: str
    cost_per_hr: float
    owner_pid: str
    owner: str  # alive | gone | other-host


@dataclass(frozen=True)
class SweptPod:
    """A pod the sweep terminated, and what it cost."""

    id: str
    name: str
    run_id: str
    cost_usd: float
    problem: str = ""  # why it could not be terminated or settled, when it could not
    outcome: str = "terminated"  # or "never created" (a lost create answer; its reservation released)


def pod_records(ws: Workspace) -> list[PodRecord]:
    """Every pod record of the workspace, oldest first."""
    folder = ws.pods_dir
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        if (data := statefile.load_json(path, missing=None)) is not None:  # None: removed since the listing
            found.append(statefile.from_record(PodRecord, data, str(path)))
    return sorted(found, key=lambda r: r.created_at)


def pod_may_be_running(ws: Workspace, reservation_id: str) -> bool:
    """True when a pod paid from this reservation has no termination on record (it may still bill)."""
    return any(r.reservation_id == reservation_id and r.terminated_at is None for r in pod_records(ws))


class PodLifecycle:
    """Create tagged pods, terminate them in every outcome, settle their cost, sweep orphans.

    `max_cost_per_hr` refuses a pod dearer than planned; `price_per_gpu_hour` is the configured price,
    used when the provider does not say what a pod costs (a paid pod is never recorded at $0).
    `unknown_create_grace_seconds`: a create whose answer was lost counts as never made only once a
    listing this long after the request still lacks its name.
    """

    def __init__(self, ws: Workspace, client: RunpodClient, budget: BudgetManager | None = None, *,
                 clock: Callable[[], float] = time.time, max_cost_per_hr: float | None = None,
                 price_per_gpu_hour: float | None = None, unknown_create_grace_seconds: float = 600.0) -> None:
        self.ws = ws
        self.client = client
        self.budget = budget
        self.clock = clock
        self.max_cost_per_hr = max_cost_per_hr
        self.price_per_gpu_hour = price_per_gpu_hour
        # How long after a create whose answer was lost a listing without the pod proves it was never made.
        self.unknown_create_grace_seconds = unknown_create_grace_seconds
        self.workspace_id = workspace_id(ws)
        self._tokens: dict[str, int] = {}
        # Re-entrant: a signal handler on the main thread may terminate while the main thread terminates.
        self._terminating = threading.RLock()

    @property
    def records_dir(self) -> Path:
        return self.ws.pods_dir

    def _record_path(self, pod_id: str) -> Path:
        return self.records_dir / f"{pod_id}.json"

    def _save(self, record: PodRecord) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._record_path(record.key), json.dumps(asdict(record), indent=1) + "\n")

    def _forget(self, record: PodRecord) -> None:
        self._record_path(record.key).unlink(missing_ok=True)

    def load_record(self, pod_id: str) -> PodRecord | None:
        """The local record of a pod, if this workspace made it."""
        path = self._record_path(pod_id)
        record = statefile.load_json(path, missing=None)
        return None if record is None else statefile.from_record(PodRecord, record, str(path))

    def records(self) -> list[PodRecord]:
        """Every local pod record, oldest first."""
        return pod_records(self.ws)

    def price_of(self, pod: PodInfo, gpus: int) -> float:
        """The pod's $/h: as the provider gave it, else re-read, else the configured price × GPUs."""
        if pod.cost_per_hr > 0:
            return pod.cost_per_hr
        with contextlib.suppress(PgolfError):
            fresh = self.client.get_pod(pod.id)
            if fresh is not None and fresh.cost_per_hr > 0:
                return fresh.cost_per_hr
        return (self.price_per_gpu_hour or 0.0) * max(gpus or pod.gpu_count, 1)

    def create(self, body: dict[str, Any], *, run_id: str, reservation_id: str = "") -> PodInfo:
        """Create a pod; from here on it is terminated on exit, signal or error.

        The record is written (by the pod's unique name) before the request: whatever happens to the
        answer, its reservation stays open until the pod is found and paid for or proven never made.
        Its time is the start of the pod's lifetime, which is therefore never undercounted."""
        pending = PodRecord("", str(body.get("name", "")), run_id, reservation_id, self.clock(), 0.0,
                            dict(body.get("env") or {}), state=CREATING)
        self._save(pending)
        try:
            pod = self.client.create_pod(body)
        except CreateRefused:
            self._forget(pending)  # nothing was created: the reservation may go
            raise
        except BaseException as err:
            pending.state = UNKNOWN
            self._save(pending)
            if isinstance(err, PgolfError):
                raise PgolfError(f"{err}; {self._after_lost_create(pending)}") from None
            raise
        record = PodRecord(pod.id, pod.name or pending.name, run_id, reservation_id, pending.created_at, 0.0,
                           pending.tags)
        self._save(record)  # first, so that a kill from here on leaves a trace the sweep settles
        self._forget(pending)
        self._tokens[pod.id] = register_cleanup(lambda: self._stop_on_exit(pod.id))
        record.cost_per_hr = self.price_of(pod, int(body.get("gpuCount") or 0))
        self._save(record)
        limit = self.max_cost_per_hr
        if limit is not None and record.cost_per_hr > limit * 1.0001:
            self.terminate(pod.id, reason="price above plan")
            raise BudgetRefused(f"pod {pod.id} costs ${record.cost_per_hr:.2f}/h, above the planned "
                                f"${limit:.2f}/h; terminated it (set the tier's price_per_gpu_hour)")
        return pod

    def _after_lost_create(self, pending: PodRecord) -> str:
        """Right after a create whose answer was lost: terminate and settle the pod if it is listed."""
        try:
            match = next((p for p in self.workspace_pods() if p.name == pending.name), None)
            if match is not None:
                swept = self._sweep_one(match, "create answer lost", pending)
                if not swept.problem:
                    return f"the pod {match.id} it made was terminated (${swept.cost_usd:.2f})"
        except PgolfError:
            pass  # the sweep finds it by name later
        return (f"a pod named {pending.name} may exist: its reservation is kept until "
                "`pgolf compute pods sweep` (or the next start) finds it or proves it was never made")

    def _stop_on_exit(self, pod_id: str) -> None:
        """The exit/signal cleanup: delete and record, never the budget (its lock may be held here)."""
        # Bounded: another thread may hold the lock while it waits for the budget's lock, held by the
        # code this handler interrupted. A second delete is harmless.
        locked = self._terminating.acquire(timeout=_HANDLER_WAIT_SECONDS)
        try:
            self._stop_billing(pod_id, "exit or signal")
        finally:
            if locked:
                self._terminating.release()

    def _stop_billing(self, pod_id: str, reason: str) -> PodRecord | None:
        """Delete the pod (idempotent) and record its lifetime and cost; touches no budget lock."""
        record = self.load_record(pod_id)
        if record is not None and record.terminated_at is not None:
            return record
        try:
            self.client.delete_pod(pod_id)
        except PgolfError as err:
            raise PgolfError(f"could not terminate pod {pod_id} ({err}); it may still be running: "
                             "run `pgolf compute pods sweep` once this process has ended") from None
        token = self._tokens.pop(pod_id, None)
        if token is not None:
            unregister_cleanup(token)
        if record is None:
            return None
        record.terminated_at = self.clock()
        lifetime = max(record.terminated_at - record.created_at, 0.0)
        record.cost_usd = record.cost_per_hr * lifetime / 3600.0
        record.reason = reason
        record.settled = not (self.budget is not None and record.reservation_id)
        self._save(record)
        return record

    def terminate(self, pod_id: str, reason: str = "") -> float:
        """Delete the pod (idempotent), record its lifetime and settle its reservation; returns $."""
        with self._terminating:
            record = self._stop_billing(pod_id, reason)
            if record is None:
                return 0.0
            self._settle(record)
            return record.cost_usd or 0.0

    def _settle(self, record: PodRecord) -> None:
        """Put the pod's cost in the budget once; a reservation released while it billed is an error."""
        if record.settled or self.budget is None or not record.reservation_id:
            return
        lifetime = max((record.terminated_at or record.created_at) - record.created_at, 0.0)
        try:
            self.budget.settle(record.reservation_id, record.cost_usd or 0.0, seconds=lifetime,
                               extra={"pod_id": record.pod_id, "cost_per_hr": record.cost_per_hr})
        except BudgetRefused:
            entry = next((e for e in self.budget.history() if e.id == record.reservation_id), None)
            if entry is None or entry.state != "settled":  # not merely settled first by a concurrent sweep
                # Said once, loudly; the record keeps the cost for whoever reconciles the budget.
                record.settled = True
                record.reason += f"; NOT IN THE BUDGET: reservation {entry.state if entry else 'missing'}"
                self._save(record)
                raise PgolfError(
                    f"pod {record.pod_id} cost ${record.cost_usd or 0.0:.2f} but its reservation "
                    f"{record.reservation_id} is {entry.state if entry else 'missing'}; "
                    "that cost is not in the budget") from None
        record.settled = True
        self._save(record)

    def workspace_pods(self) -> list[WorkspacePod]:
        """This workspace's pods on the account (never another workspace's)."""
        prefix = name_prefix(self.workspace_id)
        mine = []
        for pod in self.client.list_pods():
            tagged = pod.env.get(TAG_WORKSPACE)
            if tagged != self.workspace_id and not (tagged is None and pod.name.startswith(prefix)):
                continue
            record = self.load_record(pod.id)
            tags = pod.env if TAG_PID in pod.env else (record.tags if record else {})
            mine.append(WorkspacePod(pod.id, pod.name, tags.get(TAG_RUN, ""), pod.desired_status,
                                     pod.cost_per_hr, tags.get(TAG_PID, ""), owner_state(tags)))
        return mine

    def sweep_orphans(self, *, include_other_hosts: bool = False) -> list[SweptPod]:
        """Terminate this workspace's pods whose owner process is gone; settle what they cost."""
        swept = []
        orphan_states = {"gone", "other-host"} if include_other_hosts else {"gone"}
        listed = self.workspace_pods()
        # Creates whose answer was lost (their call has returned), or whose owner died during the call.
        unresolved = {r.name: r for r in self.records()
                      if r.state == UNKNOWN or (r.state == CREATING and owner_state(r.tags) in orphan_states)}
        for pod in listed:
            pending = unresolved.pop(pod.name, None)
            if pending is not None or pod.owner in orphan_states:
                swept.append(self._sweep_one(pod, "orphan sweep", pending))
        swept += [self._close_unlisted(pending) for pending in unresolved.values()]
        # Records whose owner died before terminating or settling them (a kill, or a signal whose
        # handler deleted the pod and left the settlement to normal code that never ran).
        listed_ids = {p.id for p in listed}
        for record in self.records():
            if record.state != CREATED or record.pod_id in listed_ids or record.settled \
                    or owner_state(record.tags) not in orphan_states:
                continue
            swept.append(self._terminate_reporting(record.pod_id, record.name, record.run_id, "orphan record"))
        return swept

    def _sweep_one(self, pod: WorkspacePod, reason: str, pending: PodRecord | None = None) -> SweptPod:
        """Terminate and settle one listed orphan (with the record its lost create left, if any)."""
        try:
            self._ensure_record(pod, pending)
        except PgolfError as err:
            return SweptPod(pod.id, pod.name, pod.run_id, 0.0, str(err))
        return self._terminate_reporting(pod.id, pod.name, pod.run_id, reason)

    def _terminate_reporting(self, pod_id: str, name: str, run_id: str, reason: str) -> SweptPod:
        """Terminate and settle; a failure is reported on the result and does not stop the sweep."""
        try:
            return SweptPod(pod_id, name, run_id, self.terminate(pod_id, reason=reason))
        except PgolfError as err:
            record = self.load_record(pod_id)
            return SweptPod(pod_id, name, run_id, (record.cost_usd or 0.0) if record else 0.0, str(err))

    def _ensure_record(self, pod: WorkspacePod, pending: PodRecord | None = None) -> None:
        """A pod whose create answer never arrived has no record: make one from the record written
        before its create request (its lifetime starts there), else from its tags."""
        if self.load_record(pod.id) is None:
            info = self.client.get_pod(pod.id)
            price = self.price_of(info, info.gpu_count) if info else pod.cost_per_hr
            if pending is not None:
                record = PodRecord(pod.id, pod.name, pending.run_id, pending.reservation_id, pending.created_at,
                                   price, pending.tags)
            else:
                tags = info.env if info else {}
                reservation = tags.get(TAG_RESERVATION, "")
                created = self.clock()
                if self.budget is not None and reservation:
                    created = next((e.created_at for e in self.budget.history() if e.id == reservation), created)
                record = PodRecord(pod.id, pod.name, pod.run_id, reservation, created, price, tags)
            self._save(record)
        if pending is not None:
            self._forget(pending)

    def _close_unlisted(self, pending: PodRecord) -> SweptPod:
        """A lost create whose pod is not listed: never made once the grace has passed, so its
        reservation is released; until then it stays reserved."""
        waited = self.clock() - pending.created_at
        if waited <= self.unknown_create_grace_seconds:
            return SweptPod("", pending.name, pending.run_id, 0.0,
                            f"no pod named {pending.name} is listed {waited:.0f} s after its create request "
                            f"(whose answer was lost); its reservation is kept until "
                            f"{self.unknown_create_grace_seconds:.0f} s have passed")
        reason = (f"create answer lost and no pod named {pending.name} listed "
                  f"{waited:.0f} s after the request: never created")
        if pending.reservation_id:
            if self.budget is None:
                return SweptPod("", pending.name, pending.run_id, 0.0,
                                "its reservation can only be released with the budget at hand")
            open_pods = [r for r in self.records() if r.reservation_id == pending.reservation_id
                         and r.key != pending.key and r.terminated_at is None]
            entry = next((e for e in self.budget.history() if e.id == pending.reservation_id), None)
            if not open_pods and entry is not None and entry.state == "reserved":
                self.budget.release(pending.reservation_id, reason)
        pending.state, pending.terminated_at, pending.cost_usd = NOT_CREATED, self.clock(), 0.0
        pending.settled, pending.reason = True, reason
        self._save(pending)
        return SweptPod("", pending.name, pending.run_id, 0.0, outcome="never created; reservation released")
