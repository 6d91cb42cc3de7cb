"""The read-only web dashboard: a small Starlette app over one workspace's files.

Every request gathers a fresh snapshot (`data.gather`), so pages always show what the files say; the
browser polls `/api/state` and reloads when the workspace's fingerprint changes. Endpoints are plain
functions, so Starlette runs their file reads in its thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from plotly.offline import get_plotlyjs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pgolf.dashboard import LOCAL_HOSTS
from pgolf.dashboard.data import fingerprint, gather, loop_state, run_detail, run_file
from pgolf.dashboard.render import APP_LINKS, PAGES, page_context, render
from pgolf.workspace import Workspace

DEFAULT_REFRESH_SECONDS = 5.0


@cache
def _plotly_js() -> bytes:
    return get_plotlyjs().encode("utf-8")


def create_app(ws: Workspace, *, refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
               allowed_hosts: tuple[str, ...] | None = LOCAL_HOSTS) -> Starlette:
    """The dashboard of `ws`; `allowed_hosts=None` accepts any Host header (for --allow-remote)."""
    live = {"refresh_seconds": f"{refresh_seconds:g}"}

    def _page_endpoint(active: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return HTMLResponse(render("page.html", active=active, live=live, inline_assets=None,
                                       **page_context(gather(ws), APP_LINKS)))
        return endpoint

    def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        data = gather(ws)
        detail = run_detail(ws, run_id, data.rows)
        context = page_context(data, APP_LINKS)
        if detail is None:
            return HTMLResponse(render("not_found.html", active="", live=None, inline_assets=None,
                                       message=f"no run {run_id!r} in the ledger or in .pgolf/runs/",
                                       **context), status_code=404)
        return HTMLResponse(render("run.html", active="", live=live, inline_assets=None, run=detail,
                                   **context))

    def run_raw_file(request: Request) -> Response:
        path = run_file(ws, request.path_params["run_id"], request.path_params["name"])
        if path is None:
            return PlainTextResponse("not found", status_code=404)
        media = "application/json" if path.suffix == ".json" else "text/plain; charset=utf-8"
        return FileResponse(path, media_type=media)

    def state(request: Request) -> Response:
        # Polled by every open page: only what tells a change, not the whole snapshot.
        return JSONResponse({"fingerprint": fingerprint(ws), "runs": len(ws.ledger().rows()),
                             "loop_running": loop_state(ws).running})

    def full_data(request: Request) -> Response:
        return JSONResponse(gather(ws).as_dict())

    def plotly_js(request: Request) -> Response:
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    routes = [
        *(Route(APP_LINKS.pages[name], _page_endpoint(name)) for name in PAGES),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/files/{name}", run_raw_file),
        Route("/api/state", state),
        Route("/api/data", full_data),
        Route("/assets/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(routes=routes, middleware=middleware)
