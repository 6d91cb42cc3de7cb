"""Safe start: what must hold before the first baseline spends minutes, checked in milliseconds.

Before any run: the data and tokenizer the script reads exist and agree with `[data] vocab_size`, and a
script that needs CUDA is refused on a machine without it. Both are static (the script's source, the
files, the device nodes): nothing is trained and torch is never imported to find out.

During the first runs `FirstStepsWatch` estimates step time and memory from the log and the process
tree, and warns when a run will be cut by its wallclock cap or is about to exhaust memory.

After a baseline: one that crashed before its first training step is a setup error (the script cannot
run here), reported in one line, never recorded as a noise-floor point.
"""

from __future__ import annotations

import ast
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgolf.errors import PgolfError

_SUFFIX_VOCAB = re.compile(r"_sp(\d+)$")
_TRAIN_STEP = re.compile(r"^step:(\d+)/(\d+) train_loss:\S+(?: train_time:([\d.]+)ms)?(?: step_avg:([\d.]+)ms)?")
# Warnings of the first-steps watch.
NO_STEP_WARN_SECONDS = 60.0
MEMORY_WARN_FRACTION = 0.8
# Tokens per step from which a CPU run is warned about before it starts (the baseline has 524,288;
# `--profile cpu` has 4,096).
CPU_TOKENS_WARN = 65_536
_POLL_SECONDS = 1.0


class SetupError(PgolfError):
    """The workspace cannot run its script on this machine as configured; nothing was recorded."""

    exit_code = 2


# -- the device ------------------------------------------------------------------------------------


def cuda_available() -> bool:
    """Whether this machine shows a CUDA GPU to new processes, without importing torch.

    NVIDIA's driver exposes /dev/nvidia0… (and /proc/driver/nvidia/gpus/); CUDA_VISIBLE_DEVICES set to
    an empty or negative value hides every GPU.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and (not visible.strip() or visible.strip().startswith("-")):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _is_cuda_available_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "is_available" and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "cuda")


def script_needs_cuda(source: str) -> str:
    """Evidence that a script cannot run without CUDA ("" when it can, or when that is unclear).

    Two shapes are recognised: `if not torch.cuda.is_available(): raise …` (the challenge's own script),
    and CUDA-only set-up (`torch.cuda.set_device`, `.cuda()`, `backend="nccl"`) in a script that never
    names another device ("cpu" as a map_location does not count: loading to CPU is not running there).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""  # preflight reports it
    cuda_only: list[int] = []
    other_device = False
    loading = {id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "map_location"}
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not)
                and _is_cuda_available_call(node.test.operand) and node.body and isinstance(node.body[0], ast.Raise)):
            return f"line {node.lineno} raises when torch.cuda.is_available() is false"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("set_device", "cuda") and not node.args[1:]:
                cuda_only.append(node.lineno)
            if node.func.attr == "init_process_group" and any(
                    k.arg == "backend" and isinstance(k.value, ast.Constant) and k.value.value == "nccl"
                    for k in node.keywords):
                cuda_only.append(node.lineno)
        if isinstance(node, ast.Constant) and node.value in ("cpu", "mps") and id(node) not in loading:
            other_device = True
    if cuda_only and not other_device:
        return f"line {min(cuda_only)} sets up CUDA and the script names no other device"
    return ""


# -- before the first run --------------------------------------------------------------------------


