"""Results of training runs: `result.json` when a script wrote one, else a parser for every era of log.

Log eras found in the official records: `step:N/M val_loss:X val_bpb:Y` lines (2026-03), then
`N/M val_loss: X val_bpb: Y` with spaces (2026-04), optional timestamp or `[rankN]:` prefixes, and many
logs that start with a dump of the script's own source. Every pattern is anchored at the start of a line
and needs real numbers, so the source dump (indented code, f-string templates) never matches.

The final score is the last labelled evaluation line (`final_int8_zlib_roundtrip_exact`,
`final_int6_sliding_window_exact`, `legal_ttt_exact`, `quantized_ttt_phased`, ...) that is not a
diagnostic or pre-quantization line. The parser never raises on the content of a log.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.errors import DataError

_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
# Timestamps (ISO or unix) and torchrun's [rankN]: in front of a log line.
_PREFIX = re.compile(
    r"^(?:\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?\s*(?:[-|:]\s*)?"
    r"|\[?\d{10}(?:\.\d+)?\]?\s+(?=\S)"
    r"|\[rank\d+\]:\s*)+"
)
_STEP_VAL = re.compile(
    rf"^(?:step:)?(?P<step>\d{{1,15}})/(?P<total>\d{{1,15}})\s+val_loss:\s*(?P<loss>{_NUM})\s+val_bpb:\s*(?P<bpb>{_NUM})"
)
_STEP_ANY = re.compile(r"^(?:step:)?(?P<step>\d{1,15})/(?P<total>\d{1,15})\s+(?:train_loss|val_loss)")
# A labelled evaluation: words (the label, maybe with key:value tokens such as stride:64), then the scores.
# Matched in steps, never with one nested pattern, so no line can make the matcher backtrack for long.
_VAL_LOSS = re.compile(rf"\sval_loss[:=]\s*(?P<loss>{_NUM})")
_VAL_BPB = re.compile(rf"val_bpb[:=]\s*(?P<bpb>{_NUM})")
_LABEL_WORD = re.compile(r"[A-Za-z][\w.+\-]*")
_TRAIN_TIME_MS = re.compile(r"\btrain_time:\s*(?P<ms>\d+(?:\.\d+)?)ms")
_TRAIN_TIME_MIN = re.compile(r"\btrain_time:\s*(?P<min>\d+(?:\.\d+)?)m\b")
_STEP_AVG = re.compile(rf"\bstep_avg:\s*(?P<ms>{_NUM})ms")
_STOP_STEP = re.compile(r"\bstep:\s*(?P<step>\d{1,15})")
_TOTAL_SIZE = re.compile(r"^(?:.*\|\s*)?Total submission(?: size)?[^:|]*:\s*(?P<n>\d{1,15})\s*bytes")
_MODEL_SIZE = re.compile(r"^Serialized model[^:]*:\s*(?P<n>\d{1,15})\s*bytes")
_CODE_SIZE = re.compile(r"^Code size[^:]*:\s*(?P<n>\d{1,15})\s*bytes")
_PEAK_MEM = re.compile(r"^peak memory(?: allocated)?:\s*(?P<n>\d{1,15})\s*MiB")
_KEY_INT = re.compile(r"(?:^|\s)(?P<key>seed|world_size|val_tokens)[:=]\s*(?P<n>\d{1,15})\b")
_VAL_LOADER = re.compile(r"^val_loader:.*\btokens:(?P<n>\d{1,15})")
_PRE_QUANT = re.compile(r"pre[-_]?quant|post[-_]ema", re.IGNORECASE)
_DIAGNOSTIC = re.compile(r"^diagnostic\b", re.IGNORECASE)
_TRACEBACK = "Traceback (most recent call last):"
# A source dump starts like a Python file and, in the baseline's lineage, ends with a line of "=".
_CODE_START = re.compile(r'^(?:"""|\'\'\'|#!|from \S+ import |import \w)')
_SEPARATOR = re.compile(r"^={20,}\s*$")


