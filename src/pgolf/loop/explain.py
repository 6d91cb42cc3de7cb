"""Why a run ended as it did, read back from its folder: the numbers of decision.json, in one shape.

decision.json is written by the loop's recording step; its shape has grown (gain and threshold, then the
judge's verdict: n, means, σ, test, p-value, bar). `Explanation` reads every shape into one set of
fields, so `pgolf show`, `pgolf ledger` and `pgolf status` say the same thing the same way, and a positive
gain is never shown as a discard without the bar it missed.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgolf.status import Status

if TYPE_CHECKING:
    from pgolf.workspace import RunFolder

_MAX_BYTES = 1 << 20  # a decision is a few hundred bytes; anything larger is not one


def load_json_object(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A small JSON object file: (data, "") or (None, why not); never raises."""
    try:
        if not path.is_file():
            return None, "missing" if not path.exists() else "not a file"
        if path.stat().st_size > _MAX_BYTES:
            return None, f"larger than {_MAX_BYTES:,} bytes"
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda _c: None)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        return None, f"unreadable ({type(err).__name__})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _sigma(value: Any) -> float | None:
    """σ as written: a number, or the judge's Sigma(value, dof, groups) as a mapping."""
    if isinstance(value, dict):
        return _number(value.get("value"))
    return _number(value)


@dataclass(frozen=True)
class Explanation:
    """A decision's status, reason and numbers; None where the decision does not say."""

    status: str
    reason: str
    gain: float | None = None
    bar: float | None = None
    n: int | None = None
    sigma: float | None = None
    p_value: float | None = None
    alpha: float | None = None
    test: str = ""
    candidate_mean: float | None = None
    incumbent_mean: float | None = None

    def numbers(self) -> str:
        """"gain +0.0012 · bar 0.0040 · n 2 · σ 0.0015 · p 0.210", only what is known."""
        shown = (("gain", self.gain, "+.4f"), ("bar", self.bar, ".4f"), ("n", self.n, "d"),
                 ("σ", self.sigma, ".4f"), ("p", self.p_value, ".3g"), ("alpha", self.alpha, ".3g"))
        parts = [f"{name} {value:{spec}}" for name, value, spec in shown if value is not None]
        if self.test:
            parts.append(f"test {self.test}")
        return " · ".join(parts)

    def short_reason(self) -> str:
        """The reason in a ledger cell: a discard with a positive gain always names the bar it missed
        (or, when the gain cleared the bar, the test it failed)."""
        if self.status != Status.DISCARD or self.gain is None or self.gain <= 0:
            return self.reason
        n = f"n {self.n}" if self.n is not None else ""
        if self.bar is None:
            return f"gain {self.gain:+.4f}, bar not recorded" + (f" ({n})" if n else "")
        if self.gain <= self.bar:
            return f"gain {self.gain:+.4f} <= bar {self.bar:.4f}" + (f" ({n})" if n else "")
        test = [n] if n else []
        if self.p_value is not None:
            test.append(f"p {self.p_value:.3g}" + (f" > alpha {self.alpha:.3g}" if self.alpha is not None else ""))
        return f"gain {self.gain:+.4f} > bar {self.bar:.4f} but not significant" + (
            f" ({', '.join(test)})" if test else "")

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for --json."""
        return {"status": self.status, "reason": self.reason, "gain": self.gain, "bar": self.bar, "n": self.n,
                "sigma": self.sigma, "p_value": self.p_value, "alpha": self.alpha, "test": self.test,
                "candidate_mean": self.candidate_mean, "incumbent_mean": self.incumbent_mean}


def explain(data: dict[str, Any]) -> Explanation:
    """An Explanation of a decision.json mapping of any shape pgolf has written."""
    verdict = data.get("verdict") if isinstance(data.get("verdict"), dict) else {}
    merged = {**verdict, **{k: v for k, v in data.items() if v is not None}}
    status = merged.get("status") or merged.get("action") or ""
    n = merged.get("n")
    if n is None and isinstance(merged.get("candidate_seeds"), list):
        n = len(merged["candidate_seeds"])
    bar = _number(merged.get("bar"))
    return Explanation(
        status=str(status), reason=str(merged.get("reason") or ""), gain=_number(merged.get("gain")),
        bar=bar if bar is not None else _number(merged.get("threshold")),
        n=n if isinstance(n, int) and not isinstance(n, bool) else None, sigma=_sigma(merged.get("sigma")),
        p_value=_number(merged.get("p_value")), alpha=_number(merged.get("alpha")),
        test=str(merged.get("test") or ""), candidate_mean=_number(merged.get("candidate_mean")),
        incumbent_mean=_number(merged.get("incumbent_mean")),
    )


def load_explanation(folder: RunFolder) -> Explanation | None:
    """The explanation of a run folder's decision.json, or None when it has none (or a damaged one)."""
    data, _problem = load_json_object(folder.decision)
    return explain(data) if data is not None else None