@dataclass
class SetupReport:
    """What the start-up checks found: problems refuse the start, warnings are shown."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_setup(*, source: str, env: dict[str, str], dataset_dir: Path, tokenizer_path: Path, vocab_size: int,
                has_cuda: bool | None = None) -> SetupReport:
    """The data, tokenizer and device checks for a script about to run with `env` (pgolf's overrides).

    A path is checked only when the script reads its variable (DATA_PATH, TOKENIZER_PATH): a script that
    brings its own data is not refused for pgolf's defaults.
    """
    report = SetupReport()
    if "DATA_PATH" in source:
        _check_dataset(dataset_dir, vocab_size, report)
    if "TOKENIZER_PATH" in source:
        _check_tokenizer(tokenizer_path, vocab_size, report)
    cuda = cuda_available() if has_cuda is None else has_cuda
    if not cuda:
        wanted = env.get("DEVICE", "").strip().lower()
        evidence = "DEVICE=cuda in [tiers.local] env" if wanted == "cuda" else script_needs_cuda(source)
        if evidence:
            report.problems.append(
                f"train_gpt.py needs CUDA ({evidence}) and this machine has no CUDA GPU: run it on a GPU "
                "machine or a remote tier, or start from pgolf's baseline, which runs on CPU too "
                "(`pgolf init DIR --profile cpu` in a new folder)")
        elif (tokens := _tokens_per_step(source, env)) is not None and tokens >= CPU_TOKENS_WARN:
            report.warnings.append(
                f"this machine has no CUDA GPU and each step trains {tokens:,} tokens: a step may take minutes "
                "on a CPU; `pgolf init DIR --profile cpu` writes a model sized for it")
    return report


def _tokens_per_step(source: str, env: dict[str, str]) -> int | None:
    """TRAIN_BATCH_TOKENS as the run will see it: the env's value, else the script's default."""
    from pgolf.loop.hyperparams import find, read_hyperparameters

    value: Any = env.get("TRAIN_BATCH_TOKENS")
    if value is None:
        param = find(read_hyperparameters(source), "TRAIN_BATCH_TOKENS")
        value = param.default if param else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _check_dataset(directory: Path, vocab_size: int, report: SetupReport) -> None:
    where = "[data] dataset_dir in pgolf.toml"
    fix = "download it with `pgolf data fineweb` (or `pgolf data demo`) or point " + where + " at your shards"
    if not directory.is_dir():
        report.problems.append(f"data: {directory} does not exist ({where}); {fix}")
        return
    val = sorted(directory.glob("fineweb_val_*.bin"))
    if not val:
        report.problems.append(f"data: {directory} has no fineweb_val_*.bin shard; {fix}")
        return
    if not any(directory.glob("fineweb_train_*.bin")):
        report.problems.append(f"data: {directory} has no fineweb_train_*.bin shard; {fix}")
        return
    from pgolf.data.shards import read_header
    from pgolf.errors import DataError

    try:
        read_header(val[0])
    except DataError as err:
        report.problems.append(f"data: {err}")
    match = _SUFFIX_VOCAB.search(directory.name)
    if match and int(match[1]) != vocab_size:
        report.problems.append(f"data: {directory.name} is tokenized for vocab size {match[1]} but [data] "
                               f"vocab_size = {vocab_size}")


def _check_tokenizer(path: Path, vocab_size: int, report: SetupReport) -> None:
    if not path.is_file():
        report.problems.append(f"tokenizer: {path} does not exist ([data] tokenizer_path in pgolf.toml)")
        return
    from pgolf.errors import DataError
    from pgolf.scoring.luts import load_tokenizer

    try:
        pieces = int(load_tokenizer(path).vocab_size())
    except DataError as err:
        report.problems.append(f"tokenizer: {err}")
        return
    if pieces != vocab_size:
        report.problems.append(f"tokenizer: {path.name} has {pieces} pieces but [data] vocab_size = {vocab_size}; "
                               "set vocab_size to match the tokenizer the shards were made with")


def check_before_start(ws: Any, config: Any, commit: str, events: Any) -> None:
    """The start-up checks for the workspace's best commit: a problem is a SetupError, warnings are shown."""
    from pgolf import git
    from pgolf.workspace import TRAIN_SCRIPT

    data = config.data
    source = git.git(ws.root, "show", f"{commit}:{TRAIN_SCRIPT}")
    report = check_setup(source=source, env=config.tiers.local.env, dataset_dir=ws.resolve(data.dataset_dir),
                         tokenizer_path=ws.resolve(data.tokenizer_path), vocab_size=data.vocab_size)
    refuse_on_problems(report)
    for warning in report.warnings:
        events.message(f"warning: {warning}")


def refuse_on_problems(report: SetupReport) -> None:
    """Raise the first problem as a SetupError (one line); the count says when there are more."""
    if report.problems:
        more = len(report.problems) - 1
        raise SetupError(report.problems[0] + (f" (and {more} more setup problem{'s' if more > 1 else ''})"
                                                if more else ""))


# -- after a baseline ------------------------------------------------------------------------------


def never_stepped(log_path: Path, result: Any) -> bool:
    """Neither the log (`step:1/N train_loss:…`) nor the result (`steps`) shows a training step."""
    return not reached_first_step(log_path) and not (result is not None and getattr(result, "steps", None))


def reached_first_step(log_path: Path) -> bool:
    """Whether a run's log shows at least one training step (`step:1/N train_loss:…`)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            return any((m := _TRAIN_STEP.match(line.strip())) and int(m[1]) >= 1 for line in fh)
    except OSError:
        return False


def setup_failure(run_id: str, log_path: Path, reason: str) -> SetupError:
    """The one-line error of a baseline that died before training: the script cannot start here."""
    return SetupError(f"setup problem: the baseline {run_id} stopped before its first training step "
                      f"({reason or 'no reason given'}); nothing was recorded; see {log_path}")


# -- during the first steps ------------------------------------------------------------------------


def _memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def tree_rss_bytes(folder: Path) -> int:
    """Resident memory of every process whose working directory is `folder` (a run and its children)."""
    total = 0
    target = str(folder.resolve())
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != target:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def _gb(value: float) -> str:
    return f"{value / 1e9:.1f} GB"


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"


@dataclass
class _Watched:
    folder: Path
    started: float
    warned: set[str] = field(default_factory=set)
    stepped: bool = False
    peak_rss: int = 0


class FirstStepsWatch:
    """Wraps the loop's events: warns, once per run and kind, when a run is too slow or too big here.

    - no training step after NO_STEP_WARN_SECONDS (with the memory it holds);
    - the step time from the first steps, when the wallclock cap will stop the run before its last step;
    - resident memory above MEMORY_WARN_FRACTION of the machine's.
    """

    def __init__(self, inner: Any, run_folder: Any, *, wallclock_seconds: float, env: dict[str, str] | None = None,
                 memory_total: int | None = None, no_step_seconds: float = NO_STEP_WARN_SECONDS,
                 poll_seconds: float = _POLL_SECONDS) -> None:
        self.inner = inner
        # What to do about it: a workspace that already sizes its model in the env gets told to shrink it.
        self.hint = ("lower TRAIN_BATCH_TOKENS, MODEL_DIM or ITERATIONS in [tiers.local] env"
                     if env and "TRAIN_BATCH_TOKENS" in env else
                     "on a CPU, `pgolf init DIR --profile cpu` writes a model sized for it")
        self.run_folder = run_folder  # run_id -> Path
        self.wallclock_seconds = wallclock_seconds
        self.memory_total = memory_total if memory_total is not None else _memory_total_bytes()
        self.no_step_seconds = no_step_seconds
        self.poll_seconds = poll_seconds
        self._runs: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # any event this wrapper does not watch goes straight through

    def message(self, text: str) -> None:
        self.inner.message(text)

    def run_started(self, run_id: str, kind: str, description: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._runs[run_id] = _Watched(Path(self.run_folder(run_id)), time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._poll, name="pgolf-first-steps", daemon=True)
                self._thread.start()
        self.inner.run_started(run_id, kind, description, info)

    def run_line(self, run_id: str, text: str) -> None:
        self.inner.run_line(run_id, text)
        m = _TRAIN_STEP.match(text.strip())
        if not m or not m[4]:
            return
        with self._lock:
            watched = self._runs.get(run_id)
            if watched is None:
                return
            watched.stepped = True
            step, total, step_ms = int(m[1]), int(m[2]), float(m[4])
            # Step 1 carries one-time costs (allocation, compilation): judge the pace from step 2 on.
            if "slow" in watched.warned or step < 2 or step_ms <= 0 or total <= step:
                return
            watched.warned.add("slow")
        projected = total * step_ms / 1000.0
        if projected > self.wallclock_seconds * 1.02:
            reach = int(self.wallclock_seconds * 1000.0 / step_ms)
            self.inner.message(f"warning: {run_id} takes {step_ms / 1000:.2f} s per step: {total} steps would need "
                               f"{_seconds(projected)}, so the wallclock cap of {self.wallclock_seconds:g} s stops it "
                               f"near step {reach} of {total}; {self.hint}")

    def run_finished(self, record: Any) -> None:
        with self._lock:
            self._runs.pop(getattr(record, "run_id", ""), None)
        self.inner.run_finished(record)

    def __enter__(self) -> FirstStepsWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the polling thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with self._lock:
                runs = list(self._runs.items())
            for run_id, watched in runs:
                self._check(run_id, watched)

    def _check(self, run_id: str, watched: _Watched) -> None:
        rss = tree_rss_bytes(watched.folder)
        watched.peak_rss = max(watched.peak_rss, rss)
        notes = []
        if self.memory_total and rss > MEMORY_WARN_FRACTION * self.memory_total and "memory" not in watched.warned:
            watched.warned.add("memory")
            notes.append(f"warning: {run_id} uses {_gb(rss)} of this machine's {_gb(self.memory_total)} memory; "
                         f"swapping is next; {self.hint}")
        waited = time.monotonic() - watched.started
        if not watched.stepped and waited >= self.no_step_seconds and "no-step" not in watched.warned:
            watched.warned.add("no-step")
            held = f", holding {_gb(rss)} of memory" if rss else ""
            notes.append(f"warning: {run_id} has not finished a training step after {waited:.0f} s{held}; "
                         f"the model may be too large for this machine; {self.hint}")
        for note in notes:
            self.inner.message(note)
