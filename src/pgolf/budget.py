"""The money: paid runs reserve before they start and settle after; LLM spend has its own cap.

State lives in `.pgolf/budget.json`, rewritten atomically (temp file + rename) under an exclusive lock,
so two processes can never both spend the last dollars. Limits come from pgolf.toml's [budget].
"""

from __future__ import annotations

import fcntl
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.config import BudgetConfig
from pgolf.errors import BudgetRefused
from pgolf.statefile import INTEGER, NUMBER, OBJECT, STRING

EntryKind = Literal["run", "llm"]
EntryState = Literal["reserved", "settled", "released"]
KINDS = ("run", "llm")
STATES = ("reserved", "settled", "released")

# budget.json entries: name -> (kind, required, nullable). Nothing else may be in an entry.
_ENTRY_FIELDS = {
    "id": (STRING, True, False), "kind": (STRING, True, False), "state": (STRING, True, False),
    "estimated_usd": (NUMBER, True, False), "actual_usd": (NUMBER, True, True),
    "created_at": (NUMBER, True, False), "settled_at": (NUMBER, False, True), "gpus": (INTEGER, False, False),
    "seconds": (NUMBER, False, True), "description": (STRING, False, False), "run_id": (STRING, False, False),
    "extra": (OBJECT, False, False),
}
_MAX_GPUS = 1024
_FUTURE_SLACK_S = 86_400.0  # clocks differ; a day ahead is damage, not skew
_ORDER_SLACK_S = 3_600.0  # settled a little "before" it was created: a clock step, not damage
_REFUSE = "refusing to spend until it is repaired"


@dataclass
class BudgetEntry:
    """One paid run (reserved, then settled or released) or one LLM call (settled at once)."""

    id: str
    kind: EntryKind
    state: EntryState
    estimated_usd: float
    actual_usd: float | None
    created_at: float
    settled_at: float | None = None
    gpus: int = 0
    seconds: float | None = None
    description: str = ""
    run_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Whether something may be spent, and why (or why not)."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class BudgetStatus:
    """A snapshot of the money."""

    total_usd: float
    spent_usd: float
    reserved_usd: float
    available_usd: float
    reserve_usd: float
    llm_spent_usd: float
    llm_cap_usd: float
    last_paid_start: float | None
    next_paid_allowed_at: float | None
    warning: str | None

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


def run_cost(seconds: float, gpus: int, price_per_gpu_hour: float) -> float:
    """Dollars for `gpus` GPUs held `seconds` seconds at `price_per_gpu_hour` each."""
    return max(seconds, 0.0) / 3600.0 * gpus * price_per_gpu_hour


