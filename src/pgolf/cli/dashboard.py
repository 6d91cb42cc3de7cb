"""`pgolf dashboard` (a local read-only web page that refreshes live) and `pgolf report` (one HTML file)."""

from __future__ import annotations

import errno
import importlib.util
import socket
from pathlib import Path
from typing import Annotated

import typer

from pgolf.cli._common import current_workspace, fmt_bytes, say
from pgolf.dashboard import LOCAL_HOSTS
from pgolf.errors import ConfigError, PgolfError

SERVER_PACKAGES = ("starlette", "uvicorn", "jinja2", "plotly")
REPORT_PACKAGES = ("jinja2", "plotly")


def _require(packages: tuple[str, ...], what: str) -> None:
    """One clear line when the `dashboard` extra is not installed."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise PgolfError(f"{what} needs {', '.join(missing)}: install them with "
                         f"`pip install 'pgolf[dashboard]'`")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one line saying why not (port taken, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        reason = "is already in use; pick another with --port" if err.errno == errno.EADDRINUSE else err.strerror
        raise PgolfError(f"{host}:{port} {reason}") from None
    sock.listen(128)
    return sock


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but this machine needs "
                                           "--allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8765,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --host other than this machine. The dashboard has no login: "
                               "anyone who reaches it can read the ledger, diffs and logs.")] = False,
    refresh: Annotated[float, typer.Option(min=1.0, help="Seconds between the page's checks for "
                                                         "changes.")] = 5.0,
) -> None:
    """Serve a read-only dashboard of the workspace: runs, charts, money, research, competitors.

    Pages reload by themselves when results.tsv, budget.json, the research database or a run folder changes.
    Nothing in the workspace is ever written. Stop it with Ctrl-C.
    """
    is_local = host in LOCAL_HOSTS
    if not is_local and not allow_remote:
        raise ConfigError(f"--host {host} would expose the dashboard beyond this machine; "
                          "add --allow-remote if you mean it")
    _require(SERVER_PACKAGES, "pgolf dashboard")
    import uvicorn

    from pgolf.dashboard.app import create_app

    ws = current_workspace()
    ws.config()  # a broken pgolf.toml is reported now, not as a banner nobody reads
    app = create_app(ws, refresh_seconds=refresh, allowed_hosts=LOCAL_HOSTS if is_local else None)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    if not is_local:
        say(f"[yellow]warning:[/] listening on {{}}:{bound_port}, reachable from other "
            "machines; the dashboard has no login and shows diffs, logs and spend", host, err=True)
    shown = f"[{host}]" if ":" in host else host
    say(f"dashboard of {{}} at [bold]http://{{}}:{bound_port}/[/]  (Ctrl-C to stop)", ws.root, shown)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML file.")] = Path("report.html"),
) -> None:
    """Write the dashboard as one self-contained HTML file (charts included) that opens offline."""
    _require(REPORT_PACKAGES, "pgolf report")
    from pgolf.dashboard.report import write_report

    ws = current_workspace()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give a file name such as {out / 'report.html'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    path = write_report(ws, out)
    say(f"wrote {{}} ({fmt_bytes(path.stat().st_size)} bytes; opens offline in any browser)", path)