@dataclass
class RunResult:
    """One run's outcome, from `result.json` or a parsed log; `None` where the source does not say."""

    path: str
    val_bpb: float | None = None
    val_loss: float | None = None
    label: str | None = None
    pre_quant_val_bpb: float | None = None
    pre_quant_val_loss: float | None = None
    artifact_bytes: int | None = None
    code_bytes: int | None = None
    model_bytes: int | None = None
    steps: int | None = None
    train_seconds: float | None = None
    step_avg_ms: float | None = None
    seed: int | None = None
    world_size: int | None = None
    val_tokens: int | None = None
    peak_memory_mb: float | None = None
    complete: bool = False
    status: str = "incomplete"  # ok, aborted, crashed, incomplete
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    source: str = "log"  # log or result.json
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, val_bpb) validation points

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        data = asdict(self)
        data["curve"] = [{"step": s, "val_bpb": b} for s, b in self.curve]
        return data


LogResult = RunResult  # a parsed log is a RunResult whose source is "log"


def parse_log(path: Path) -> RunResult:
    """Parse a training log file of any era; a missing or unreadable file is a DataError."""
    path = Path(path)
    try:
        raw = statefile.read_bytes(path, max_bytes=_MAX_LOG_BYTES)  # a folder or a pipe: one line
    except DataError as err:
        raise DataError(f"{path}: cannot read log ({str(err).removeprefix(f'{path}: ')})") from None
    assert raw is not None
    return parse_log_text(decode_log(raw), str(path))


_MAX_LOG_BYTES = 2 * 1024**3
_SNIFF = 4096


def decode_log(raw: bytes) -> str:
    """A log's text: UTF-8 (bad bytes replaced), or UTF-16 when it has a byte-order mark or looks like it
    (PowerShell's `>` and `Tee-Object` write UTF-16; read as UTF-8 such a log has no line pgolf knows)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    head = raw[:_SNIFF]
    half = len(head) // 2
    if half >= 8:
        even_nul, odd_nul = head[0::2].count(0), head[1::2].count(0)
        # ASCII text in UTF-16 has a NUL in every other byte; UTF-8 text has (almost) none.
        if odd_nul > 0.4 * half and even_nul < 0.05 * half:
            return raw.decode("utf-16-le", errors="replace")
        if even_nul > 0.4 * half and odd_nul < 0.05 * half:
            return raw.decode("utf-16-be", errors="replace")
    return raw.decode("utf-8", errors="replace")


def parse_log_text(text: str, path: str = "") -> RunResult:
    """Parse the text of a training log; never raises, whatever the text."""
    result = RunResult(path=path)
    state = _ParseState()
    for raw_line in _without_source_dumps(text.splitlines()):
        state.feed(raw_line)
    state.fill(result)
    return result


def _without_source_dumps(lines: list[str]) -> list[str]:
    """Drop each region from a line that starts a Python file to the next "=====" separator line."""
    next_separator = [-1] * (len(lines) + 1)
    for i in range(len(lines) - 1, -1, -1):
        next_separator[i] = i if _SEPARATOR.match(lines[i]) else next_separator[i + 1]
    kept: list[str] = []
    i = 0
    while i < len(lines):
        end = next_separator[i + 1] if _CODE_START.match(lines[i]) else -1
        if end > i:
            i = end + 1
            continue
        kept.append(lines[i])
        i += 1
    return kept


def read_run_result(run_dir: Path, log_name: str = "train.log") -> RunResult | None:
    """A run folder's result: `result.json` first, then the parsed log; None when it has neither."""
    run_dir = Path(run_dir)
    json_path = run_dir / "result.json"
    log_path = run_dir / log_name
    problem = ""
    if json_path.is_file():
        try:
            # finite=False: _from_result_json turns each non-finite value into a warning of its own.
            data = statefile.load_json(json_path, finite=False, want=dict)
            return _from_result_json(data, str(json_path))
        except DataError as err:
            problem = f"result.json unreadable ({str(err).removeprefix(f'{json_path}: ')}); parsed the log instead"
    if not log_path.is_file():
        return None
    try:
        result = parse_log(log_path)
    except DataError:
        return None
    if problem:
        result.warnings.insert(0, problem)
    return result


