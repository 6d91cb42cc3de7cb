"""The table of bad inputs: every case writes its files into a copy of a fresh workspace and runs `pgolf`.

A case names the files it writes (relative to the workspace root), the command line, the exit code it must
end with and a regular expression its one-line message must match. Values of `files`:

- `str` / `bytes`: the file's text or bytes;
- `DIR`: an (empty) folder where a file belongs; `FIFO`: a named pipe (a read that would block forever);
- in text, `HEAD` stands for the workspace's first commit (filled in when the file is written);
- a callable taking the path: anything else (shards, SQLite databases).

`recovery=True` marks the cases whose point is that pgolf repairs or replaces a file, so their files may
change; every other case must leave every file that existed before it byte-for-byte as it was.
"""

from __future__ import annotations

import json
import random
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_RANDOM = random.Random(14)  # fixed garbage: the same bytes every run


def garbage(n: int) -> bytes:
    return _RANDOM.randbytes(n)


HEAD = "{HEAD}"
DIR = object()
FIFO = object()

FileSpec = str | bytes | object | Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input, the command that meets it, and what that command must answer."""

    id: str
    area: str
    argv: tuple[str, ...]
    code: int
    message: str  # a regex searched in the last line of stderr (non-zero exit) or in all output (exit 0)
    files: dict[str, FileSpec] = field(default_factory=dict)
    recovery: bool = False
    xfail: str | None = None
    in_output: bool = False  # the message is in stdout (a --json report), not the last stderr line
    timeout: float = 90.0


CASES: list[Case] = []


def case(id: str, area: str, argv: str | list[str], code: int, message: str, files: dict | None = None,
         **kw: Any) -> None:
    CASES.append(Case(id, area, tuple(argv.split() if isinstance(argv, str) else argv), code, message,
                      dict(files or {}), **kw))


# -- builders ------------------------------------------------------------------------------------------

MIN_TOML = 'ruleset = "track_10min_16mb"\n'


def toml(extra: str) -> str:
    """A minimal pgolf.toml plus `extra`."""
    return MIN_TOML + extra


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


def entry(**over: Any) -> dict[str, Any]:
    """A valid settled paid-run budget entry, with `over` applied."""
    base = {"id": "a1b2c3d4e5f6", "kind": "run", "state": "settled", "estimated_usd": 10.0,
            "actual_usd": 8.0, "created_at": 1_760_000_000.0, "settled_at": 1_760_000_600.0, "gpus": 8,
            "seconds": 600.0, "description": "", "run_id": "r0001", "extra": {}}
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def budget(*entries: dict[str, Any], raw: Any = None) -> str:
    data = {"version": 1, "entries": list(entries)} if raw is None else raw
    return json.dumps(data)  # NaN and Infinity are written as the bare tokens Python's json reads back


BUDGET_TOML = toml("[budget]\ntotal_usd = 1000.0\nreserve_usd = 10.0\n")

COLUMNS = ("commit", "tier", "val_bpb", "artifact_bytes", "memory_gb", "status", "promoted", "cost_usd",
           "description", "source_item", "run_id", "parent_run", "seed", "steps", "train_seconds",
           "finished_at")


def row(**over: Any) -> str:
    base = {"commit": "0123456789abcdef0123456789abcdef01234567", "tier": "local", "val_bpb": "1.2345",
            "artifact_bytes": "15000000", "memory_gb": "1.0", "status": "keep", "promoted": "no",
            "cost_usd": "0.0", "description": "an experiment", "source_item": "", "run_id": "r0002",
            "parent_run": "", "seed": "1337", "steps": "100", "train_seconds": "60.0",
            "finished_at": "2026-01-01T00:00:00Z"}
    base.update({k: str(v) for k, v in over.items()})
    return "\t".join(base[c] for c in COLUMNS) + "\n"


def ledger(*rows: str) -> str:
    return "\t".join(COLUMNS) + "\n" + "".join(rows)


GOOD_ROW = row(run_id="r0001", status="baseline", val_bpb="1.3000", description="baseline")


def competitors(*entries: dict[str, Any], raw: Any = None) -> str:
    return json.dumps({"version": 1, "entries": list(entries)} if raw is None else raw)


def competitor(**over: Any) -> dict[str, Any]:
    base = {"pr_or_folder": "records/track_10min_16mb/2026-01-01_A", "author": "alice", "name": "A",
            "val_bpb": 1.2, "date": "2026-01-01", "track": "track_10min_16mb", "state": None,
            "source": "submission.json"}
    base.update(over)
    return base


def shard(tokens: list[int] | None = None, *, magic: int = 20240520, version: int = 1,
          count: int | None = None, cut: int = 0) -> Callable[[Path], None]:
    """A shard file: a 256-int header then uint16 tokens; `count` lies about the token count."""
    tokens = [1, 5, 6, 7] if tokens is None else tokens

    def write(path: Path) -> None:
        header = [magic, version, len(tokens) if count is None else count] + [0] * 253
        data = struct.pack("<256i", *header) + struct.pack(f"<{len(tokens)}H", *tokens)
        path.write_bytes(data[: len(data) - cut] if cut else data)
    return write


def sqlite_db(*statements: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        con = sqlite3.connect(path)
        for s in statements:
            con.execute(s)
        con.commit()
        con.close()
    return write


def real_research_db(truncate_to: int | None = None) -> Callable[[Path], None]:
    """A research.db made by pgolf's own store, optionally cut short."""
    def write(path: Path) -> None:
        from pgolf.research.store import ResearchStore

        ResearchStore(path).close() if hasattr(ResearchStore, "close") else ResearchStore(path)
        if truncate_to is not None:
            data = path.read_bytes()
            path.write_bytes(data[:truncate_to])
    return write


def utf16(text: str, encoding: str = "utf-16") -> bytes:
    return text.encode(encoding)


HOSTILE = "[/data/shards] [bold]x[/] [red]y"
NOT_UTF8 = b"\xff\xfe\xfa bad \x80\x81 bytes\n"
BIG = 40 * 1024 * 1024  # above every state file's size limit

LOG_OK = ("step:100/100 val_loss:2.0000 val_bpb:1.2000 train_time:60000ms step_avg:600.00ms\n"
          "Total submission size int8+zlib: 15000000 bytes\n"
          "final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.21234567\n")


