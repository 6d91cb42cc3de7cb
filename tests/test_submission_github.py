"""`pgolf check --pr N`: files fetched at the PR's head from a real GitHub-like server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from pgolf.cli.app import app
from pgolf.errors import DataError
from pgolf.submission.github import fetch_pr

SHA = "a" * 40
FOLDER = "records/track_10min_16mb/2026-05-01_Tiny"
FIXTURES = Path(__file__).parent / "fixtures" / "lut_scripts"


def _files() -> dict[str, bytes]:
    log = ("seed:1\nworld_size:8\nstep:10/10 val_loss:2.1 val_bpb:1.2 train_time:590000ms step_avg:59000ms\n"
           "Total submission size int8+zlib: 17000000 bytes\n"
           "final_int8_zlib_roundtrip_exact val_loss:2.10000000 val_bpb:1.20000000\n")
    meta = {"author": "a", "github_id": "a", "name": "Tiny", "date": "2026-05-01", "val_bpb": 1.2,
            "blurb": "b", "bytes_total": 17000000}
    return {f"{FOLDER}/README.md": b"# Tiny\n", f"{FOLDER}/submission.json": json.dumps(meta).encode(),
            f"{FOLDER}/train_gpt.py": (FIXTURES / "plus_one_leading_space.py").read_bytes(),
            f"{FOLDER}/train_seed1.log": log.encode(), "README.md": b"changed outside\n"}


class _GitHub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the handler API's name
        url = urlparse(self.path)
        query = parse_qs(url.query)
        self.seen.append((url.path, self.headers.get("Authorization")))
        if url.path == "/repos/openai/parameter-golf/pulls/7":
            body = {"head": {"sha": SHA, "repo": {"full_name": "fork/parameter-golf"}}}
            return self._send(200, json.dumps(body).encode())
        if url.path == "/repos/openai/parameter-golf/pulls/7/files":
            page = int(query.get("page", ["1"])[0])
            names = sorted(self.files)
            listing = [{"filename": n, "status": "added"} for n in names] if page == 1 else []
            return self._send(200, json.dumps(listing).encode())
        prefix = "/repos/fork/parameter-golf/contents/"
        if url.path.startswith(prefix) and query.get("ref") == [SHA]:
            name = url.path[len(prefix):]
            if name in self.files:
                return self._send(200, self.files[name], "application/octet-stream")
        return self._send(404, b'{"message": "Not Found"}')


@pytest.fixture()
def github() -> Iterator[str]:
    _GitHub.files, _GitHub.seen = _files(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_pr_reads_the_records_folder_at_the_head(github: str) -> None:
    sub = fetch_pr(7, token="tok", api_url=github)
    assert sub.name == "2026-05-01_Tiny" and sub.track == "track_10min_16mb"
    assert sorted(sub.files) == ["README.md", "submission.json", "train_gpt.py", "train_seed1.log"]
    assert sub.outside == ["README.md"]
    assert sub.where == f"openai/parameter-golf#7@{SHA[:8]}:{FOLDER}"
    assert all(auth == "Bearer tok" for _, auth in _GitHub.seen)


def test_check_pr_reports_the_findings(github: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    result = CliRunner().invoke(app, ["check", "--pr", "7", "--api-url", github, "--json"])
    assert result.exit_code == 1
    assert "secret-token" not in result.stdout
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["package_shape"]["status"] == "FAIL"  # it also edits the top-level README
    assert checks["artifact_bytes"]["status"] == "FAIL"
    assert checks["lut_audit"]["status"] == "FAIL" and "leading_space_plus_one" in checks["lut_audit"]["summary"]
    assert all(auth == "Bearer secret-token" for _, auth in _GitHub.seen)


def test_unknown_pr_is_one_clear_error(github: str) -> None:
    with pytest.raises(DataError, match="not found"):
        fetch_pr(8, api_url=github)
