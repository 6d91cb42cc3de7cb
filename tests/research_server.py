"""A real HTTP server on 127.0.0.1 that answers with recorded research payloads (tests only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PAYLOADS = Path(__file__).parent / "payloads" / "research"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[Request], Reply]


def payload(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A recorded payload file as the reply."""
    kind = "application/json" if name.endswith(".json") else "application/atom+xml"
    return Reply(status, (PAYLOADS / name).read_bytes(), {"Content-Type": kind, **(headers or {})})


def json_reply(data: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


class FakeApis:
    """Routes by path; every request is recorded. `hang()` and `fail()` make a path misbehave."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.url = ""
        self._stop = threading.Event()

    def route(self, path: str, handler: Route | Reply) -> None:
        self.routes[path] = handler if callable(handler) else (lambda _req, r=handler: r)

    def hang(self, path: str) -> None:
        """Never answer (until the server stops)."""
        self.routes[path] = lambda _req: Reply(200, b"{}", delay=3600)

    def fail(self, path: str, status: int = 500) -> None:
        """Answer `status` forever."""
        self.route(path, json_reply({"message": "Internal Server Error"}, status))

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        req = Request(handler.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                      {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length))
        self.requests.append(req)
        route = self.routes.get(parts.path)
        reply = route(req) if route else json_reply({"message": "Not Found"}, 404)
        if reply.delay:
            self._stop.wait(reply.delay)
            return
        handler.send_response(reply.status)
        for key, value in reply.headers.items():
            handler.send_header(key, value.replace("{base}", self.url))
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)

    @contextmanager
    def serving(self) -> Iterator[FakeApis]:
        apis = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the stdlib's naming
                apis._handle(self)

            do_POST = do_GET

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            server.shutdown()
            server.server_close()
            time.sleep(0)  # let hanging handlers see the stop event


RECORD = "records/track_10min_16mb/2025-02-27_Int6_QAT_MLP3x"
PULLS = "/github/repos/openai/parameter-golf/pulls"


def _by(param: str, pages: dict[str, str], default: str) -> Route:
    return lambda req: payload(pages.get(req.query.get(param, ""), default))


def install_recorded_routes(apis: FakeApis) -> None:
    """Every source's recorded payloads at the paths `pointed_config` names."""
    apis.route("/arxiv/api/query", _by("start", {"2": "arxiv_page2.xml"}, "arxiv_page1.xml"))
    apis.route("/openreview/notes", _by("offset", {"2": "openreview_notes_p2.json"}, "openreview_notes_p1.json"))
    apis.route("/s2/graph/v1/paper/search", _by("offset", {"2": "s2_search_p2.json"}, "s2_search_p1.json"))
    next_link = {"Link": f'<{{base}}{PULLS}?state=all&sort=updated&direction=desc&per_page=2&page=2>; rel="next", '
                         f'<{{base}}{PULLS}?page=9>; rel="last"'}
    apis.route(PULLS, lambda req: payload("github_pulls_p2.json") if req.query.get("page") == "2"
               else payload("github_pulls_p1.json", headers=next_link))
    apis.route(f"{PULLS}/101/files", payload("github_pr101_files.json"))
    for n in (102, 95):
        apis.route(f"{PULLS}/{n}/files", json_reply([]))
    contents = "/github/repos/openai/parameter-golf/contents"
    apis.route(f"{contents}/{RECORD}/README.md", payload("github_contents_readme.json"))
    apis.route(f"{contents}/{RECORD}/submission.json", payload("github_contents_submission.json"))
    apis.route("/github/search/code", _by("page", {"2": "github_code_p2.json"}, "github_code_p1.json"))
    apis.route("/feeds/rss.xml", payload("feed_rss.xml"))
    apis.route("/feeds/atom.xml", payload("feed_atom.xml"))
    apis.route("/tavily/search", payload("tavily_search.json"))


@contextmanager
def recorded_apis() -> Iterator[FakeApis]:
    """A started fake server answering every source's recorded payloads."""
    fake = FakeApis()
    with fake.serving():
        install_recorded_routes(fake)
        yield fake


def pointed_config(url: str, **research: object) -> dict:
    """A `[research]` table whose sources all talk to the fake server, one query each, no politeness delays."""
    fast = {"min_interval_seconds": 0.0, "timeout_seconds": 5.0}
    return {
        "retry_base_seconds": 0.01, "retry_max_seconds": 0.05, "max_retries": 2, "request_timeout_seconds": 5.0,
        **research,
        "sources": {
            "arxiv": {**fast, "base_url": f"{url}/arxiv/api/query", "queries": ["language model quantization"],
                      "page_size": 2},
            "openreview": {**fast, "base_url": f"{url}/openreview", "venues": ["ICLR.cc/2025/Conference"],
                           "keywords": ["quantization", "compression"], "page_size": 2},
            "semantic_scholar": {**fast, "base_url": f"{url}/s2/graph/v1", "queries": ["quantization"],
                                 "page_size": 2},
            "github_prs": {**fast, "base_url": f"{url}/github", "repos": ["openai/parameter-golf"], "page_size": 2},
            "github_code": {**fast, "base_url": f"{url}/github", "queries": ["int6"], "page_size": 2},
            "feeds": {**fast, "urls": [f"{url}/feeds/rss.xml", f"{url}/feeds/atom.xml"]},
            "tavily": {**fast, "base_url": f"{url}/tavily", "queries": ["parameter golf"]},
        },
    }


def research_toml(research: dict) -> str:
    """A `[research]` table and its source sub-tables as TOML text."""
    lines = ["[research]"] + [f"{k} = {json.dumps(v)}" for k, v in research.items() if k != "sources"]
    for name, table in research.get("sources", {}).items():
        lines += [f"[research.sources.{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_workspace(root: Path, research: dict):
    """A workspace folder whose pgolf.toml holds this `[research]` table (and defaults elsewhere)."""
    from pgolf.workspace import Workspace

    (root / "pgolf.toml").write_text(research_toml(research))
    return Workspace(root)