# -- a whole run folder, for `pgolf show` ----------------------------------------------------------

_TAIL_BYTES = 64 * 1024
_STEP_TOTAL = re.compile(r"^step:(\d+)/(\d+) ")
_ITERATIONS = re.compile(r"\biterations:(\d+)\b")
_CAP_CUT = re.compile(r"^stopping_early: wallclock_cap\b")


def tail_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of a text file (only its last 64 KiB are read); [] when it is missing."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - _TAIL_BYTES, 0))
            raw = fh.read()
    except OSError:
        return []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if size > _TAIL_BYTES and lines:
        lines = lines[1:]  # the first line read is cut
    return lines[-count:] if count > 0 else []


def step_facts(log_path: Path, steps: int | None) -> dict[str, Any]:
    """Steps done, steps planned, and whether the wallclock cap cut the run, from its log."""
    planned: int | None = None
    last_step: int | None = None
    cut = False
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if planned is None and (m := _ITERATIONS.search(line)) and "warmup_steps" in line:
                    planned = int(m[1])
                if m := _STEP_TOTAL.match(line):
                    last_step, planned = int(m[1]), int(m[2])
                elif _CAP_CUT.match(line):
                    cut = True
    except OSError:
        pass
    done = steps if steps is not None else last_step
    return {"done": done, "planned": planned, "cut_by_wallclock": cut}


def _text(path: Path, limit: int) -> str | None:
    try:
        if not path.is_file():
            return None
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return None


def describe_run(folder: RunFolder, row: dict[str, Any] | None, *, log_lines: int = 20,
                 diff_chars: int = 20_000) -> dict[str, Any]:
    """Everything `pgolf show` prints about one run, as plain data (the ledger row may be None)."""
    from pgolf.logs import read_run_result

    decision, decision_problem = load_json_object(folder.decision)
    preflight, _ = load_json_object(folder.preflight)
    promotion, _ = load_json_object(folder.promotion)
    result = read_run_result(folder.path)
    command = _text(folder.command, 10_000)
    explanation = explain(decision) if decision is not None else None
    return {
        "run_id": folder.run_id,
        "folder": str(folder.path),
        "row": row,
        "decision": explanation.as_dict() if explanation else None,
        "decision_numbers": explanation.numbers() if explanation else "",
        "decision_reason": explanation.short_reason() if explanation else "",
        "decision_problem": decision_problem if decision is None and decision_problem != "missing" else "",
        "gates": decision.get("gates") if decision and isinstance(decision.get("gates"), list) else [],
        "proposer_failure": decision.get("proposer_failure") if decision else None,
        "preflight": preflight,
        "promotion": promotion,
        "command": [line for line in (command or "").splitlines() if line.strip() and not line.startswith("#")],
        "result": result.as_dict() if result else None,
        "steps": step_facts(folder.log, result.steps if result else None),
        "diff": _text(folder.diff, diff_chars),
        "log_tail": tail_lines(folder.log, log_lines),
        "agent_tail": tail_lines(folder.agent_log, 5),
    }
