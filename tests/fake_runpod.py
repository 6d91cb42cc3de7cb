"""A fake RunPod REST API (v1) on 127.0.0.1: the pod endpoints pgolf uses, every call recorded.

Pods it creates report the test's sshd as their ssh endpoint, and the `PUBLIC_KEY` env var of a new
pod is appended to that sshd's authorized_keys, as RunPod's images do. Deleting a pod calls
`on_delete(pod)`, which tests use to end what ran "on" it. A create's answer can be lost (the
connection closes unanswered, with or without a pod made), and the listings after it can fail.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_KEY = "test-runpod-key"
_POD_PATH = re.compile(r"^/v1/pods/(?P<id>[\w-]+)(?P<stop>/stop)?$")


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str
    path: str
    body: Any
    authorized: bool


class FakeRunpod:
    """State of the fake account: pods by id and every call, in order."""

    def __init__(self, ssh_host: str, ssh_port: int, authorized_keys: Path, *,
                 cost_per_hr: float | None = 21.52, polls_until_ready: int = 1) -> None:
        self.ssh_host = ssh_host
        self.ssh_port = ssh_port
        self.authorized_keys = authorized_keys
        self.cost_per_hr = cost_per_hr
        self.polls_until_ready = polls_until_ready
        self.pods: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.on_delete: Callable[[dict[str, Any]], None] | None = None
        self.price_on_create = True  # False: the create answer omits costPerHr (GET still has it)
        self.refuse_deletes = False  # True: DELETE answers HTTP 400
        self.refuse_creates = False  # True: POST /pods answers HTTP 400 and makes nothing
        self.lose_create_answers = 0  # the next N creates close the connection without an answer
        self.lost_creates_make_pods = True  # False: the lost create made no pod either
        self.failing_lists = 0  # after a lost create answer, this many GET /pods answer HTTP 503
        self._lists_to_fail = 0
        self.url = ""
        self._lock = threading.Lock()
        self._polls: dict[str, int] = {}
        self._next = 0

    def add_pod(self, name: str, env: dict[str, str]) -> str:
        """A pod that exists on the account already (e.g. another workspace's)."""
        with self._lock:
            return self._create({"name": name, "imageName": "other", "gpuTypeIds": ["X"], "gpuCount": 1,
                                 "env": env}, ready=True)["id"]

    def _create(self, body: dict[str, Any], ready: bool = False) -> dict[str, Any]:
        self._next += 1
        pod_id = f"pod{self._next:04d}"
        pod = {"id": pod_id, "name": body["name"], "image": body["imageName"],
               "gpuCount": body["gpuCount"], "desiredStatus": "RUNNING",
               "env": dict(body.get("env") or {}), "publicIp": "", "portMappings": {}}
        if self.cost_per_hr is not None:  # None: the provider does not say
            pod["costPerHr"] = str(self.cost_per_hr)
        if ready:
            self._ready(pod)
        self.pods[pod_id] = pod
        self._polls[pod_id] = 0
        return pod

    def _ready(self, pod: dict[str, Any]) -> None:
        pod["publicIp"] = self.ssh_host
        pod["portMappings"] = {"22": self.ssh_port}

    def pods_of(self, workspace_id: str) -> list[dict[str, Any]]:
        """The pods whose tags name `workspace_id`."""
        return [p for p in self.pods.values() if p["env"].get("PGOLF_WORKSPACE_ID") == workspace_id]

    def calls_to(self, pod_id: str) -> list[Call]:
        """Every call whose path names `pod_id`."""
        return [c for c in self.calls if f"/pods/{pod_id}" in c.path]

    # -- HTTP ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, auth: str, body: Any) -> tuple[int | None, Any]:
        """Answer one request: (status, JSON body); status None closes the connection unanswered."""
        authorized = auth == f"Bearer {API_KEY}"
        with self._lock:
            self.calls.append(Call(method, path, body, authorized))
            if not authorized:
                return 401, {"error": "unauthorized"}
            if path == "/v1/pods" and method == "GET":
                if self._lists_to_fail:
                    self._lists_to_fail -= 1
                    return 503, {"error": "service unavailable"}
                return 200, list(self.pods.values())
            if path == "/v1/pods" and method == "POST":
                return self._post(body)
            match = _POD_PATH.match(path)
            if not match or match["id"] not in self.pods:
                return 404, {"error": "pod not found"}
            pod = self.pods[match["id"]]
            if match["stop"] and method == "POST":
                pod["desiredStatus"] = "EXITED"
                return 200, pod
            if method == "GET":
                self._polls[pod["id"]] += 1
                if self._polls[pod["id"]] >= self.polls_until_ready:
                    self._ready(pod)
                return 200, pod
            if method == "DELETE":
                if self.refuse_deletes:
                    return 400, {"error": "delete refused"}
                del self.pods[pod["id"]]
                if self.on_delete is not None:
                    self.on_delete(pod)
                return 200, {}
        return 405, {"error": "method not allowed"}

    def _post(self, body: Any) -> tuple[int, Any]:
        required = {"name": str, "imageName": str, "gpuTypeIds": list, "gpuCount": int}
        if not isinstance(body, dict) or any(not isinstance(body.get(k), t) for k, t in required.items()):
            return 400, {"error": f"body needs {sorted(required)}"}
        if self.refuse_creates:
            return 400, {"error": "create refused"}
        if self.lose_create_answers:
            self.lose_create_answers -= 1
            self._lists_to_fail = self.failing_lists
            if self.lost_creates_make_pods:
                self._create(body)
            return None, None
        pod = self._create(body)
        key = pod["env"].get("PUBLIC_KEY", "")
        if key:
            with open(self.authorized_keys, "a", encoding="utf-8") as fh:
                fh.write(key + "\n")
        if not self.price_on_create:
            return 201, {k: v for k, v in pod.items() if k != "costPerHr"}
        return 201, pod


def _handler(fake: FakeRunpod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = fake.handle(self.command, self.path, self.headers.get("Authorization", ""),
                                          body)
            if status is None:  # the answer is lost: the connection closes without one
                self.close_connection = True
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(fake: FakeRunpod) -> Iterator[FakeRunpod]:
    """Serve `fake` on a free 127.0.0.1 port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
