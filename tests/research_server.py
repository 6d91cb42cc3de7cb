"""A real HTTP server on 127.0.0.1 that answers with recorded research payloads (tests only)."""

from __future__ import annotations

import json
import re
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
        self.prefix_routes: dict[str, Route] = {}  # answer every path under a prefix (exact routes first)
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
        route = self.routes.get(parts.path) or next(
            (r for prefix, r in self.prefix_routes.items() if parts.path.startswith(prefix)), None)
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


# --- real recorded responses (../shared/data/real-payloads, see its README.md) --------------------------

REAL_ARXIV = {"testing": {"0": "2026-testing-start0.xml", "10": "2026-testing-start10.xml"},
              "del_maestro": {"0": "2016-au_del_maestro.xml"}}
REAL_S2 = {"turing": {"0": "2023-search-turing-offset0.json", "100": "2023-search-turing-offset100.json"}}
REAL_PULLS = {"PyGithub/PyGithub": "2012-pulls-PyGithub-closed.json", "rsn491/PyGithub": "2020-pulls-rsn491-PyGithub.json"}
REAL_FEEDS = ("lilianweng-index.xml", "colah-rss.xml", "jordangong-atom.xml")
REAL_TAVILY = {"transformer architectures": "search-transformer-architectures.json",
               "attention mechanisms": "search-attention-mechanisms.json",
               "What is Pydantic AI?": "search-what-is-pydantic-ai.json"}
REAL_VENUE = "NeurIPS.cc/2025/Workshop/RegML"
_PHRASE = re.compile(r'all:"([^"]*)"')


def file_reply(path: Path, headers: dict[str, str] | None = None) -> Reply:
    """A file's bytes as the reply, typed by its suffix."""
    kind = "application/json" if path.suffix == ".json" else "application/xml"
    return Reply(200, path.read_bytes(), {"Content-Type": kind, **(headers or {})})


def install_real_routes(apis: FakeApis, root: Path) -> None:
    """Every real recording at the paths `real_config` names, routed as the payloads' README suggests:
    pages past the recorded ones get the real empty answer; anything unrecorded is a 404."""

    def arxiv(req: Request) -> Reply:
        phrase = _PHRASE.search(req.query.get("search_query", ""))
        pages = REAL_ARXIV.get(phrase.group(1)) if phrase else None
        if pages is None:
            return json_reply({"message": "Not Found"}, 404)
        return file_reply(root / "arxiv" / pages.get(req.query.get("start", "0"), "2026-no-results.xml"))

    def s2(req: Request) -> Reply:
        pages = REAL_S2.get(req.query.get("query", ""), {})
        return file_reply(root / "semantic_scholar" / pages.get(req.query.get("offset", "0"),
                                                               "2023-search-no-results.json"))

    def notes(req: Request) -> Reply:
        if req.query.get("content.venueid") != REAL_VENUE:
            return json_reply({"message": "Not Found"}, 404)
        return file_reply(root / "openreview" / "2025-notes-search-regml.json")

    def code(req: Request) -> Reply:
        if req.query.get("q") != "toto user:jacquev6":
            return json_reply({"message": "Not Found"}, 404)
        # The same search was recorded with and without the text-match media type.
        text_match = "text-match" in req.headers.get("accept", "")
        return file_reply(root / "github_code" / ("2018-search-code-text-match.json" if text_match
                                                  else "2014-search-code.json"))

    def tavily(req: Request) -> Reply:
        name = REAL_TAVILY.get(json.loads(req.body or b"{}").get("query", ""))
        return file_reply(root / "tavily" / name) if name else json_reply({"detail": "Not Found"}, 404)

    def github(req: Request) -> Reply:
        parts = req.path.removeprefix("/github/repos/").split("/")
        if len(parts) == 3 and parts[2] == "pulls" and "/".join(parts[:2]) in REAL_PULLS:
            return file_reply(root / "github_prs" / REAL_PULLS["/".join(parts[:2])])
        if len(parts) == 5 and parts[2] == "pulls" and parts[4] == "files":
            return file_reply(root / "github_prs" / "2012-pull31-files.json")  # answers every PR's /files
        return json_reply({"message": "Not Found"}, 404)

    apis.route("/arxiv/api/query", arxiv)
    apis.route("/s2/graph/v1/paper/search", s2)
    apis.route("/openreview/notes", notes)
    apis.route("/github/search/code", code)
    apis.route("/tavily/search", tavily)
    apis.prefix_routes["/github/repos/"] = github
    for name in REAL_FEEDS:
        apis.route(f"/feeds/{name}", file_reply(root / "feeds" / name))


def real_config(url: str, **research: object) -> dict:
    """A `[research]` table whose sources ask exactly what was recorded, paged as recorded."""
    fast = {"min_interval_seconds": 0.0, "timeout_seconds": 20.0, "max_items": 1000}
    return {
        "retry_base_seconds": 0.01, "retry_max_seconds": 0.05, "max_retries": 1, "request_timeout_seconds": 5.0,
        **research,
        "sources": {
            "arxiv": {**fast, "base_url": f"{url}/arxiv/api/query", "queries": ["testing", "del_maestro"],
                      "categories": [], "page_size": 10},
            "openreview": {**fast, "base_url": f"{url}/openreview", "venues": [REAL_VENUE],
                           "keywords": ["emergency response"]},
            "semantic_scholar": {**fast, "base_url": f"{url}/s2/graph/v1", "queries": ["turing"], "page_size": 100},
            "github_prs": {**fast, "base_url": f"{url}/github", "repos": list(REAL_PULLS),
                           "records_repo": "PyGithub/PyGithub"},
            "github_code": {**fast, "base_url": f"{url}/github", "queries": ["toto user:jacquev6"]},
            "feeds": {**fast, "urls": [f"{url}/feeds/{name}" for name in REAL_FEEDS]},
            "tavily": {**fast, "base_url": f"{url}/tavily", "queries": list(REAL_TAVILY)},
        },
    }