class BudgetManager:
    """Reserve, settle and query the workspace's money; every write holds the lock."""

    def __init__(
        self, path: Path, settings: BudgetConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.clock = clock
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    # -- storage -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[list[BudgetEntry]]:
        """Hold the lock, yield the entries; whatever the caller changed is written back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = self._read()
                before = [asdict(e) for e in entries]
                yield entries
                if [asdict(e) for e in entries] != before:
                    self._write(entries)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> list[BudgetEntry]:
        """Every entry, each validated; any damage refuses (a NaN or negative cost would open the gates)."""
        try:
            data = statefile.load_json(self.path, error=BudgetRefused, missing={}, finite=False, want=dict)
            entries = statefile.records(self.path, "entries", self._entry, error=BudgetRefused,
                                        describe=lambda e: str(e.get("id", "")), data=data)
            statefile.check_tree(data, str(self.path), error=BudgetRefused)  # NaN anywhere else in the file
        except BudgetRefused as err:
            raise BudgetRefused(f"damaged budget file {err}; {_REFUSE}") from None
        return entries

    def _entry(self, raw: Any, where: str) -> BudgetEntry:
        e = statefile.check_fields(raw, _ENTRY_FIELDS, where, error=BudgetRefused, allow_unknown=False)
        statefile.check_tree(e, where, error=BudgetRefused)  # a NaN inside extra, too

        def bad(problem: str) -> BudgetRefused:
            return BudgetRefused(f"{where}: {problem}")

        if e["kind"] not in KINDS:
            raise bad(f"kind {e['kind']!r} is not one of {', '.join(KINDS)}")
        if e["state"] not in STATES:
            raise bad(f"state {e['state']!r} is not one of {', '.join(STATES)}")
        for name in ("estimated_usd", "actual_usd", "seconds"):
            if e.get(name) is not None and e[name] < 0:
                raise bad(f"{name} {e[name]!r} is negative")
        if e["state"] == "settled" and e["actual_usd"] is None:
            raise bad("settled but has no actual_usd")
        if e["kind"] == "llm" and e["state"] != "settled":
            raise bad(f"an LLM charge is always settled, not {e['state']}")
        if not 0 <= e.get("gpus", 0) <= _MAX_GPUS:
            raise bad(f"gpus {e['gpus']!r} is not between 0 and {_MAX_GPUS}")
        now = self.clock()
        for name in ("created_at", "settled_at"):
            value = e.get(name)
            if value is None:
                continue
            if value <= 0:
                raise bad(f"{name} {value!r} is not a time")
            if value > now + _FUTURE_SLACK_S:
                raise bad(f"{name} {value!r} is in the future")
        if e.get("settled_at") is not None and e["settled_at"] < e["created_at"] - _ORDER_SLACK_S:
            raise bad("settled_at is before created_at")
        return BudgetEntry(**e)

    def _write(self, entries: list[BudgetEntry]) -> None:
        payload = {"version": 1, "entries": [asdict(e) for e in entries]}
        # allow_nan=False: a NaN must never reach the file (every later read would refuse).
        atomic_write_text(self.path, json.dumps(payload, indent=1, allow_nan=False) + "\n")

    def history(self) -> list[BudgetEntry]:
        """Every entry, oldest first."""
        with self._locked() as entries:
            return list(entries)

    def peek(self) -> tuple[list[BudgetEntry], BudgetStatus]:
        """Entries and status read without the lock, creating no file: for read-only viewers."""
        entries = self._read()  # writes are temp file + rename, so this never sees half a file
        return entries, self._status(entries)

    # -- arithmetic ------------------------------------------------------------------------------

    def cost(self, seconds: float, gpus: int, price_per_gpu_hour: float | None = None) -> float:
        """Cost of a run at the configured (or given) price per GPU-hour."""
        price = self.settings.price_per_gpu_hour if price_per_gpu_hour is None else price_per_gpu_hour
        return run_cost(seconds, gpus, price)

    def _status(self, entries: list[BudgetEntry]) -> BudgetStatus:
        runs = [e for e in entries if e.kind == "run"]
        spent = sum(e.actual_usd or 0.0 for e in runs if e.state == "settled")
        reserved = sum(e.estimated_usd for e in runs if e.state == "reserved")
        llm = sum(e.actual_usd or 0.0 for e in entries if e.kind == "llm")
        s = self.settings
        available = s.total_usd - spent - reserved
        starts = [e.created_at for e in runs if e.state != "released"]
        last = max(starts) if starts else None
        next_allowed = last + s.min_seconds_between_paid_runs if last is not None else None
        warning = None
        if s.reserve_usd > 0 and available < 2 * s.reserve_usd:
            warning = f"available ${available:.2f} is below twice the reserve (${s.reserve_usd:.2f})"
        return BudgetStatus(
            total_usd=s.total_usd, spent_usd=spent, reserved_usd=reserved, available_usd=available,
            reserve_usd=s.reserve_usd, llm_spent_usd=llm, llm_cap_usd=s.llm_cap_usd,
            last_paid_start=last, next_paid_allowed_at=next_allowed, warning=warning,
        )

    def status(self) -> BudgetStatus:
        """The current totals, reservations and rate-limit state."""
        with self._locked() as entries:
            return self._status(entries)

    def _verdict(self, entries: list[BudgetEntry], estimated_usd: float) -> Verdict:
        if not _usable(estimated_usd):
            # NaN compares false with everything: it would pass `left < reserve` below.
            return Verdict(False, f"estimated cost {estimated_usd!r} is not a finite, non-negative amount")
        st = self._status(entries)
        now = self.clock()
        if st.next_paid_allowed_at is not None and now < st.next_paid_allowed_at:
            wait = st.next_paid_allowed_at - now
            return Verdict(False, f"rate limit: one paid run per {self.settings.min_seconds_between_paid_runs:.0f} s; "
                                  f"the next may start in {wait / 60:.1f} min")
        left = st.available_usd - estimated_usd
        if left < st.reserve_usd:
            return Verdict(False, f"reserve: ${estimated_usd:.2f} would leave ${left:.2f} of "
                                  f"${st.total_usd:.2f}, below the ${st.reserve_usd:.2f} reserve")
        return Verdict(True, f"ok: ${estimated_usd:.2f} leaves ${left:.2f} "
                             f"(reserve ${st.reserve_usd:.2f})")

    def can_submit(self, estimated_usd: float) -> Verdict:
        """Whether a paid run of this estimated cost may start now, and why."""
        with self._locked() as entries:
            return self._verdict(entries, estimated_usd)

    # -- paid runs -------------------------------------------------------------------------------

    def reserve(self, estimated_usd: float, *, gpus: int, description: str = "", run_id: str = "") -> str:
        """Hold `estimated_usd` for a paid run starting now; raises BudgetRefused with the reason."""
        with self._locked() as entries:
            verdict = self._verdict(entries, estimated_usd)
            if not verdict.ok:
                raise BudgetRefused(verdict.reason)
            entry = BudgetEntry(
                id=uuid.uuid4().hex[:12], kind="run", state="reserved", estimated_usd=estimated_usd,
                actual_usd=None, created_at=self.clock(), gpus=gpus, description=description,
                run_id=run_id,
            )
            entries.append(entry)
            return entry.id

    def _find_reserved(self, entries: list[BudgetEntry], reservation_id: str) -> BudgetEntry:
        for e in entries:
            if e.id == reservation_id:
                if e.state != "reserved":
                    raise BudgetRefused(f"reservation {reservation_id} is already {e.state}")
                return e
        raise BudgetRefused(f"no reservation {reservation_id}")

    def settle(self, reservation_id: str, actual_usd: float, *, seconds: float | None = None,
               extra: dict[str, Any] | None = None) -> BudgetEntry:
        """Replace a reservation by what the run really cost."""
        with self._locked() as entries:
            entry = self._find_reserved(entries, reservation_id)
            entry.state = "settled"
            if not _usable(actual_usd):
                # An unusable measured cost is charged at the (worst-case) estimate, never stored as is.
                entry.extra["unusable_actual_usd"] = repr(actual_usd)
                actual_usd = entry.estimated_usd
            entry.actual_usd = actual_usd
            if seconds is not None and not _usable(seconds):
                seconds = None
            entry.seconds = seconds
            entry.settled_at = self.clock()
            entry.extra.update(extra or {})
            return entry

    def release(self, reservation_id: str, reason: str = "") -> None:
        """Cancel a reservation that never spent anything (e.g. the pod was never created)."""
        with self._locked() as entries:
            entry = self._find_reserved(entries, reservation_id)
            entry.state = "released"
            entry.settled_at = self.clock()
            if reason:
                entry.extra["release_reason"] = reason

    # -- LLM spend -------------------------------------------------------------------------------

    def can_spend_llm(self, estimated_usd: float = 0.0) -> Verdict:
        """Whether an LLM call of this estimated cost stays under the LLM cap."""
        if not _usable(estimated_usd):
            return Verdict(False, f"estimated LLM cost {estimated_usd!r} is not a finite, non-negative amount")
        st = self.status()
        if st.llm_spent_usd + estimated_usd > st.llm_cap_usd:
            return Verdict(False, f"LLM cap: ${st.llm_spent_usd:.4f} spent of ${st.llm_cap_usd:.2f}")
        return Verdict(True, f"ok: ${st.llm_spent_usd:.4f} of ${st.llm_cap_usd:.2f} LLM cap spent")

    def record_llm(self, cost_usd: float, *, description: str = "", input_tokens: int = 0,
                   output_tokens: int = 0) -> BudgetEntry:
        """Record one LLM call's cost (always recorded, even when it crosses the cap)."""
        if not _usable(cost_usd):
            raise BudgetRefused(f"LLM call cost {cost_usd!r} is not a finite, non-negative amount")
        with self._locked() as entries:
            entry = BudgetEntry(
                id=uuid.uuid4().hex[:12], kind="llm", state="settled", estimated_usd=cost_usd,
                actual_usd=cost_usd, created_at=self.clock(), settled_at=self.clock(),
                description=description,
                extra={"input_tokens": input_tokens, "output_tokens": output_tokens},
            )
            entries.append(entry)
            return entry


def _usable(amount: float) -> bool:
    """A finite, non-negative number of dollars (or seconds)."""
    return isinstance(amount, int | float) and not isinstance(amount, bool) and math.isfinite(amount) \
        and amount >= 0
