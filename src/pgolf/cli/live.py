"""The live display of `pgolf run`/`pgolf demo`: a line per finished run, and a status block that ticks
every second (total elapsed, experiment k/N, one line per slot, or one compact line for many slots).

It never stops the loop: when stdout goes away (`pgolf run | head -1`, a `tee` killed by Ctrl-C) it
stops printing there and keeps writing everything to `.pgolf/loop.log`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from pgolf.cli._common import console, fmt_bpb, plain
from pgolf.loop.events import ExperimentRecord
from pgolf.loop.progress import ProgressTracker
from pgolf.status import HAS_SCORE

STATUS_STYLE = {"keep": "bold green", "baseline": "cyan", "discard": "yellow", "replicate": "blue",
                "skipped": "dim", "rejected": "magenta", "aborted": "red", "crash": "bold red",
                "timeout": "red", "oversize": "red"}
_COMPACT_FROM = 5  # slots; from here on, one line for all of them


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class _Running:
    run_id: str
    kind: str
    slot: int
    started: float
    tracker: ProgressTracker
    number: int = 0  # experiment k of N


@dataclass
class LiveDisplay:
    """LoopEvents for a terminal or a pipe."""

    quiet: bool = False
    total: int | None = None  # experiments asked for (None: no limit)
    log_path: Path | None = None
    out: Console = field(default_factory=lambda: console)

    def __post_init__(self) -> None:
        self.live: Live | None = None
        self.started = time.monotonic()
        self.running: dict[str, _Running] = {}
        self.experiments: set[str] = set()
        self.broken = False
        self._lock = threading.RLock()
        self._log = None

    # -- the context -------------------------------------------------------------------------------

    def __enter__(self) -> LiveDisplay:
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - held for the loop
        if not self.quiet and self.out.is_terminal:
            self.live = Live(console=self.out, refresh_per_second=1, transient=True,
                             get_renderable=self._render, redirect_stdout=False, redirect_stderr=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.__exit__(None, None, None)
        if self._log is not None:
            self._log.close()

    # -- output that survives a closed pipe ---------------------------------------------------------

    def _to_log(self, text: str) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                self._log.flush()

    def _print(self, renderable: Any, plain: str) -> None:
        self._to_log(plain)
        if self.quiet or self.broken:
            return
        try:
            self.out.print(renderable, soft_wrap=True)
            self.out.file.flush()
        except (OSError, ValueError, SystemExit):  # Rich answers a broken pipe with SystemExit(1)
            self._stdout_gone()

    def _stdout_gone(self) -> None:
        """stdout was closed: print nothing more there (and let the interpreter's exit flush succeed)."""
        self.broken = True
        if self.live is not None:
            self.live.stop()
            self.live = None
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        self._to_log("stdout was closed; the loop goes on, writing here only")

    # -- LoopEvents --------------------------------------------------------------------------------

    def message(self, text: str) -> None:
        """A line above the live status (never read as markup)."""
        self._print(plain(text), text)  # control characters replaced too

    def run_started(self, run_id: str, kind: str, description: str, info: dict[str, Any]) -> None:
        with self._lock:
            number = 0
            if kind == "experiment":
                self.experiments.add(run_id)
                number = len(self.experiments)
            self.running[run_id] = _Running(run_id, kind, int(info.get("slot") or 0), time.monotonic(),
                                            ProgressTracker(info.get("tokens_per_step"),
                                                            info.get("wallclock_seconds")), number)
        where = f"slot {info.get('slot')}, " if info.get("slot") else ""
        label = f"experiment {self._k_of_n(number)}" if number else kind
        self.message(f"{run_id} {label} ({where}seed {info.get('seed', '-')}): {description}")

    def run_line(self, run_id: str, text: str) -> None:
        with self._lock:
            run = self.running.get(run_id)
            if run is not None:
                run.tracker.feed(text)

    def run_finished(self, record: ExperimentRecord) -> None:
        """One line per finished run: status, score, gain, and why when it is not plain."""
        with self._lock:
            self.running.pop(record.run_id, None)
            if record.kind == "experiment" and record.failure is None:  # a proposer failure ran nothing
                self.experiments.add(record.run_id)
        gain = "" if record.gain is None else f" ({record.gain:+.4f})"
        extra = f", promotion {record.promoted}" if record.promoted == "pending" else ""
        why = f" — {record.reason}" if record.reason and (record.status not in HAS_SCORE
                                                         or record.kind == "experiment") else ""
        style = STATUS_STYLE.get(record.status, "")
        line = Text("  ")
        line.append(record.status, style=style)
        line.append(f" {record.run_id} {fmt_bpb(record.val_bpb)}{gain} in {duration(record.seconds)}{extra}{why}")
        self._print(line, line.plain)

    # -- the ticking block -------------------------------------------------------------------------

    def _k_of_n(self, k: int) -> str:
        return f"{k}/{self.total}" if self.total else str(k)

    def _run_line(self, run: _Running, now: float) -> str:
        p = run.tracker.progress
        label = f"exp {self._k_of_n(run.number)}" if run.number else run.kind
        parts = [f"slot {run.slot} {run.run_id} {label} {duration(now - run.started)}"]
        if p.total_steps:
            parts.append(f"step {p.step}/{p.total_steps}")
        if p.train_loss is not None:
            parts.append(f"loss {p.train_loss:.3f}")
        if p.tokens_per_second:
            parts.append(f"{p.tokens_per_second:,.0f} tok/s")
        if p.eta_seconds is not None:
            parts.append(f"ETA {duration(p.eta_seconds)}")
        return " · ".join(parts)

    def _render(self) -> Any:
        now = time.monotonic()
        with self._lock:
            runs = sorted(self.running.values(), key=lambda r: r.slot)
            done = len(self.experiments)
        head = f"  {duration(now - self.started)} elapsed · experiment {self._k_of_n(done)} · {len(runs)} in flight"
        if len(runs) >= _COMPACT_FROM:
            cells = [f"{r.slot}:{r.tracker.progress.step}/{r.tracker.progress.total_steps or '?'}" for r in runs]
            return Text(head + "\n  slots " + " ".join(cells), style="dim")
        return Group(Text(head, style="dim"), *(Text("  " + self._run_line(r, now), style="dim") for r in runs))
