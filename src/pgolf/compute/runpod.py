"""RunPod: a small client for its REST API (v1) and the backend that runs one pod per run.

API facts used (rest.runpod.io/v1, bearer key): `POST /pods` creates (fields `name`, `imageName`,
`gpuTypeIds`, `gpuCount`, `cloudType`, `containerDiskInGb`, `volumeInGb`, `networkVolumeId`, `env`,
`ports`, `supportPublicIp`); `GET /pods`, `GET /pods/{id}` describe (`desiredStatus`, `costPerHr`,
`publicIp`, `portMappings` such as {"22": 40123}, `env`); `POST /pods/{id}/stop` stops;
`DELETE /pods/{id}` terminates. RunPod's images authorize the key given in the `PUBLIC_KEY` env var.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pgolf.budget import BudgetManager
from pgolf.compute.base import LineCallback, RunOutcome, RunRequest
from pgolf.compute.pods import CreateRefused, PodLifecycle, owner_tags, pod_name
from pgolf.compute.ssh import RemoteLayout, SshBackend, SshTarget
from pgolf.config import PgolfConfig, RunpodTier, secret
from pgolf.errors import ConfigError, PgolfError
from pgolf.workspace import Workspace

API_KEY_ENV = "RUNPOD_API_KEY"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_PROBE_SECONDS = 60.0


class RunpodError(PgolfError):
    """The RunPod API refused a request or could not be reached."""


class RunpodRefused(RunpodError, CreateRefused):
    """RunPod answered with a 4xx: the request was refused and did nothing."""


@dataclass(frozen=True)
class PodInfo:
    """The parts of a pod pgolf uses."""

    id: str
    name: str
    desired_status: str
    cost_per_hr: float
    public_ip: str
    ssh_port: int | None
    env: dict[str, str] = field(default_factory=dict)
    gpu_count: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> PodInfo:
        """Parse one pod object as the API returns it."""
        mappings = data.get("portMappings") or {}
        ssh_port = mappings.get("22") or mappings.get(22)
        env = data.get("env") or {}
        if isinstance(env, list):  # some responses give ["KEY=value", ...]
            env = dict(item.split("=", 1) for item in env if "=" in item)
        try:
            cost = float(data.get("costPerHr") or 0.0)
        except (TypeError, ValueError):
            cost = 0.0
        return cls(
            id=str(data.get("id", "")), name=str(data.get("name") or ""),
            desired_status=str(data.get("desiredStatus") or ""), cost_per_hr=cost,
            public_ip=str(data.get("publicIp") or ""), ssh_port=int(ssh_port) if ssh_port else None,
            env={str(k): str(v) for k, v in env.items()}, gpu_count=int(data.get("gpuCount") or 0),
        )


class RunpodClient:
    """create / get / list / stop / delete pods; the key goes in a header and nowhere else."""

    def __init__(self, api_key: str, base_url: str, *, timeout: float = 30.0, retries: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                 retry: bool = True, allow_404: bool = False) -> httpx.Response | None:
        attempts = self.retries + 1 if retry else 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(min(2.0**attempt, 20.0))
            try:
                # A fresh client per call: cleanup may run inside a signal handler mid-request.
                with httpx.Client(timeout=self.timeout) as http:
                    resp = http.request(method, self.base_url + path, headers=self._headers, json=body)
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}"
                continue
            if resp.status_code == 404 and allow_404:
                return None
            if resp.status_code in _RETRY_STATUSES:
                problem = f"HTTP {resp.status_code}"
                continue
            if resp.status_code in (401, 403):
                raise RunpodRefused(f"RunPod refused the API key from {API_KEY_ENV} (HTTP {resp.status_code})")
            if resp.status_code >= 400:
                # A 4xx is a definite refusal; a 408 (the server gave up reading) or a 5xx is not.
                refused = resp.status_code < 500 and resp.status_code != 408
                raise (RunpodRefused if refused else RunpodError)(
                    f"RunPod {method} {path}: HTTP {resp.status_code}: {_short(resp)}")
            return resp
        raise RunpodError(f"RunPod {method} {path}: {problem} after {attempts} attempt(s)")

    def create_pod(self, body: dict[str, Any]) -> PodInfo:
        """Create a pod (never retried: a lost answer may still have created one).

        RunpodRefused means nothing was created; any other RunpodError leaves the outcome unknown."""
        resp = self._request("POST", "/pods", body, retry=False)
        assert resp is not None
        pod = PodInfo.from_api(_json(resp))
        if not pod.id:
            raise RunpodError("RunPod POST /pods: the answer names no pod id")
        return pod

    def get_pod(self, pod_id: str) -> PodInfo | None:
        """One pod, or None when it no longer exists."""
        resp = self._request("GET", f"/pods/{pod_id}", allow_404=True)
        return None if resp is None else PodInfo.from_api(_json(resp))

    def list_pods(self) -> list[PodInfo]:
        """Every pod of the account."""
        resp = self._request("GET", "/pods")
        assert resp is not None
        data = _json(resp)
        if not isinstance(data, list):
            raise RunpodError("RunPod GET /pods: expected a list of pods")
        return [PodInfo.from_api(item) for item in data]

    def stop_pod(self, pod_id: str) -> None:
        """Stop a pod (it keeps its volume and may be resumed)."""
        self._request("POST", f"/pods/{pod_id}/stop", allow_404=True)

    def delete_pod(self, pod_id: str) -> bool:
        """Terminate a pod; False when it was already gone."""
        return self._request("DELETE", f"/pods/{pod_id}", allow_404=True) is not None


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise RunpodError(f"RunPod {resp.request.method} {resp.request.url.path}: not JSON") from None


def _short(resp: httpx.Response) -> str:
    return " ".join(resp.text.split())[:200]


def client_from_config(ws: Workspace, tier: RunpodTier) -> RunpodClient:
    """A client with the key from RUNPOD_API_KEY (environment, then the workspace's .env)."""
    key = secret(API_KEY_ENV, ws.root)
    if not key:
        raise ConfigError(f"{API_KEY_ENV} is not set; export it (or put it in {ws.root / '.env'})")
    return RunpodClient(key, tier.api_url)


def lifecycle_from_config(ws: Workspace, config: PgolfConfig, budget: BudgetManager | None = None, *,
                          max_cost_per_hr: float | None = None) -> PodLifecycle:
    """The pod lifecycle of [tiers.runpod], with the configured price for pods whose price is unknown."""
    tier = config.tiers.runpod
    if tier is None:
        raise ConfigError("no [tiers.runpod] in pgolf.toml")
    per_gpu = config.budget.price_per_gpu_hour if tier.price_per_gpu_hour is None else tier.price_per_gpu_hour
    return PodLifecycle(ws, client_from_config(ws, tier), budget, max_cost_per_hr=max_cost_per_hr,
                        price_per_gpu_hour=per_gpu, unknown_create_grace_seconds=tier.ready_timeout_seconds)


def _answers(probe: list[str], timeout: float) -> bool:
    """True when the ssh probe logs in and exits 0 within `timeout` seconds."""
    try:
        return subprocess.run(probe, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=timeout).returncode == 0
    except (subprocess.SubprocessError, OSError):
        return False


def _public_key(identity_file: Path | None) -> str:
    if identity_file is None:
        return ""
    pub = identity_file.with_name(identity_file.name + ".pub")
    return pub.read_text(encoding="utf-8").strip() if pub.is_file() else ""


@dataclass
class RunpodBackend:
    """One pod per run: create (tagged), wait until ssh answers, run through SshBackend, terminate."""

    ws: Workspace
    tier: RunpodTier
    lifecycle: PodLifecycle
    data_uploads: tuple[tuple[Path, str], ...] = ()
    poll_seconds: float = 5.0
    name: str = "runpod"

    @property
    def identity_file(self) -> Path | None:
        return self.ws.resolve(self.tier.identity_file) if self.tier.identity_file else None

    def pod_body(self, request: RunRequest) -> dict[str, Any]:
        """The POST /pods body: hardware and image from pgolf.toml, tags from this process."""
        body: dict[str, Any] = {
            "name": pod_name(self.lifecycle.workspace_id, request.run_id),
            "imageName": self.tier.image,
            "gpuTypeIds": [self.tier.gpu_type],
            "gpuCount": request.gpus,
            "cloudType": self.tier.cloud_type,
            "containerDiskInGb": self.tier.container_disk_gb,
            "volumeInGb": self.tier.volume_gb,
            "ports": ["22/tcp"],
            "supportPublicIp": True,
            "env": {**owner_tags(self.lifecycle.workspace_id, request.run_id, request.reservation_id),
                    "PUBLIC_KEY": _public_key(self.identity_file)},
        }
        if self.tier.volume_gb:
            body["volumeMountPath"] = "/workspace"
        if self.tier.network_volume_id:
            body["networkVolumeId"] = self.tier.network_volume_id
        return body

    def _wait_ready(self, pod: PodInfo, ssh_for: Callable[[PodInfo], SshBackend], request: RunRequest
                    ) -> PodInfo:
        deadline = time.monotonic() + request.seconds_left(self.tier.ready_timeout_seconds)
        while True:
            current = self.lifecycle.client.get_pod(pod.id)
            if current is None:
                raise RunpodError(f"pod {pod.id} disappeared while starting")
            reachable = current.desired_status == "RUNNING" and current.public_ip and current.ssh_port
            if reachable and _answers(ssh_for(current).target.ssh("true"),
                                      max(min(_PROBE_SECONDS, deadline - time.monotonic()), 1.0)):
                return current
            if time.monotonic() > deadline:
                raise RunpodError(f"pod {pod.id} not reachable by ssh after "
                                  f"{self.tier.ready_timeout_seconds:.0f} s")
            time.sleep(self.poll_seconds)

    def _ssh_backend(self, pod: PodInfo, run_dir: Path) -> SshBackend:
        target = SshTarget(host=pod.public_ip, user=self.tier.ssh_user, port=pod.ssh_port or 22,
                           identity_file=self.identity_file, known_hosts=run_dir / "known_hosts")
        layout = RemoteLayout(self.tier.remote_dir, self.data_uploads)
        return SshBackend(target, layout, tuple(self.tier.fetch), name=self.name)

    def _deadline_watch(self, pod_id: str, request: RunRequest, fired: threading.Event) -> threading.Timer | None:
        """Terminate the pod at the request's deadline, whatever phase the run is in."""
        if request.deadline is None:
            return None

        def expire() -> None:
            fired.set()
            with contextlib.suppress(PgolfError):  # the run's own termination tries again and reports it
                self.lifecycle.terminate(pod_id, reason="deadline")

        timer = threading.Timer(max(request.deadline - time.time(), 0.0), expire)
        timer.daemon = True
        timer.start()
        return timer

    def run(self, request: RunRequest, on_line: LineCallback | None = None) -> RunOutcome:
        """Create the pod, run, and terminate it in every outcome (at the latest at the request's
        deadline); cost = price × lifetime. Only an exception that is no PgolfError/OSError (a bug)
        propagates, after the pod was terminated."""
        request.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        try:
            self.lifecycle.sweep_orphans()  # what a SIGKILLed run left behind
            pod = self.lifecycle.create(self.pod_body(request), run_id=request.run_id,
                                        reservation_id=request.reservation_id)
        except PgolfError as err:
            return RunOutcome(request.run_dir, None, started_at=started, finished_at=time.time(),
                              error=f"creating the pod: {err}")
        fired = threading.Event()
        timer = self._deadline_watch(pod.id, request, fired)
        outcome: RunOutcome | None = None
        problem = ""
        try:
            say = on_line or (lambda _line: None)
            say(f"pgolf: pod {pod.id} created; waiting for ssh")
            ready = self._wait_ready(pod, lambda p: self._ssh_backend(p, request.run_dir), request)
            say(f"pgolf: pod {pod.id} ready at {ready.public_ip}:{ready.ssh_port}")
            outcome = self._ssh_backend(ready, request.run_dir).run(request, on_line)
        except (PgolfError, OSError) as err:
            outcome = RunOutcome(request.run_dir, None, started_at=started, error=f"pod {pod.id}: {err}")
        finally:
            if timer is not None:
                timer.cancel()
            try:
                cost = self.lifecycle.terminate(pod.id, reason="run finished")
            except PgolfError as err:  # the record stays open: its reservation is kept for the sweep
                cost, problem = 0.0, str(err)
        if fired.is_set():
            outcome.timed_out = True
            outcome.add_error("the reservation's deadline passed: the pod was terminated")
        if problem:
            outcome.add_error(problem)
        outcome.cost_usd = cost
        outcome.started_at = started
        outcome.finished_at = time.time()
        return outcome