# == pgolf.toml =========================================================================================
A = "pgolf.toml"
case("toml-not-utf8", A, "status", 2, r"pgolf\.toml.*not UTF-8", {"pgolf.toml": MIN_TOML.encode() + NOT_UTF8})
case("toml-utf16", A, "status", 2, r"pgolf\.toml.*not UTF-8", {"pgolf.toml": utf16(MIN_TOML)})
case("toml-nul-byte", A, "status", 2, r"pgolf\.toml.*invalid TOML", {"pgolf.toml": MIN_TOML + "\x00\n"})
case("toml-syntax", A, "status", 2, r"pgolf\.toml.*invalid TOML", {"pgolf.toml": "[budget\n"})
case("toml-deep-array", A, "status", 2, r"pgolf\.toml.*nest", {"pgolf.toml": toml("x = " + nested(5000) + "\n")})
case("toml-deep-inline", A, "status", 2, r"pgolf\.toml.*nest",
     {"pgolf.toml": toml("x = " + nested(3000, "{a = ", "}") + "\n")})
case("toml-deep-moderate", A, "status", 2, r"pgolf\.toml.*nest", {"pgolf.toml": toml("x = " + nested(200) + "\n")})
case("toml-huge", A, "status", 2, r"pgolf\.toml.*too large", {"pgolf.toml": MIN_TOML + "#" * (2 * 1024 * 1024) + "\n"})
case("toml-total-inf", A, "status", 2, r"budget\.total_usd.*finite", {"pgolf.toml": toml("[budget]\ntotal_usd = inf\n")})
case("toml-total-nan", A, "status", 2, r"budget\.total_usd.*finite", {"pgolf.toml": toml("[budget]\ntotal_usd = nan\n")})
case("toml-reserve-neg-inf", A, "status", 2, r"budget\.reserve_usd",
     {"pgolf.toml": toml("[budget]\nreserve_usd = -inf\n")})
case("toml-price-nan", A, "budget status", 2, r"budget\.price_per_gpu_hour.*finite",
     {"pgolf.toml": toml("[budget]\nprice_per_gpu_hour = nan\n")})
case("toml-llm-cap-inf", A, "budget status", 2, r"budget\.llm_cap_usd.*finite",
     {"pgolf.toml": toml("[budget]\nllm_cap_usd = inf\n")})
case("toml-interval-inf", A, "status", 2, r"min_seconds_between_paid_runs.*finite",
     {"pgolf.toml": toml("[budget]\nmin_seconds_between_paid_runs = inf\n")})
case("toml-total-negative", A, "status", 2, r"budget\.total_usd", {"pgolf.toml": toml("[budget]\ntotal_usd = -5\n")})
case("toml-total-string", A, "status", 2, r"budget\.total_usd",
     {"pgolf.toml": toml('[budget]\ntotal_usd = "lots"\n')})
case("toml-noise-seeds-huge", A, "status", 2, r"loop\.noise_seeds",
     {"pgolf.toml": toml("[loop]\nnoise_seeds = 1000000000000000000000000000000\n")})
case("toml-noise-seeds-large", A, "status", 2, r"loop\.noise_seeds", {"pgolf.toml": toml("[loop]\nnoise_seeds = 100000\n")})
case("toml-max-experiments-huge", A, "status", 2, r"loop\.max_experiments",
     {"pgolf.toml": toml("[loop]\nmax_experiments = 1000000000000000000000\n")})
case("toml-margin-huge", A, "status", 2, r"loop\.artifact_margin_bytes",
     {"pgolf.toml": toml("[loop]\nartifact_margin_bytes = 1000000000000000000000\n")})
case("toml-min-gain-nan", A, "status", 2, r"loop\.min_gain", {"pgolf.toml": toml("[loop]\nmin_gain = nan\n")})
case("toml-max-hours-inf", A, "status", 2, r"loop\.max_hours", {"pgolf.toml": toml("[loop]\nmax_hours = inf\n")})
case("toml-vocab-huge", A, "status", 2, r"data\.vocab_size", {"pgolf.toml": toml("[data]\nvocab_size = 100000000000000\n")})
case("toml-min-seeds-huge", A, "status", 2, r"rules\.min_seeds",
     {"pgolf.toml": toml("[rules]\nmin_seeds = 1000000000000000000\n")})
case("toml-gpu-count-huge", A, "status", 2, r"rules\.gpu_count", {"pgolf.toml": toml("[rules]\ngpu_count = 1000000000\n")})
case("toml-train-seconds-inf", A, "status", 2, r"rules\.train_seconds",
     {"pgolf.toml": toml("[rules]\ntrain_seconds = inf\n")})
case("toml-runpod-gpus-huge", A, "status", 2, r"tiers\.runpod\.gpu_count",
     {"pgolf.toml": toml("[tiers.runpod]\ngpu_count = 100000000000\n")})
case("toml-ssh-port-huge", A, "status", 2, r"tiers\.ssh\.port",
     {"pgolf.toml": toml('[tiers.ssh]\nhost = "h"\nport = 10000000\n')})
case("toml-llm-tokens-huge", A, "status", 2, r"llm\.max_tokens", {"pgolf.toml": toml("[llm]\nmax_tokens = 10000000000000\n")})
case("toml-llm-retries-huge", A, "status", 2, r"llm\.max_retries", {"pgolf.toml": toml("[llm]\nmax_retries = 100000000\n")})
case("toml-research-items-huge", A, "status", 2, r"max_items",
     {"pgolf.toml": toml("[research.sources.arxiv]\nmax_items = 1000000000000\n")})
case("toml-research-retries-huge", A, "status", 2, r"research\.max_retries",
     {"pgolf.toml": toml("[research]\nmax_retries = 1000000000\n")})
case("toml-command-empty", A, "status", 2, r"tiers\.local\.command.*empty",
     {"pgolf.toml": toml('[tiers.local]\ncommand = ""\n')})
case("toml-command-blank", A, "status", 2, r"tiers\.local\.command.*empty",
     {"pgolf.toml": toml('[tiers.local]\ncommand = "   "\n')})
case("toml-command-unbalanced", A, "status", 2, r"tiers\.local\.command.*quot",
     {"pgolf.toml": toml("[tiers.local]\ncommand = \"python 'train_gpt.py\"\n")})
case("toml-run-command-empty", A, "run --hours 0", 2, r"tiers\.local\.command.*empty",
     {"pgolf.toml": toml('[tiers.local]\ncommand = ""\n')})
case("toml-run-command-unbalanced", A, "run --hours 0", 2, r"tiers\.local\.command.*quot",
     {"pgolf.toml": toml("[tiers.local]\ncommand = 'python \"train_gpt.py'\n")})
case("toml-ssh-command-unbalanced", A, "status", 2, r"tiers\.ssh\.command.*quot",
     {"pgolf.toml": toml('[tiers.ssh]\nhost = "h"\ncommand = "torchrun \'x"\n')})
