"""Fetch every research source at once: one shared HTTP client, a polite per-source client with retries,
a timeout per source, the relevance floor, the store, and a report of what each source did.

A source that fails, hangs or lacks its key never blocks the others; its outcome says why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx

from pgolf import __version__
from pgolf.config import RelevanceFloor, ResearchConfig, secret
from pgolf.errors import ConfigError
from pgolf.research.items import ResearchItem, authority_tier
from pgolf.research.sources import SOURCES
from pgolf.research.sources.base import (
    HTTPStatusError,
    NeedsAccount,
    SourceContext,
    SourceError,
    SourceSpec,
    Unreachable,
    endpoint,
    json_body,
    parse_time,
)
from pgolf.research.store import ResearchStore

USER_AGENT = f"pgolf/{__version__} (research pipeline for the Parameter Golf challenge)"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

Status = Literal["ok", "failed", "skipped", "disabled"]


def parse_duration(text: str) -> timedelta:
    """A window such as "90m", "48h", "7d" or "2w"."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ConfigError(f"bad duration {text!r}: use a number and m, h, d or w, e.g. 48h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


class PoliteClient:
    """One source's view of the shared client: a minimum interval between its requests, and retries
    with exponential backoff on 429, 5xx, timeouts and broken exchanges that honour `Retry-After`.

    A connection that cannot be made at all (the name does not resolve, no route, nothing listening,
    a failed TLS handshake) is not retried: it fails in milliseconds and the same way seconds later, and
    backing off 2 + 4 + 8 s for it is what made an offline fetch take 17 s. It raises `Unreachable`."""

    def __init__(self, client: httpx.AsyncClient, *, max_retries: int = 3, base_delay: float = 2.0,
                 max_delay: float = 60.0, min_interval: float = 0.0, request_timeout: float = 30.0,
                 headers: dict[str, str] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._client = client
        self._max_retries = max_retries
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._min_interval = min_interval
        self._timeout = request_timeout
        self._headers = headers or {}
        self._sleep = sleep
        self._turn = asyncio.Lock()
        self._last_start = -float("inf")
        self.requests = 0

    async def _wait_turn(self) -> None:
        async with self._turn:
            wait = self._last_start + self._min_interval - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
            self._last_start = time.monotonic()

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if not value:
            return None
        if value.strip().isdigit():
            return float(value)
        when = parse_time(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when else None

    async def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """The response to a request, after retries; SourceError when it cannot succeed."""
        where = endpoint(url)
        problem = ""
        for attempt in range(self._max_retries + 1):
            await self._wait_turn()
            self.requests += 1
            delay = self._base_delay * 2 ** attempt
            try:
                response = await self._client.request(
                    method, url, params=params, json=body, headers={**self._headers, **(headers or {})},
                    timeout=self._timeout)
            except httpx.TimeoutException:
                problem = f"timed out after {self._timeout:g} s at {where}"
            except httpx.ConnectError as err:
                raise Unreachable(_connect_problem(err, url)) from None
            except httpx.TransportError as err:
                problem = f"cannot reach {where}: {_one_line(err) or type(err).__name__}"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code} from {where}"
                    asked = self._retry_after(response)
                    delay = delay if asked is None else asked  # "Retry-After: 0" means now
                elif response.status_code >= 400:
                    name, message = _api_error(response)
                    raise HTTPStatusError(f"HTTP {response.status_code} from {where}{message}",
                                          response.status_code, name)
                else:
                    return response
            if attempt < self._max_retries:
                await self._sleep(min(delay, self._max_delay))
        tries = self._max_retries + 1
        raise SourceError(f"{problem} ({tries} tr{'y' if tries == 1 else 'ies'})")

    async def get_json(self, url: str, *, params: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> Any:
        """A GET whose body must be JSON."""
        return json_body(await self.request("GET", url, params=params, headers=headers))

    async def post_json(self, url: str, *, body: Any, headers: dict[str, str] | None = None) -> Any:
        """A POST of a JSON body whose answer must be JSON."""
        return json_body(await self.request("POST", url, body=body, headers=headers))

    async def get_text(self, url: str, *, params: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> str:
        """A GET's body as text."""
        return (await self.request("GET", url, params=params, headers=headers)).text


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


def _connect_problem(err: httpx.ConnectError, url: str) -> str:
    """One line for a connection that could not be made: a name that does not resolve is said so, else
    the system's reason (e.g. "Connection refused", "Network is unreachable")."""
    host = httpx.URL(url).host
    reason = _one_line(err) or type(err).__name__
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve {host} (offline, or no DNS): {_one_line(cause)}"
        if isinstance(cause, OSError) and cause.errno:
            reason = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect to {endpoint(url)}: {reason}"


def _api_error(response: httpx.Response) -> tuple[str, str]:
    """The API's error name (e.g. OpenReview's "ChallengeRequiredError") and its short message, as
    ": message" (both empty when the body has none)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    name = body.get("name")
    message = body.get("message") or body.get("error")
    return (str(name) if isinstance(name, str) else "",
            f": {_one_line(str(message))[:160]}" if message else "")


@dataclass
class SourceOutcome:
    """What one source did in one fetch."""

    source: str
    status: Status
    fetched: int = 0
    below_floor: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    requests: int = 0
    seconds: float = 0.0
    detail: str = ""
    failed_queries: list[str] = field(default_factory=list)  # delivered nothing; the others' items are kept

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


@dataclass
class FetchReport:
    """Every source's outcome; `exit_code` is 0 when at least one source delivered, else 2."""

    outcomes: list[SourceOutcome]

    @property
    def exit_code(self) -> int:
        return 0 if any(o.status == "ok" for o in self.outcomes) else 2

    def summary(self) -> str:
        """One line: how many sources delivered, items and new items, and which failed."""
        ok = [o for o in self.outcomes if o.status == "ok"]
        failed = [o.source for o in self.outcomes if o.status == "failed"]
        line = (f"{len(ok)} of {len(self.outcomes)} sources delivered: {sum(o.fetched for o in ok)} items, "
                f"{sum(o.new for o in ok)} new")
        if failed:
            line += f"; failed: {', '.join(failed)}"
        skipped = [o.source for o in self.outcomes if o.status in ("skipped", "disabled")]
        if skipped:
            line += f"; not run: {', '.join(skipped)}"
        return line


def select_sources(names: Iterable[str] | None = None, *, fast_only: bool = False) -> list[SourceSpec]:
    """The registered sources named (all when None), or the fast-pass ones; unknown names are an error."""
    if names is None:
        return [s for s in SOURCES.values() if s.fast or not fast_only]
    wanted = [n.strip() for n in names if n.strip()]
    unknown = [n for n in wanted if n not in SOURCES]
    if unknown:
        raise ConfigError(f"unknown research source {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    return [SOURCES[n] for n in dict.fromkeys(wanted)]


def passes_floor(item: ResearchItem, floor: RelevanceFloor) -> bool:
    """True unless the source scored the item below the floor of its authority band."""
    if item.score is None:
        return True
    least = {1: floor.high, 2: floor.medium, 3: floor.low}[authority_tier(item.authority)]
    return item.score >= least


async def _run_one(spec: SourceSpec, config: ResearchConfig, store: ResearchStore, client: httpx.AsyncClient,
                   since: timedelta | None, now: datetime, workspace_root: Path | None) -> SourceOutcome:
    settings = getattr(config.sources, spec.name)
    if not settings.enabled:
        return SourceOutcome(spec.name, "disabled", detail=f"[research.sources.{spec.name}] enabled = false")
    key = secret(spec.key_env, workspace_root) if spec.key_env else None
    if spec.key_required and not key:
        return SourceOutcome(spec.name, "skipped", detail=f"{spec.key_env} not set")
    login: tuple[str, str] | None = None
    if spec.login_env:
        user, password = (secret(name, workspace_root) for name in spec.login_env)
        if bool(user) != bool(password):
            missing = spec.login_env[1] if user else spec.login_env[0]
            return SourceOutcome(spec.name, "skipped",
                                 detail=f"{missing} not set (both of {' and '.join(spec.login_env)} are needed)")
        login = (user, password) if user and password else None
    window = since if since is not None else parse_duration(settings.since or config.since)
    http = PoliteClient(client, max_retries=config.max_retries, base_delay=config.retry_base_seconds,
                        max_delay=config.retry_max_seconds, min_interval=settings.min_interval_seconds,
                        request_timeout=min(config.request_timeout_seconds, settings.timeout_seconds))
    ctx = SourceContext(http=http, since=now - window, now=now, key=key, login=login)
    started = time.monotonic()
    outcome = SourceOutcome(spec.name, "failed")
    try:
        items = await asyncio.wait_for(spec.fetch(ctx, settings), settings.timeout_seconds)
    except TimeoutError:
        outcome.detail = f"no answer within its {settings.timeout_seconds:g} s timeout"
    except NeedsAccount as err:
        outcome.status, outcome.detail = "skipped", str(err)
    except SourceError as err:
        outcome.detail = str(err)
    except Exception as err:  # noqa: BLE001 — a third party's odd payload must not take the others down
        outcome.detail = f"unexpected {type(err).__name__}: {_one_line(err)}"
    else:
        kept = [i for i in items[: settings.max_items] if passes_floor(i, config.relevance_floor)]
        report = await asyncio.to_thread(store.upsert, kept)
        outcome.status = "ok"
        outcome.fetched = len(items)
        outcome.below_floor = len(items[: settings.max_items]) - len(kept)
        outcome.new, outcome.updated, outcome.duplicates = report.new, report.updated, report.duplicates
        outcome.detail = "; ".join(ctx.warnings)
    outcome.requests = http.requests
    outcome.failed_queries = list(ctx.failed_queries)
    outcome.seconds = round(time.monotonic() - started, 2)
    return outcome


async def fetch_sources(config: ResearchConfig, store: ResearchStore, *, names: Iterable[str] | None = None,
                        fast_only: bool = False, since: timedelta | None = None,
                        workspace_root: Path | None = None, now: datetime | None = None,
                        transport: httpx.AsyncBaseTransport | None = None,
                        on_outcome: Callable[[SourceOutcome], None] | None = None) -> FetchReport:
    """Fetch the chosen sources concurrently into the store; `since` overrides every source's window."""
    specs = select_sources(names, fast_only=fast_only)
    moment = now or datetime.now(UTC)
    async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=True,
                                 transport=transport) as client:

        async def one(spec: SourceSpec) -> SourceOutcome:
            outcome = await _run_one(spec, config, store, client, since, moment, workspace_root)
            if on_outcome:
                on_outcome(outcome)
            return outcome

        outcomes = await asyncio.gather(*(one(s) for s in specs))
    return FetchReport(list(outcomes))


def run_fetch(config: ResearchConfig, store: ResearchStore, **options: Any) -> FetchReport:
    """`fetch_sources` from synchronous code (the CLI, the scheduler)."""
    return asyncio.run(fetch_sources(config, store, **options))