class _ParseState:
    """What the line scanner has seen so far."""

    def __init__(self) -> None:
        self.final: tuple[str, float, float] | None = None
        self.pre_quant: tuple[float, float] | None = None
        self.last_step_val: tuple[float, float] | None = None
        self.curve: list[tuple[int, float]] = []
        self.ints: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.traceback_tail: str | None = None

    def feed(self, raw_line: str) -> None:
        line = _PREFIX.sub("", raw_line.rstrip())
        if not line:
            return
        if self.traceback_tail == "" and not line[0].isspace():
            self.traceback_tail = line.strip()[:200]
        if line.startswith(_TRACEBACK):
            self.traceback_tail = ""
            return
        if line[0].isspace():  # source dumps and hyperparameter blocks are indented
            self._key_values(line)
            return
        for handler in (self._step_line, self._eval_line, self._size_line, self._key_values):
            if handler(line):
                return

    def _step_line(self, line: str) -> bool:
        match = _STEP_ANY.match(line)
        if not match:
            return False
        step = int(match["step"])
        self.last["steps"] = step
        val = _STEP_VAL.match(line)
        if val and (bpb := _finite(val["bpb"])) is not None and (loss := _finite(val["loss"])) is not None:
            self.curve.append((step, bpb))
            self.last_step_val = (loss, bpb)
        if (ms := _TRAIN_TIME_MS.search(line)) is not None and (value := _finite(ms["ms"])) is not None:
            self.last["train_ms"] = value
        elif (minutes := _TRAIN_TIME_MIN.search(line)) is not None and (value := _finite(minutes["min"])):
            self.last["train_ms"] = value * 60_000
        if (avg := _STEP_AVG.search(line)) is not None and (value := _finite(avg["ms"])) is not None:
            self.last["step_avg_ms"] = value
        return True

    def _eval_line(self, line: str) -> bool:
        scores = _VAL_LOSS.search(line)
        if scores is None:
            return False
        words = [w for w in line[: scores.start()].split() if ":" not in w and "=" not in w]
        if not words or not line[0].isalpha() or not all(_LABEL_WORD.fullmatch(w) for w in words):
            return False
        bpb_match = _VAL_BPB.search(line, scores.end())
        if bpb_match is None:
            return False
        loss, bpb = _finite(scores["loss"]), _finite(bpb_match["bpb"])
        if loss is None or bpb is None:
            return True
        label = " ".join(words)
        if _PRE_QUANT.search(label):
            self.pre_quant = (loss, bpb)
        elif not _DIAGNOSTIC.match(label):
            self.final = (label, loss, bpb)
        return True

    def _size_line(self, line: str) -> bool:
        if line.startswith("stopping_early:"):
            if (ms := _TRAIN_TIME_MS.search(line)) is not None and (value := _finite(ms["ms"])) is not None:
                self.last["stop_train_ms"] = value
            if (step := _STOP_STEP.search(line, ms.end() if ms else 0)) is not None:
                self.last["stop_step"] = int(step["step"])
            return True
        for key, pattern in (("artifact_bytes", _TOTAL_SIZE), ("model_bytes", _MODEL_SIZE),
                             ("code_bytes", _CODE_SIZE), ("peak_memory_mb", _PEAK_MEM)):
            if (match := pattern.match(line)) is not None:
                self.last[key] = int(match["n"])
                return True
        if (loader := _VAL_LOADER.match(line)) is not None:
            self.ints.setdefault("val_tokens", int(loader["n"]))
            return True
        return False

    def _key_values(self, line: str) -> bool:
        if len(line) - len(line.lstrip()) > 2:  # deeper indentation is source code
            return False
        found = False
        for match in _KEY_INT.finditer(line):
            self.ints.setdefault(match["key"], int(match["n"]))
            found = True
        return found

    def fill(self, result: RunResult) -> None:
        last = self.last
        if self.final is not None:
            result.label, result.val_loss, result.val_bpb = self.final
            result.complete, result.status = True, "ok"
        elif self.traceback_tail is not None:
            result.status = "crashed"
            result.reason = f"crashed: {self.traceback_tail or 'traceback'}"
        else:
            where = f" (last validation at step {self.curve[-1][0]})" if self.curve else ""
            result.reason = f"no final score line{where}"
        pre = self.pre_quant or self.last_step_val
        if pre is not None:
            result.pre_quant_val_loss, result.pre_quant_val_bpb = pre
        steps = last.get("stop_step", last.get("steps"))
        result.steps = None if steps is None else int(steps)
        train_ms = last.get("stop_train_ms", last.get("train_ms"))
        result.train_seconds = None if train_ms is None else round(train_ms / 1000.0, 3)
        result.step_avg_ms = last.get("step_avg_ms")
        if result.step_avg_ms is None and train_ms and result.steps:
            result.step_avg_ms = round(train_ms / result.steps, 2)
        for key in ("artifact_bytes", "code_bytes", "model_bytes"):
            setattr(result, key, None if key not in last else int(last[key]))
        result.peak_memory_mb = last.get("peak_memory_mb")
        result.seed = self.ints.get("seed")
        result.world_size = self.ints.get("world_size")
        result.val_tokens = self.ints.get("val_tokens")
        result.curve = self.curve
        if result.complete and result.val_bpb is not None and _decimals(result.val_bpb) <= 4:
            result.warnings.append(f"final score {result.label} is printed with 4 decimals only")
        if result.complete and result.artifact_bytes is None:
            result.warnings.append("no 'Total submission size' line: artifact bytes unknown")


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text else 0