case("toml-agent-command-unbalanced", A, "status", 2, r"proposer\.agent_command.*quot",
     {"pgolf.toml": toml("[proposer]\nkind = \"agent\"\nagent_command = \"claude -p 'x\"\n")})
case("toml-timeout-nan", A, "status", 2, r"tiers\.local\.timeout_seconds",
     {"pgolf.toml": toml("[tiers.local]\ntimeout_seconds = nan\n")})
case("toml-wallclock-inf", A, "status", 2, r"tiers\.local\.wallclock_seconds",
     {"pgolf.toml": toml("[tiers.local]\nwallclock_seconds = inf\n")})
case("toml-search-low-nan", A, "status", 2, r"search_space\.LR\.low",
     {"pgolf.toml": toml('[proposer.search_space]\nLR = { type = "float", low = nan, high = 1.0 }\n')})
case("toml-env-int", A, "status", 2, r"tiers\.local\.env\.X",
     {"pgolf.toml": toml("[tiers.local]\nenv = { X = 1 }\n")})
case("toml-markup-key", A, "status", 2, r"\[/x\]", {"pgolf.toml": toml('["[/x]"]\na = 1\n')})
case("toml-markup-ruleset", A, "status", 2, r"\[/bold\]", {"pgolf.toml": 'ruleset = "[/bold]"\n'})
case("toml-is-fifo", A, "status", 2, r"no pgolf\.toml", {"pgolf.toml": FIFO})

# == .env =============================================================================================
E = ".env"
ENV_ARGV = "check --pr 1 --repo openai/parameter-golf --api-url http://127.0.0.1:9"
case("env-not-utf8", E, ENV_ARGV, 2, r"\.env.*not UTF-8", {".env": b"GITHUB_TOKEN=\xff\xfe\n"})
case("env-directory", E, ENV_ARGV, 2, r"\.env.*directory", {".env": DIR})
case("env-huge", E, ENV_ARGV, 2, r"\.env.*too large", {".env": "#" * BIG})
case("env-utf16", E, ENV_ARGV, 2, r"\.env.*not UTF-8", {".env": utf16("GITHUB_TOKEN=x\n")})
case("env-fifo", E, ENV_ARGV, 2, r"\.env.*not a regular file", {".env": FIFO})

# == shards (data verify) ===============================================================================
S = "shards"
D = "ds_sp1024"
VAL, TRAIN = f"{D}/fineweb_val_000000.bin", f"{D}/fineweb_train_000000.bin"
case("shard-val-zero-tokens", S, f"data verify {D}", 1, r"fineweb_val_000000\.bin.*no tokens|val split.*no tokens",
     {VAL: shard([]), TRAIN: shard()})
case("shard-train-zero-tokens", S, f"data verify {D}", 1, r"fineweb_train_000000\.bin.*no tokens|train split.*no tokens",
     {VAL: shard(), TRAIN: shard([])})
case("shard-all-zero", S, f"data verify {D}", 1, r"no tokens", {VAL: shard([]), TRAIN: shard([])})
case("shard-short-header", S, f"data verify {D}", 1, r"shorter than its 1024-byte header",
     {VAL: b"\x00" * 100, TRAIN: shard()})
case("shard-bad-magic", S, f"data verify {D}", 1, r"bad magic", {VAL: shard(magic=7), TRAIN: shard()})
case("shard-bad-version", S, f"data verify {D}", 1, r"unsupported shard version", {VAL: shard(version=9), TRAIN: shard()})
case("shard-count-lies", S, f"data verify {D}", 1, r"does not match header token count",
     {VAL: shard(count=10**6), TRAIN: shard()})
case("shard-negative-count", S, f"data verify {D}", 1, r"does not match header token count",
     {VAL: shard(count=-5), TRAIN: shard()})
case("shard-truncated", S, f"data verify {D}", 1, r"does not match", {VAL: shard(cut=1), TRAIN: shard()})
case("shard-out-of-range", S, f"data verify {D}", 1, r"out of range for vocab size 1024",
     {VAL: shard([1, 2000]), TRAIN: shard()})
case("shard-no-bos", S, f"data verify {D}", 1, r"does not start with BOS", {VAL: shard([5, 6]), TRAIN: shard()})
case("shard-is-directory", S, f"data verify {D}", 1, r"fineweb_val_000000\.bin.*(directory|cannot read)",
     {VAL: DIR, TRAIN: shard()})
case("shard-is-fifo", S, f"data verify {D}", 1, r"fineweb_val_000000\.bin.*not a regular file",
     {VAL: FIFO, TRAIN: shard()})
case("shard-no-val", S, f"data verify {D}", 1, r"no fineweb_val_\*\.bin shards", {TRAIN: shard()})
case("shard-dir-missing", S, "data verify nowhere_sp1024", 1, r"nowhere_sp1024: not a dataset folder")
case("shard-dir-is-file", S, "data verify afile", 1, r"afile: not a dataset folder", {"afile": "x"})
case("shard-markup-dir", S, ["data", "verify", "d[/x]_sp1024"], 1, r"d\[/x\]_sp1024: not a dataset folder")
case("shard-markup-dir-exists", S, ["data", "verify", "e[/x]"], 1, r"no fineweb_val",
     {"e[/x]/fineweb_train_000000.bin": shard()})
case("shard-vocab-flag-too-small", S, f"data verify {D} --vocab-size 4", 1, r"out of range for vocab size 4",
     {VAL: shard(), TRAIN: shard()})
case("shard-good", S, f"data verify {D}", 0, r"ok: 4 val tokens, 4 train tokens", {VAL: shard(), TRAIN: shard()})
case("shard-json-zero", S, f"data verify {D} --json", 1, r'"ok": false,[^]]*no tokens', {VAL: shard([]), TRAIN: shard()},
     in_output=True)

# == tokenizers =========================================================================================
T = "tokenizers"
case("tok-verify-directory", T, f"data verify {D} --tokenizer tokdir", 1, r"tokdir.*is a directory",
     {VAL: shard(), TRAIN: shard(), "tokdir/x": "x"})
case("tok-verify-missing", T, f"data verify {D} --tokenizer nope.model", 1, r"nope\.model.*not found",
     {VAL: shard(), TRAIN: shard()})
case("tok-verify-garbage", T, f"data verify {D} --tokenizer bad.model", 1, r"bad\.model",
     {VAL: shard(), TRAIN: shard(), "bad.model": b"\x00garbage\xff" * 10})
case("tok-verify-empty", T, f"data verify {D} --tokenizer empty.model", 1, r"empty\.model",
     {VAL: shard(), TRAIN: shard(), "empty.model": b""})
