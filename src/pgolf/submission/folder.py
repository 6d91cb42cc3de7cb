"""A submission under review: the files of a records folder (local or fetched from a PR) or one script."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgolf import statefile
from pgolf.errors import DataError
from pgolf.logs import RunResult, parse_log_text

SCRIPT_NAME = "train_gpt.py"
TRACK_DIRS = ("track_10min_16mb", "track_non_record_16mb")
# Logs in the records: train*.log, train_seed42.txt, ternary_log_*.txt, binary_log.txt, and anything in a
# logs*/ folder (logs/, logs_experiment/); README and requirements are not logs.
_LOG_NAME = re.compile(r"(?:^|/)(?:[^/]*(?:train|log)[^/]*\.(?:log|txt)|logs[^/]*/(?:[^/]+/)*[^/]+\.(?:log|txt))$",
                       re.IGNORECASE)
_NOT_LOGS = frozenset({"requirements.txt"})
# A log named for its seed (train_seed42.log) even where its text prints another (a default it overrode).
_SEED_IN_NAME = re.compile(r"seed[_-]?(\d+)", re.IGNORECASE)
MAX_FILE_BYTES = 32 * 1024 * 1024  # model blobs are not read into memory


@dataclass
class Submission:
    """The files of one submission, by path relative to its folder."""

    name: str  # the folder's name (or the script's)
    where: str  # a path or a PR reference, for evidence lines
    files: dict[str, bytes]
    sizes: dict[str, int] = field(default_factory=dict)  # every file's size, read or not
    track: str | None = None
    kind: str = "folder"  # "folder" or "script"
    parent: str | None = None  # the folder above, e.g. records/track_10min_16mb
    outside: list[str] = field(default_factory=list)  # a PR's files outside its records folder
    _logs: dict[str, RunResult] | None = None

    def text(self, name: str) -> str | None:
        """A file's text (UTF-8, undecodable bytes replaced), or None when absent."""
        data = self.files.get(name)
        return None if data is None else data.decode("utf-8", errors="replace")

    @property
    def script(self) -> str | None:
        """The training script's source, when the submission has one."""
        return self.text(SCRIPT_NAME) if self.kind == "folder" else self.text(self.name)

    @property
    def script_name(self) -> str:
        return SCRIPT_NAME if self.kind == "folder" else self.name

    def log_names(self) -> list[str]:
        """Names of the training logs, sorted."""
        return sorted(n for n in self.files if _LOG_NAME.search(n) and n.rsplit("/", 1)[-1] not in _NOT_LOGS)

    def logs(self) -> dict[str, RunResult]:
        """Every log parsed (once)."""
        if self._logs is None:
            self._logs = {n: parse_log_text(self.text(n) or "", n) for n in self.log_names()}
        return self._logs

    def seed_logs(self) -> tuple[dict[str, RunResult], str]:
        """The complete logs of the seeds submission.json names (its per-seed results), else every complete
        log; with a note saying which rule chose them."""
        complete: dict[str, RunResult] = {}
        texts: set[str] = set()
        for n, r in self.logs().items():  # an identical copy of a log (train.log beside train_seed42.log) is one run
            text = self.text(n) or ""
            if r.complete and text not in texts:
                complete[n] = r
                texts.add(text)
        named = _named_seeds(self.submission_json()[0])
        chosen = {n: r for n, r in complete.items() if named & {str(r.seed), *_SEED_IN_NAME.findall(n)}}
        if chosen:
            return chosen, f"the seeds submission.json names ({', '.join(sorted(named))})"
        seeds = [r.seed for r in complete.values() if r.seed is not None]
        note = "every complete log (submission.json names no seeds they match)"
        if len(set(seeds)) < len(seeds):
            note += "; some share a seed, so they may be reruns or ablations rather than independent seeds"
        return complete, note

    def submission_json(self) -> tuple[dict[str, Any] | None, str]:
        """submission.json as a mapping, or None and why not."""
        raw = self.files.get("submission.json")
        if raw is None:
            return None, "submission.json is missing"
        try:  # the state-file guards: UTF-8, nesting, NaN/inf (a NaN val_bpb is no score)
            data = statefile.loads_json(statefile.decode_utf8(raw, "submission.json"), "submission.json")
        except DataError as err:
            return None, str(err)
        if not isinstance(data, dict):
            return None, "submission.json is not a JSON object"
        return data, ""


def _named_seeds(meta: dict[str, Any] | None) -> set[str]:
    """Seeds submission.json reports: the keys of seed_results (or of a seeds mapping), else the seeds list."""
    meta = meta or {}
    for key in ("seed_results", "seeds"):
        value = meta.get(key)
        if isinstance(value, dict) and value:
            return {str(k) for k in value}
    seeds = meta.get("seeds")
    return {str(s) for s in seeds} if isinstance(seeds, list) else set()


def load_path(path: Path) -> Submission:
    """A records folder or a single script from disk."""
    path = Path(path)
    if path.is_file():
        data = path.read_bytes()
        return Submission(name=path.name, where=str(path), files={path.name: data},
                          sizes={path.name: len(data)}, kind="script")
    if not path.is_dir():
        raise DataError(f"{path}: no such folder or file")
    files: dict[str, bytes] = {}
    sizes: dict[str, int] = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        sizes[rel] = file.stat().st_size
        if sizes[rel] <= MAX_FILE_BYTES:
            files[rel] = file.read_bytes()
    parent = path.resolve().parent
    track = parent.name if parent.name in TRACK_DIRS else None
    return Submission(name=path.name, where=str(path), files=files, sizes=sizes, track=track,
                      parent=f"{parent.parent.name}/{parent.name}")


def manifest_val_tokens(path: Path) -> tuple[int, int, str]:
    """(validation tokens, vocab size, description) from a challenge manifest.json or a demo dataset's demo.json."""
    path = Path(path)
    try:
        data = statefile.load_json(path)
    except DataError as err:
        raise DataError(f"cannot read the dataset manifest: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("tokens_val"), int):  # the demo dataset's demo.json
        vocab = data.get("vocab_size", 1024)
        return data["tokens_val"], vocab if isinstance(vocab, int) else 1024, f"{path.name}: demo dataset"
    datasets = data.get("datasets") if isinstance(data, dict) else None
    for dataset in datasets if isinstance(datasets, list) else []:
        stats = dataset.get("stats") if isinstance(dataset, dict) else None
        if isinstance(stats, dict) and isinstance(stats.get("tokens_val"), int) and isinstance(dataset.get("vocab_size"), int):
            return stats["tokens_val"], dataset["vocab_size"], f"{path.name}: {dataset.get('name', 'dataset')}"
    raise DataError(f"{path}: no validation token count (datasets[].stats.tokens_val or tokens_val)")