_JSON_FIELDS: dict[str, type] = {
    "val_bpb": float, "val_loss": float, "pre_quant_val_bpb": float, "pre_quant_val_loss": float,
    "artifact_bytes": int, "code_bytes": int, "model_bytes": int, "steps": int, "seed": int,
    "world_size": int, "val_tokens": int, "peak_memory_mb": float,
}


def _from_result_json(data: dict[str, Any], path: str) -> RunResult:
    """Map the training-script contract's result.json onto a RunResult; bad values become warnings."""
    result = RunResult(path=path, source="result.json", label="result.json")
    for key, kind in _JSON_FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        try:
            converted = kind(value)
            if isinstance(converted, float) and not math.isfinite(converted):
                raise ValueError("not finite")
        except (TypeError, ValueError, OverflowError):
            result.warnings.append(f"result.json: {key}={value!r} is not a {kind.__name__}")
            continue
        setattr(result, key, converted)
    train_ms = data.get("train_ms")
    if isinstance(train_ms, int | float) and math.isfinite(train_ms):
        result.train_seconds = round(train_ms / 1000.0, 3)
        if result.steps:
            result.step_avg_ms = round(train_ms / result.steps, 2)
    curve = data.get("curve")
    if isinstance(curve, list):
        result.curve = [
            (int(p["step"]), float(p["val_bpb"])) for p in curve
            if isinstance(p, dict) and isinstance(p.get("step"), int)
            and isinstance(p.get("val_bpb"), int | float) and math.isfinite(p["val_bpb"])
        ]
    status = data.get("status")
    result.status = status if status in ("ok", "aborted", "crashed") else "incomplete"
    result.reason = str(data.get("reason") or "")
    result.complete = result.status == "ok" and result.val_bpb is not None
    if result.status == "ok" and result.val_bpb is None:
        result.reason = result.reason or "result.json says ok but has no val_bpb"
    return result