case("tok-verify-fifo", T, f"data verify {D} --tokenizer pipe.model", 1, r"pipe\.model.*not a regular file",
     {VAL: shard(), TRAIN: shard(), "pipe.model": FIFO})
case("tok-score-directory", T, ["score", "--tokenizer", "tokdir", "--val", f"{D}/fineweb_val_*.bin"], 1,
     r"tokdir.*is a directory", {VAL: shard(), "tokdir/x": "x"})
case("tok-score-missing", T, ["score", "--tokenizer", "nope.model", "--val", f"{D}/fineweb_val_*.bin"], 1,
     r"nope\.model.*not found", {VAL: shard()})
case("tok-score-garbage", T, ["score", "--tokenizer", "bad.model", "--val", f"{D}/fineweb_val_*.bin"], 1,
     r"bad\.model", {VAL: shard(), "bad.model": b"\x01\x02\x03junk"})
case("tok-score-markup", T, ["score", "--tokenizer", "t[/x].model", "--val", f"{D}/fineweb_val_*.bin"], 1,
     r"t\[/x\]\.model", {VAL: shard(), "t[/x].model": b"junk"})
case("tok-audit-directory", T, ["audit", "lut", "train_gpt.py", "--tokenizer", "tokdir"], 1, r"tokdir.*is a directory",
     {"tokdir/x": "x"})

# == logs ==============================================================================================
L = "logs"
case("log-utf16", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567', {"run.log": utf16(LOG_OK)})
case("log-utf16-le-bom", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567',
     {"run.log": b"\xff\xfe" + LOG_OK.encode("utf-16-le")})
case("log-utf16-be-bom", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567',
     {"run.log": b"\xfe\xff" + LOG_OK.encode("utf-16-be")})
case("log-utf16-no-bom", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567',
     {"run.log": LOG_OK.encode("utf-16-le")})
case("log-utf8-bom", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567',
     {"run.log": b"\xef\xbb\xbf" + LOG_OK.encode()})
case("log-directory", L, "logs parse logdir", 1, r"logdir.*directory", {"logdir/x": "x"})
case("log-missing", L, "logs parse nope.log", 1, r"nope\.log: cannot read log \(not found\)")
case("log-fifo", L, "logs parse pipe.log", 1, r"pipe\.log.*not a regular file", {"pipe.log": FIFO})
case("log-empty", L, "logs parse run.log", 0, r"no final score line", {"run.log": ""})
case("log-binary", L, "logs parse run.log", 0, r"no final score line", {"run.log": garbage(4096)})
case("log-markup-traceback", L, "logs parse run.log", 0, r"crashed: FileNotFoundError: \[/data/shards\]",
     {"run.log": "Traceback (most recent call last):\n  File x\nFileNotFoundError: [/data/shards] missing\n"})
case("log-markup-name", L, ["logs", "parse", "a[/x].log"], 0, r"x\]\.log", {"a[/x].log": LOG_OK})
case("log-markup-name-incomplete", L, ["logs", "parse", "b[/x].log"], 0, r"b\[/x\]\.log: no final score", {"b[/x].log": "x\n"})
case("log-markup-name-json", L, ["logs", "parse", "a[/x].log", "--json"], 0, r'a\[/x\]\.log', {"a[/x].log": LOG_OK})
case("log-markup-line", L, "logs parse run.log", 0, r"no final score line",
     {"run.log": "[bold]hello[/] [/data] [red]\nstep:1/2 train_loss:3.0\n"})
case("log-inf-score", L, "logs parse run.log --json", 0, r'"val_bpb": null',
     {"run.log": "final_int8_zlib_roundtrip_exact val_loss:inf val_bpb:inf\n"})
case("log-nan-score", L, "logs parse run.log --json", 0, r'"val_bpb": null',
     {"run.log": "final_int8_zlib_roundtrip_exact val_loss:nan val_bpb:nan\n"})
case("log-overflow-score", L, "logs parse run.log --json", 0, r'"val_bpb": null',
     {"run.log": "final_int8_zlib_roundtrip_exact val_loss:1e999 val_bpb:1e999\n"})
case("log-nul-bytes", L, "logs parse run.log --json", 0, r'"val_bpb": 1\.21234567',
     {"run.log": "\x00\x00\n" + LOG_OK})
case("log-long-line", L, "logs parse run.log", 0, r"no final score line", {"run.log": "x" * 5_000_000})
case("log-huge-int", L, "logs parse run.log --json", 0, r'"steps": null|"steps": \d',
     {"run.log": "step:" + "9" * 5000 + "/1 train_loss:1.0\n"})

# == submission.json / records folders ===================================================================
R = "records"
REC = "recs/records/track_10min_16mb/2026-01-01_A"


def rec(submission: str | bytes | object, **more: FileSpec) -> dict[str, FileSpec]:
    files = {f"{REC}/submission.json": submission}
    files.update({f"{REC}/{k}": v for k, v in more.items()})
    return files


def sub(**over: Any) -> str:
    base = {"name": "A", "author": "alice", "github_id": "alice", "val_bpb": 1.2, "date": "2026-01-01",
            "track": "10min_16mb"}
    base.update(over)
    return json.dumps(base)


SCAN = "competitors scan recs --json"
case("sub-nan", R, SCAN, 0, r'"val_bpb": null', rec(sub(val_bpb=float("nan"))))
case("sub-inf", R, SCAN, 0, r'"val_bpb": null', rec(sub(val_bpb=float("inf"))))
case("sub-neg-inf", R, SCAN, 0, r'"val_bpb": null', rec(sub(val_bpb=float("-inf"))))
case("sub-overflow", R, SCAN, 0, r'"val_bpb": null', rec('{"name": "A", "val_bpb": 1e999}'))
case("sub-nan-frontier", R, "competitors scan recs --json", 0, r'"frontier": \{\s*"track_10min_16mb": \{[^}]*"val_bpb": 1\.3',
     {**rec(sub(val_bpb=float("nan"))), "recs/records/track_10min_16mb/2026-01-02_B/submission.json": sub(name="B", val_bpb=1.3)})
case("sub-nan-not-stored", R, "competitors scan recs", 0, r"2 entries",
     {**rec(sub(val_bpb=float("nan"))), "recs/records/track_10min_16mb/2026-01-02_B/submission.json": sub(name="B", val_bpb=1.3)})
case("sub-string-bpb", R, SCAN, 0, r'"val_bpb": null', rec(sub(val_bpb="1.2")))
case("sub-bool-bpb", R, SCAN, 0, r'"val_bpb": null', rec(sub(val_bpb=True)))
case("sub-not-utf8", R, SCAN, 0, r"submission\.json", rec(b'{"name": "\xff\xfe", "val_bpb": 1.2}', **{"README.md": "# A\nval_bpb: 1.2500\n"}))
case("sub-deep", R, SCAN, 0, r"submission\.json.*nest", rec('{"a": ' + nested(100_000) + "}", **{"README.md": "val_bpb: 1.2500\n"}))
case("sub-directory", R, SCAN, 0, r"submission\.json", rec(DIR, **{"README.md": "val_bpb: 1.2500\n"}))
case("sub-huge", R, SCAN, 0, r"submission\.json.*too large", rec('{"pad": "' + "x" * BIG + '"}', **{"README.md": "val_bpb: 1.2500\n"}))
case("sub-list", R, SCAN, 0, r"not a JSON object", rec("[1, 2]", **{"README.md": "val_bpb: 1.2500\n"}))
case("sub-name-markup", R, "competitors scan recs", 0, r"\[/x\] \[bold\]", rec(sub(name="[/x] [bold]")))
case("sub-author-markup", R, "competitors scan recs", 0, r"\[/evil\]", rec(sub(author="[/evil]", github_id=None)))
case("sub-name-dict", R, SCAN, 0, r'"name": "\{', rec(sub(name={"a": 1})))
case("sub-folder-markup", R, "competitors scan recs", 0, r"records/track_10min_16mb/\[red\]y",
     {"recs/records/track_10min_16mb/[red]y/submission.json": sub()})
case("sub-scan-missing", R, "competitors scan nowhere", 1, r"nowhere: no such file or folder")
case("sub-scan-empty-tree", R, "competitors scan recs", 1, r"none of 1 records folders has a score",
     {f"{REC}/notes.txt": "x"})
case("sub-scan-readme-garbage", R, "competitors scan README.md", 1, r"README\.md", {"README.md": garbage(2048)})
SCHEMA_FAIL = r'"submission_schema",\s*"status": "FAIL",[^}]*'
case("sub-check-nan", R, ["check", REC, "--json"], 1, SCHEMA_FAIL + "val_bpb: nan is not a finite number",
     rec(sub(val_bpb=float("nan")), **{"train_gpt.py": "print(1)\n"}), in_output=True)
case("sub-check-deep", R, ["check", REC, "--json"], 1, SCHEMA_FAIL + "nested deeper than 64",
     rec('{"a": ' + nested(100_000) + "}", **{"train_gpt.py": "print(1)\n"}), in_output=True)
case("sub-check-not-utf8", R, ["check", REC, "--json"], 1, SCHEMA_FAIL + "not UTF-8",
     rec(b"\xff\xfe{}", **{"train_gpt.py": "print(1)\n"}), in_output=True)
case("sub-stats-nan", R, ["stats", "compare", REC, "1.2"], 1, r".",
     rec(sub(val_bpb=float("nan"), seed_results={"1": float("nan")}), **{"train_seed1.log": LOG_OK}))
case("manifest-not-utf8", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json.*not UTF-8",
     {"m.json": b"\xff{}"})
case("manifest-deep", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json.*nest",
     {"m.json": nested(100_000)})
case("manifest-directory", R, ["check", "train_gpt.py", "--manifest", "mdir"], 1, r"mdir.*directory", {"mdir/x": "x"})
case("manifest-nan", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json.*tokens_val.*finite",
     {"m.json": '{"tokens_val": NaN}'})
case("manifest-huge", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json.*too large",
     {"m.json": '{"pad": "' + "x" * BIG + '"}'})
case("manifest-list", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json.*no validation token count",
     {"m.json": "[]"})
case("manifest-datasets-garbage", R, ["check", "train_gpt.py", "--manifest", "m.json"], 1, r"m\.json",
     {"m.json": '{"datasets": 5}'})

# == results.tsv =========================================================================================
Q = "results.tsv"
case("tsv-nan-json", Q, "ledger --json", 0, r"line 3 is damaged.*val_bpb", {"results.tsv": ledger(GOOD_ROW, row(val_bpb="nan"))})
case("tsv-inf-json", Q, "ledger --json", 0, r"line 3 is damaged.*val_bpb", {"results.tsv": ledger(GOOD_ROW, row(val_bpb="inf"))})
case("tsv-neg-inf-best", Q, "status --json", 0, r'"val_bpb": 1\.3',
     {"results.tsv": ledger(GOOD_ROW, row(val_bpb="-inf"))})
case("tsv-neg-inf-status", Q, "status", 0, r"line 3 is damaged", {"results.tsv": ledger(GOOD_ROW, row(val_bpb="-inf"))})
case("tsv-cost-nan", Q, "ledger --json", 0, r"line 3 is damaged.*cost_usd", {"results.tsv": ledger(GOOD_ROW, row(cost_usd="nan"))})
case("tsv-memory-inf", Q, "status --json", 0, r'"line": 3,\s*"reason": "column memory_gb',
     {"results.tsv": ledger(GOOD_ROW, row(memory_gb="inf"))})
case("tsv-seconds-nan", Q, "ledger --json", 0, r"line 3 is damaged.*train_seconds",
     {"results.tsv": ledger(GOOD_ROW, row(train_seconds="NaN"))})
case("tsv-huge-int", Q, "ledger --json", 0, r"line 3 is damaged.*artifact_bytes",
     {"results.tsv": ledger(GOOD_ROW, row(artifact_bytes="9" * 5000))})
case("tsv-directory", Q, "ledger", 1, r"results\.tsv.*directory", {"results.tsv": DIR})
case("tsv-directory-status", Q, "status", 1, r"results\.tsv.*directory", {"results.tsv": DIR})
case("tsv-fifo", Q, "ledger", 1, r"results\.tsv.*not a regular file", {"results.tsv": FIFO})
case("tsv-not-utf8", Q, "ledger", 0, r"line 2 is damaged", {"results.tsv": ledger().encode() + b"\xff\xfe\t\x80\n" + GOOD_ROW.encode()})
case("tsv-binary", Q, "ledger", 0, r"damaged", {"results.tsv": ledger() + "\x00\x01\x02\n"})
case("tsv-markup-description", Q, "ledger", 0, r"\[/data/shards\]", {"results.tsv": ledger(row(description=HOSTILE))})
case("tsv-markup-status-best", Q, "status", 0, r"\[/data/shards\]", {"results.tsv": ledger(row(description=HOSTILE))})
case("tsv-markup-damaged", Q, "ledger", 0, r"damaged", {"results.tsv": ledger("[/x]\t[bold]\n")})
case("tsv-markup-tier", Q, "status", 0, r"\[/t\]", {"results.tsv": ledger(row(tier="[/t]"))})
case("tsv-report-nan", Q, "report --out r.html", 0, r"wrote .*r\.html",
     {"results.tsv": ledger(GOOD_ROW, row(val_bpb="nan"), row(run_id="r0003", val_bpb="-inf", status="keep"))})
case("tsv-report-markup", Q, "report --out r.html", 0, r"wrote .*r\.html", {"results.tsv": ledger(row(description=HOSTILE))})
case("tsv-header-only-json", Q, "ledger --json", 0, r"\[\]", {"results.tsv": ledger()})
case("tsv-huge-file-status", Q, "status --json", 0, r'"runs": 1', {"results.tsv": ledger(GOOD_ROW) + "#" * 3_000_000 + "\n"})

# == a run folder's result.json (read by the dashboard report and the loop) ==================================
RJ = ".pgolf/runs/r0002/result.json"
RUNROW = {"results.tsv": ledger(GOOD_ROW, row())}
case("result-nan-curve", "run folders", "report --out r.html", 0, r"wrote .*r\.html",
     {**RUNROW, RJ: '{"status": "ok", "val_bpb": 1.2, "curve": [{"step": 1, "val_bpb": NaN}, {"step": 2, "val_bpb": 1.3}]}'})
case("result-nan-score", "run folders", "report --out r.html", 0, r"wrote .*r\.html",
     {**RUNROW, RJ: '{"status": "ok", "val_bpb": NaN, "artifact_bytes": Infinity}'})
case("result-deep", "run folders", "report --out r.html", 0, r"wrote .*r\.html", {**RUNROW, RJ: nested(100_000)})
case("result-directory", "run folders", "report --out r.html", 0, r"wrote .*r\.html", {**RUNROW, RJ: DIR})
case("result-not-utf8", "run folders", "report --out r.html", 0, r"wrote .*r\.html", {**RUNROW, RJ: b"\xff\xfe{"})
case("result-log-markup", "run folders", "report --out r.html", 0, r"wrote .*r\.html",
     {**RUNROW, ".pgolf/runs/r0002/train.log": "[/data/shards] <script>alert(1)</script>\n"})

# == budget.json ==========================================================================================
B = "budget.json"
BJ = ".pgolf/budget.json"


def bcase(id: str, files_json: str, message: str, argv: str = "budget status", code: int = 1, **kw: Any) -> None:
    case(id, B, argv, code, message, {"pgolf.toml": BUDGET_TOML, BJ: files_json}, **kw)


bcase("budget-negative-actual", budget(entry(actual_usd=-1000)), r"budget\.json: entry 0 \(a1b2c3d4e5f6\).*actual_usd")
bcase("budget-nan-actual", budget(entry(actual_usd=float("nan"))), r"budget\.json: entry 0.*actual_usd.*finite")
bcase("budget-inf-actual", budget(entry(actual_usd=float("inf"))), r"budget\.json: entry 0.*actual_usd.*finite")
bcase("budget-neg-inf-actual", budget(entry(actual_usd=float("-inf"))), r"budget\.json: entry 0.*actual_usd.*finite")
bcase("budget-overflow-actual", '{"version": 1, "entries": [' + json.dumps(entry())[:-1] + ', "seconds": 1e999}]}',
      r"budget\.json.*seconds.*finite")
bcase("budget-nan-estimated", budget(entry(state="reserved", actual_usd=None, settled_at=None, estimated_usd=float("nan"))),
      r"budget\.json: entry 0.*estimated_usd.*finite")
bcase("budget-negative-estimated", budget(entry(state="reserved", actual_usd=None, settled_at=None, estimated_usd=-50)),
      r"budget\.json: entry 0.*estimated_usd")
bcase("budget-second-entry", budget(entry(), entry(id="bad000000001", actual_usd=-3)), r"entry 1 \(bad000000001\).*actual_usd")
bcase("budget-unknown-state", budget(entry(state="paid")), r"entry 0.*state.*paid")
bcase("budget-unknown-kind", budget(entry(kind="gift")), r"entry 0.*kind.*gift")
bcase("budget-created-nan", budget(entry(created_at=float("nan"))), r"entry 0.*created_at.*finite")
bcase("budget-created-negative", budget(entry(created_at=-1.0)), r"entry 0.*created_at")
bcase("budget-created-future", budget(entry(created_at=1e15, settled_at=1e15)), r"entry 0.*created_at.*future")
bcase("budget-settled-before-created", budget(entry(settled_at=1_000_000_000.0)), r"entry 0.*settled_at.*before")
bcase("budget-gpus-negative", budget(entry(gpus=-1)), r"entry 0.*gpus")
bcase("budget-gpus-string", budget(entry(gpus="8")), r"entry 0.*gpus.*integer")
bcase("budget-gpus-float", budget(entry(gpus=1.5)), r"entry 0.*gpus.*integer")
bcase("budget-gpus-huge", budget(entry(gpus=10**12)), r"entry 0.*gpus")
bcase("budget-id-int", budget(entry(id=5)), r"entry 0.*id.*string")
bcase("budget-actual-string", budget(entry(actual_usd="8.0")), r"entry 0.*actual_usd.*number")
bcase("budget-actual-bool", budget(entry(actual_usd=True)), r"entry 0.*actual_usd.*number")
bcase("budget-settled-no-actual", budget(entry(actual_usd=None)), r"entry 0.*settled.*actual_usd")
bcase("budget-missing-id", budget(entry(id=_DROP)), r"entry 0.*missing.*id")
bcase("budget-missing-created", budget(entry(created_at=_DROP)), r"entry 0.*missing.*created_at")
bcase("budget-unknown-field", budget(entry(bonus=1)), r"entry 0.*unknown.*bonus")
bcase("budget-extra-not-dict", budget(entry(extra=[1])), r"entry 0.*extra")
bcase("budget-entry-string", budget(raw={"version": 1, "entries": ["x"]}), r"entry 0.*not a JSON object")
bcase("budget-entries-dict", budget(raw={"version": 1, "entries": {}}), r"entries.*list")
bcase("budget-top-list", budget(raw=[1, 2]), r"budget\.json.*JSON object")
bcase("budget-invalid-json", '{"entries": [', r"budget\.json.*not valid JSON")
bcase("budget-empty-file", "", r"budget\.json.*not valid JSON")
bcase("budget-not-utf8", b'{"entries": [], "x": "\xff"}', r"budget\.json.*not UTF-8")
bcase("budget-utf16", utf16('{"entries": []}'), r"budget\.json.*not UTF-8")
bcase("budget-deep", '{"entries": [], "x": ' + nested(100_000) + "}", r"budget\.json.*nest")
bcase("budget-huge", '{"entries": [], "pad": "' + "x" * BIG + '"}', r"budget\.json.*too large")
bcase("budget-nan-llm", budget(entry(kind="llm", estimated_usd=float("nan"), actual_usd=float("nan"), gpus=0, run_id="")),
      r"entry 0.*finite")
bcase("budget-negative-llm", budget(entry(kind="llm", estimated_usd=-100, actual_usd=-100, gpus=0, run_id="")),
      r"entry 0.*estimated_usd")
bcase("budget-history-damaged", budget(entry(actual_usd=float("nan"))), r"entry 0.*actual_usd", argv="budget history --json")
bcase("budget-status-damaged", budget(entry(actual_usd=-1000)), r"entry 0.*actual_usd", argv="status")
bcase("budget-status-json-damaged", budget(entry(actual_usd=float("nan"))), r"entry 0.*actual_usd", argv="status --json")
bcase("budget-json-damaged", budget(entry(actual_usd=float("nan"))), r"entry 0.*actual_usd", argv="budget status --json")
bcase("budget-markup-description", budget(entry(description=HOSTILE, run_id="[/r]")), r"\[/data/shards\]",
      argv="budget history", code=0)
bcase("budget-markup-id", budget(entry(id="[/bold]", actual_usd=-1)), r"entry 0 \(\[/bold\]\)")
bcase("budget-valid", budget(entry()), r"spent\s+\$8\.00", code=0)
case("budget-directory", B, "budget status", 1, r"budget\.json.*directory", {"pgolf.toml": BUDGET_TOML, BJ: DIR})
case("budget-fifo", B, "budget status", 1, r"budget\.json.*not a regular file", {"pgolf.toml": BUDGET_TOML, BJ: FIFO})
case("budget-directory-status", B, "status", 1, r"budget\.json.*directory", {"pgolf.toml": BUDGET_TOML, BJ: DIR})

# == research.db ==========================================================================================
Y = "research.db"
RDB = ".pgolf/research.db"
for argv in ("research list", "research show arxiv:1", "research export --jsonl --out out.jsonl", "competitors list"):
    slug = "-".join(argv.split()[:2])
    case(f"db-garbage-{slug}", Y, argv, 1, r"research\.db.*(not a database|damaged|unreadable)", {RDB: garbage(8192)})
    case(f"db-foreign-{slug}", Y, argv, 1, r"research\.db",
         {RDB: sqlite_db("CREATE TABLE items (a)", "CREATE TABLE other (x INTEGER)")})
case("db-foreign-only", Y, "research list", 1, r"research\.db: not a pgolf research database \(tables other\)",
     {RDB: sqlite_db("CREATE TABLE other (x INTEGER)")})
case("db-truncated", Y, "research list", 1, r"research\.db", {RDB: real_research_db(truncate_to=700)})
case("db-empty-header", Y, "research list", 1, r"research\.db", {RDB: b"SQLite format 3\x00" + b"\x00" * 84})
case("db-directory", Y, "research list", 1, r"research\.db.*(directory|unreadable|cannot)", {RDB: DIR})
case("db-text-file", Y, "research list --json", 1, r"research\.db", {RDB: "not a database at all\n" * 100})
case("db-garbage-report", Y, "report --out r.html", 0, r"wrote .*r\.html", {RDB: garbage(8192)})  # a banner in the page
case("db-garbage-inject", Y, "research inject", 1, r"research\.db", {RDB: garbage(8192)})

# == competitors.json =======================================================================================
C = "competitors.json"
CJ = ".pgolf/competitors.json"
case("comp-nan-frontier", C, "competitors list --json", 0, r'"frontier": \{\s*"track_10min_16mb": \{[^}]*"val_bpb": 1\.2',
     {CJ: competitors(competitor(), competitor(pr_or_folder="records/track_10min_16mb/X", name="X", val_bpb=float("nan")))})
case("comp-neg-inf", C, "competitors list --json", 0, r'"frontier": \{\s*"track_10min_16mb": \{[^}]*"val_bpb": 1\.2',
     {CJ: competitors(competitor(), competitor(pr_or_folder="records/track_10min_16mb/X", name="X", val_bpb=float("-inf")))})
case("comp-inf-table", C, "competitors list", 0, r"frontier track_10min_16mb: 1\.2000",
     {CJ: competitors(competitor(), competitor(pr_or_folder="records/track_10min_16mb/X", name="X", val_bpb=float("inf")))})
case("comp-string-bpb", C, "competitors list", 1, r"competitors\.json: entry 0.*val_bpb", {CJ: competitors(competitor(val_bpb="1.1"))})
case("comp-name-int", C, "competitors list", 1, r"competitors\.json: entry 0.*name", {CJ: competitors(competitor(name=5))})
case("comp-missing-track", C, "competitors list", 1, r"competitors\.json: entry 0.*track",
     {CJ: competitors({k: v for k, v in competitor().items() if k != "track"})})
case("comp-entry-string", C, "competitors list", 1, r"competitors\.json: entry 0.*not a JSON object", {CJ: competitors("x")})
case("comp-entries-dict", C, "competitors list", 1, r"competitors\.json.*entries.*list", {CJ: competitors(raw={"entries": {}})})
case("comp-top-list", C, "competitors list", 1, r"competitors\.json.*JSON object", {CJ: "[]"})
case("comp-invalid", C, "competitors list", 1, r"competitors\.json.*not valid JSON", {CJ: "{"})
case("comp-not-utf8", C, "competitors list", 1, r"competitors\.json.*not UTF-8", {CJ: b'{"entries": ["\xff"]}'})
case("comp-deep", C, "competitors list", 1, r"competitors\.json.*nest", {CJ: '{"entries": ' + nested(100_000) + "}"})
case("comp-directory", C, "competitors list", 1, r"competitors\.json.*directory", {CJ: DIR})
case("comp-huge", C, "competitors list", 1, r"competitors\.json.*too large", {CJ: '{"pad": "' + "x" * BIG + '"}'})
case("comp-markup", C, "competitors list", 0, r"\[/data/shards\]", {CJ: competitors(competitor(name=HOSTILE, author="[/a]"))})
case("comp-scan-into-damaged", C, "competitors scan recs", 1, r"competitors\.json.*entry 0",
     {CJ: competitors(competitor(val_bpb="x")), **rec(sub())})
case("comp-markup-track", C, "competitors list", 0, r"frontier \[/t\]: 1\.2000", {CJ: competitors(competitor(track="[/t]"))})
case("comp-report-nan", C, "report --out r.html", 0, r"wrote .*r\.html",
     {CJ: competitors(competitor(val_bpb=float("nan")))})

# == verified.json, pods, promotion files ====================================================================
V = "state files"
case("verified-not-utf8", V, "research inject", 1, r"verified\.json.*not UTF-8", {".pgolf/verified.json": b"\xff"})
case("verified-deep", V, "research inject", 1, r"verified\.json.*nest", {".pgolf/verified.json": nested(100_000)})
case("verified-wrong-shape", V, "research inject", 1, r"verified\.json.*verifications", {".pgolf/verified.json": '{"verifications": 3}'})
case("verified-directory", V, "research inject", 1, r"verified\.json.*directory", {".pgolf/verified.json": DIR})

case("program-not-utf8", V, "research inject", 0, r"rewrote .*program\.md", {"program.md": NOT_UTF8}, recovery=True)
case("program-directory", V, "research inject", 1, r"program\.md: is a directory", {"program.md": DIR})

# == inflight.json (the next `pgolf run` recovers it: a recovery case) ==========================================
INFLIGHT = "inflight.json"
IJ = ".pgolf/running/r0099.json"  # one file per local run in flight
RUN = "run --hours 0"  # the safe-start check then refuses (no data here): exit 2, after the recovery
# Two scored baseline rows: the noise floor is known, so `--hours 0` recovers and stops without training.
FLOOR = {"results.tsv": ledger(row(run_id="r0001", status="baseline", seed=1337, val_bpb="1.30", commit=HEAD),
                               row(run_id="r0002", status="baseline", seed=1338, val_bpb="1.31", commit=HEAD))}
case("inflight-not-utf8", INFLIGHT, RUN, 2, r"r0099\.json.*not UTF-8", {**FLOOR, IJ: b"\xff\xfe"}, recovery=True, timeout=180, in_output=True)
case("inflight-directory", INFLIGHT, RUN, 1, r"r0099\.json.*directory", {**FLOOR, IJ: DIR}, recovery=True, timeout=180, in_output=True)
case("inflight-deep", INFLIGHT, RUN, 2, r"r0099\.json.*nest", {**FLOOR, IJ: nested(100_000)}, recovery=True, timeout=180, in_output=True)
case("inflight-wrong-types", INFLIGHT, RUN, 2, r"r0099\.json.*run_id must be a string",
     {**FLOOR, IJ: json.dumps({"run_id": 5, "phase": "running", "parent_commit": "x", "description": "d"})},
     recovery=True, timeout=180, in_output=True)
case("inflight-list", INFLIGHT, RUN, 2, r"r0099\.json.*not a JSON object", {**FLOOR, IJ: "[1]"}, recovery=True, timeout=180, in_output=True)

# == paths and arguments carrying markup =====================================================================
M = "markup"
case("markup-measure-script", M, ["measure", "--script", "s[/x].py", "--model", "m[/y].bin"], 0, r"s\[/x\]\.py",
     {"s[/x].py": "print(1)\n", "m[/y].bin": b"\x00" * 100})
case("markup-init-dir", M, ["init", "w[/x]"], 0, r"w\[/x\]")
case("markup-report-out", M, ["report", "--out", "r[/x].html"], 0, r"r\[/x\]\.html", {"r[/keep": ""})
case("markup-export-out", M, ["research", "export", "--jsonl", "--out", "o[/x].jsonl"], 0, r"o\[/x\]\.jsonl")
case("markup-research-show", M, ["research", "show", "[/bold]"], 1, r"no research item '\[/bold\]'")
case("markup-promote-run", M, ["promote", "[/r]", "--dry-run"], 2, r"no remote tier in pgolf\.toml")
case("markup-data-verify-file", M, ["data", "verify", "ds_sp1024"], 1, r"fineweb_train_\[red\]000\.bin: bad magic",
     {"ds_sp1024/fineweb_val_000000.bin": shard(), "ds_sp1024/fineweb_train_[red]000.bin": shard(magic=4)})

case("markup-usage-error", M, ["ledger", "--last", "[/x]"], 2, r"Invalid value for .*'--last'", in_output=True)  # typer's usage box
case("markup-unknown-command", M, ["[/x]"], 2, r"No such command '\[/x\]'", in_output=True)  # typer's usage box
case("markup-tier-option", M, ["research", "list", "--tier", "[/x]"], 2, r"unknown tier '\[/x\]'")
case("markup-workspace-option", M, ["--workspace", "/nonexistent/w[/x]", "status"], 2,
     r"no pgolf\.toml in /nonexistent/w\[/x\] or above")
case("markup-ruleset-option", M, ["measure", "--script", "train_gpt.py", "--model", "train_gpt.py", "--ruleset", "[/r]"],
     2, r"\[/r\]")

# == scripts (the checker's area: item 1, deep nesting, item 5's script answers) ===============================
P = "scripts"
case("script-empty", P, "check train_gpt.py --json", 1, r'"verdict": "FAIL"', {"train_gpt.py": ""}, in_output=True)
case("script-not-utf8", P, "check train_gpt.py", 1, r"python_grammar\s+│ FAIL",
     {"train_gpt.py": b"x = '\xff\xfe'\n"}, in_output=True)
case("script-deep-attr", P, "check train_gpt.py --json", 0, r'"status"',
     {"train_gpt.py": "x = a" + ".b" * 2500 + "()\n"})
case("script-exec-lambda", P, "check train_gpt.py --json", 0, r'"status"',
     {"train_gpt.py": "exec(" + "lambda: " * 900 + "0)\n"})
# Network code is a WARN with or without the eval beside it: the eval never makes it a PASS or UNKNOWN.
case("script-eval-evasion", P, "check train_gpt.py", 0, r"no_network\s+│ WARN",
     {"train_gpt.py": "import socket\nsocket.create_connection(('x', 1))\neval('0')\n"}, in_output=True)
case("script-directory", P, "check scriptdir/train_gpt.py", 1, r"no train_gpt\.py, so every code check is UNKNOWN",
     {"scriptdir/train_gpt.py": DIR}, in_output=True)  # a folder named like a script is checked as a folder
case("script-markup-name", P, ["check", "s[/x].py"], 0, r"s\[/x\]\.py", {"s[/x].py": "print(1)\n"})
# Python refuses it; libcst's native parser would overflow the C stack on it, so it never sees it.
case("script-deep-parens", P, "check train_gpt.py --json", 1, r"does not parse \(line 1: too many nested parentheses",
     {"train_gpt.py": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"}, in_output=True)
