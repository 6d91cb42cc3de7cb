"""Triage checks of a submission against the challenge rules, each with its rule and its evidence.

Every check returns a `CheckResult`: PASS, WARN, FAIL, UNKNOWN (the material to decide is missing, e.g. a
records folder without its script) or N/A (the rule does not apply, e.g. time limits of a CPU run). FAIL
is reserved for a rule broken on the evidence shown; a heuristic that may be wrong says WARN.
"""

from __future__ import annotations

import ast
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf.errors import DataError
from pgolf.fmt import fmt_bytes
from pgolf.logs import RunResult
from pgolf.rules import Ruleset
from pgolf.submission.code_scan import (
    byte_sidecar_findings,
    counted_code_findings,
    dependency_findings,
    native_code_findings,
    network_findings,
    score_first_findings,
    val_leak_findings,
    wallclock_findings,
)
from pgolf.submission.folder import SCRIPT_NAME, Submission
from pgolf.submission.lut_audit import (
    BUGGY,
    CORRECT,
    FAILED,
    NOT_APPLICABLE,
    OBFUSCATED,
    LutAudit,
    audit_source,
)
from pgolf.submission.pysource import (
    GRAMMARS,
    encoding_problem,
    grammar_problems,
    parse_problem,
    parse_tree,
    walk,
)
from pgolf.submission.stats import compare_runs
from pgolf.submission.wrappers import Unwrapped, unwrap

PASS, WARN, FAIL, UNKNOWN, NA = "PASS", "WARN", "FAIL", "UNKNOWN", "N/A"
STATUS_ORDER = (FAIL, WARN, UNKNOWN, PASS, NA)
REQUIRED_FILES = ("README.md", "submission.json", SCRIPT_NAME)
_FOLDER_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}_[A-Za-z0-9][\w.+\-]*$")
# A score printed with 8 decimals agrees within rounding; anything further apart is a different number.
_SCORE_TOLERANCE = 5e-6
_EVAL_TIME = re.compile(r"^(?P<label>\S+) val_loss:\S+ val_bpb:\S+ eval_time:(?P<ms>\d+(?:\.\d+)?)ms")
_TOTAL_EVAL = re.compile(r"^total_eval_time:(?P<s>\d+(?:\.\d+)?)s")
# A labelled evaluation line such as `final_int6_sliding_window val_loss:2.5067 val_bpb:1.08938974`.
_LABELLED_SCORE = re.compile(r"^(?P<label>[A-Za-z][\w.+\- ]*?)\s+val_loss[:=]\s*\S+.*?\bval_bpb[:=]\s*"
                             r"(?P<bpb>\d+\.\d+)", re.MULTILINE)
# Where a log states its tokenizer: the hyperparameter block (indented at most two spaces; deeper lines are
# the script's source dump, whose defaults may name another dataset) or the baseline's loader lines.
_VOCAB_IN_LOG = re.compile(
    r"^ {0,2}(?:vocab_size[:=]\s*(?P<a>\d+)\b|tokenizer_path[:=]\s*\S*?_(?P<b>\d+)_bpe)"
    r"|^val_bpb:enabled.*?tokenizer_path=\S*?_(?P<c>\d+)_bpe|^train_loader:dataset:\S*?_sp(?P<d>\d+)",
    re.MULTILINE)
# Phases some logs time outside the training and evaluation timers.
_CALIBRATION_TIME = re.compile(r"^GPTQ:collected \d+ Hessians in (?P<s>\d+(?:\.\d+)?)s", re.MULTILINE)
_EVAL_WARMUP_TIME = re.compile(r"compile warm-?up done \((?P<s>\d+(?:\.\d+)?)s\)", re.MULTILINE)
# The cap is checked between steps, so a run stops a fraction of a second past it.
_OVERSHOOT_S = 1.0


@dataclass
class CheckResult:
    """One rule applied to one submission."""

    name: str
    status: str
    rule: str
    summary: str
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return asdict(self)


@dataclass
class CheckOptions:
    """What the checks compare against: a frontier, the dataset's manifest, and whether runs were on CPU."""

    against: list[float] | None = None  # the frontier's per-seed scores (one value: a published score)
    against_label: str = ""
    val_tokens_expected: int | None = None  # the full validation split's token count
    val_tokens_source: str = ""
    val_vocab: int | None = None  # the vocabulary size the manifest's count is for
    cpu: bool | None = None  # None: decide from submission.json's hardware and the logs
    # What a byte sidecar is verified against when the script reads one (given, or found in the folder).
    val_data: Path | None = None  # the folder of fineweb_val_*.bin shards and their fineweb_val_bytes_*.bin
    tokenizer: Path | None = None  # the SentencePiece model the shards were encoded with


@dataclass
class _Context:
    sub: Submission
    ruleset: Ruleset
    options: CheckOptions
    meta: dict[str, Any] | None
    meta_problem: str
    logs: dict[str, RunResult]
    finals: dict[str, RunResult]  # logs with a final score
    source: str | None  # the script after peeling wrappers, when it parses
    decoded: str | None  # the script after peeling wrappers, parsing or not (None: undecodable)
    code_problem: str  # why `source` is None
    cpu: bool
    unwrapped: Unwrapped | None = None
    code_name: str = SCRIPT_NAME  # the file the checked code is in (a stub's sibling once followed)

    def sources(self) -> list[tuple[str, str]]:
        """(where, code) of the checked program and of each exec'd payload decoded statically."""
        if self.source is None:
            return []
        return [("", self.source), *(self.unwrapped.embedded if self.unwrapped else [])]

    def scan(self, scanner: Callable[..., list[tuple[str, str, str]]], *args: Any) -> list[tuple[str, str, str]]:
        """A code scanner's findings over every source, an exec'd payload's lines named by their exec."""
        found = []
        for where, code in self.sources():
            found += [(sev, f"{line}" if not where else f"{where.removeprefix('line ')} (exec'd code, line {line})",
                       msg) for sev, line, msg in scanner(code, *args)]
        return found


def _result(name: str, rule: str) -> Callable[[str, str, list[str] | None], CheckResult]:
    def make(status: str, summary: str, evidence: list[str] | None = None) -> CheckResult:
        return CheckResult(name, status, rule, summary, evidence or [])

    return make


def _fmt(value: float | None, digits: int = 8) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# -- package shape and submission.json -------------------------------------------------------------

def check_package_shape(ctx: _Context) -> CheckResult:
    """One folder under records/<track>/ named YYYY-MM-DD_Name, with README, submission.json, script, logs."""
    out = _result("package_shape", "a PR adds one folder records/<track>/<YYYY-MM-DD>_<Name>/ holding README.md, "
                  "submission.json, train_gpt.py and the train logs")
    sub = ctx.sub
    if sub.kind == "script":
        return out(NA, "a single script, not a records folder")
    problems, warnings, evidence = [], [], []
    missing = [f for f in REQUIRED_FILES if f not in sub.files]
    for name in missing:
        (warnings if name == SCRIPT_NAME else problems).append(f"{name} is missing")
    if not sub.log_names():
        problems.append("no training log (train*.log / *.txt)")
    if not _FOLDER_NAME.match(sub.name):
        warnings.append(f"folder name {sub.name!r} is not YYYY-MM-DD_Name without spaces")
    if sub.outside:
        problems.append(f"the PR also changes {len(sub.outside)} file(s) outside the folder")
        evidence += [f"outside the folder: {name}" for name in sub.outside[:5]]
    if sub.track is None:
        warnings.append("the folder is not inside records/track_10min_16mb or records/track_non_record_16mb")
    if SCRIPT_NAME in missing:
        evidence.append(f"{sub.where}: no {SCRIPT_NAME}, so every code check is UNKNOWN")
    evidence += [f"{sub.where}: {p}" for p in problems + [w for w in warnings if "train_gpt" not in w]]
    evidence.append(f"files: {', '.join(sorted(sub.files)) or 'none'}")
    if problems:
        return out(FAIL, "; ".join(problems), evidence)
    if warnings:
        return out(WARN, "; ".join(warnings), evidence)
    return out(PASS, f"{len(sub.files)} files, {len(sub.log_names())} log(s)", evidence)


_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    # key: (types, required)
    "author": (str, True), "github_id": (str, True), "name": (str, True), "val_bpb": ((int, float), True),
    "date": (str, True), "blurb": (str, False), "val_loss": ((int, float), False),
    "bytes_total": (int, False), "bytes_code": (int, False), "seeds": ((list, dict), False),
    "val_bpb_std": ((int, float), False), "track": (str, False), "hardware": (str, False),
}


def check_submission_schema(ctx: _Context) -> CheckResult:
    """submission.json parses and holds name, GitHub ID, val_bpb and the usual metadata with sane types."""
    out = _result("submission_schema", "submission.json includes your name, GitHub ID, val_bpb and related "
                  "metadata")
    if ctx.sub.kind == "script":
        return out(NA, "a single script, not a records folder")
    if ctx.meta is None:
        return out(FAIL, ctx.meta_problem, [f"{ctx.sub.where}/{ctx.meta_problem}"])
    missing, wrong, optional = [], [], []
    for key, (types, required) in _SCHEMA.items():
        value = ctx.meta.get(key)
        if value is None:
            (missing if required else optional).append(key)
        elif isinstance(value, bool) or not isinstance(value, types):
            (wrong if required else optional).append(f"{key}={str(value)[:40]!r}")
    evidence = [f"submission.json: missing {', '.join(missing)}"] if missing else []
    evidence += [f"submission.json: wrong type {w}" for w in wrong]
    if missing or wrong:
        return out(FAIL, "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                                 f"wrong type {', '.join(wrong)}" if wrong else ""])), evidence)
    if optional:
        return out(WARN, f"no (or malformed) {', '.join(optional)}",
                   [f"submission.json: optional keys absent or malformed: {', '.join(optional)}"])
    return out(PASS, f"val_bpb {ctx.meta['val_bpb']}")


# -- submission.json against the logs ------------------------------------------------------------------

def _seed_scores(ctx: _Context) -> dict[str, float]:
    return {n: r.val_bpb for n, r in ctx.finals.items() if r.val_bpb is not None}


def check_logs_agree(ctx: _Context) -> CheckResult:
    """The claimed score is the mean of the logs' final scores; seeds and bytes match; same code per seed."""
    out = _result("logs_agree", "submission.json's val_bpb is the mean of the per-seed final scores in the "
                  "logs, which come from the shipped script")
    if ctx.sub.kind == "script":
        return out(NA, "a single script, not a records folder")
    scores = _seed_scores(ctx)
    evidence = [f"{n}: {r.label} val_bpb {_fmt(r.val_bpb)} seed {r.seed} code_bytes {fmt_bytes(r.code_bytes)} "
                f"artifact_bytes {fmt_bytes(r.artifact_bytes)}" for n, r in ctx.finals.items()]
    evidence += [f"{n}: no final score ({r.reason})" for n, r in ctx.logs.items() if n not in ctx.finals]
    if ctx.meta is None or not isinstance(ctx.meta.get("val_bpb"), int | float):
        return out(UNKNOWN, "no val_bpb in submission.json to compare", evidence)
    if not scores:
        return out(UNKNOWN, "no log has a final score", evidence)
    claimed = float(ctx.meta["val_bpb"])
    decimals = _decimals(claimed)
    tolerance = max(_SCORE_TOLERANCE, 0.5 * 10.0 ** -decimals)
    mean = statistics.fmean(scores.values())
    evidence.insert(0, f"submission.json: val_bpb {claimed} (mean of {len(scores)} log(s): {_fmt(mean)})")
    problems, notes = [], []
    if abs(mean - claimed) <= tolerance:
        pass
    elif any(abs(s - claimed) <= tolerance for s in scores.values()):
        notes.append("val_bpb is one seed's score, not the mean over the logs")
    elif (label := _label_matching(ctx, claimed, tolerance)) is not None:
        if _PRE_QUANT_LABEL.search(label):  # the artifact is the quantized model: its score is what counts
            problems.append(f"val_bpb is {label}: a score before quantization, not the submitted artifact's")
        else:
            notes.append(f"val_bpb is {label}, not the logs' last score line")
    elif min(scores.values()) - tolerance <= claimed <= max(scores.values()) + tolerance:
        notes.append(f"val_bpb {claimed} is neither the mean {mean:.8f} nor a seed's score (logs of reruns "
                     "or other configurations may be mixed in)")
    else:
        problems.append(f"val_bpb {claimed} is not a score any log reports as an evaluation: final scores "
                        f"span [{min(scores.values()):.8f}, {max(scores.values()):.8f}]")
    notes += _seed_notes(ctx)
    code_sizes = {r.code_bytes for r in ctx.finals.values() if r.code_bytes is not None}
    if len(code_sizes) > 1:
        notes.append(f"logs report different code sizes {sorted(code_sizes)}: not one configuration")
    script = ctx.sub.files.get(SCRIPT_NAME) if ctx.sub.kind == "folder" else None
    # a log of a compressing script prints both "Code size (compressed)" and "(uncompressed)": either may match
    logged = set().union(*(_logged_code_sizes(ctx.sub.text(n) or "") for n in ctx.finals)) | code_sizes
    followed = {ctx.sub.sizes.get(n) for n in (ctx.unwrapped.siblings if ctx.unwrapped else [])}
    if script is not None and logged and len(script) not in logged and not logged & followed:
        other = _script_matching(ctx, logged)
        problems.append(f"logs print code bytes {sorted(logged)} but train_gpt.py has {len(script)} bytes: "
                        + (f"they match {other}, so the script audited is not the one that produced the score"
                           if other else "the logs did not come from the shipped script"))
    elif script is None:
        notes.append("no train_gpt.py: whether the logs came from the shipped script is UNKNOWN")
    if problems:
        return out(FAIL, "; ".join(problems), evidence)
    if notes:
        return out(WARN, "; ".join(notes), evidence)
    return out(PASS, f"val_bpb {claimed} = mean of {len(scores)} seed(s)", evidence)


_PRE_QUANT_LABEL = re.compile(r"(?i)pre[-_ ]?quant|post[-_]ema|pre[-_]?export|before[-_]quant")
_CODE_SIZE_LINE = re.compile(r"^(?:\S+\s+)?Code size(?: \((?:un)?compressed\))?:\s*(\d+) bytes", re.MULTILINE)


def _logged_code_sizes(text: str) -> set[int]:
    """Every code size a log prints on its own lines (not in its source dump, which is indented)."""
    return {int(m) for m in _CODE_SIZE_LINE.findall(text)}


def _script_matching(ctx: _Context, sizes: set[int]) -> str:
    """Another Python file of the folder whose size is one the logs (or bytes_code) print, or ""."""
    counted = (ctx.meta or {}).get("bytes_code")
    wanted = sizes | ({counted} if isinstance(counted, int) else set())
    return next((n for n in sorted(ctx.sub.files) if n.endswith(".py") and n != SCRIPT_NAME
                 and ctx.sub.sizes.get(n) in wanted), "")


def _labelled_scores(text: str) -> dict[str, float]:
    """The last val_bpb of each labelled evaluation line (not step lines) in a log."""
    found: dict[str, float] = {}
    for match in _LABELLED_SCORE.finditer(text):
        if not match["label"].startswith("step"):
            found[" ".join(match["label"].split())] = float(match["bpb"])
    return found


def _label_matching(ctx: _Context, claimed: float, tolerance: float) -> str | None:
    """Which labelled score the claim is: one log's, or the mean of one label over the final logs."""
    per_log = {n: _labelled_scores(ctx.sub.text(n) or "") for n in ctx.logs}
    for name, scores in per_log.items():
        for label, value in scores.items():
            if abs(value - claimed) <= tolerance:
                return f"the {label!r} score of {name}"
    finals = [per_log[n] for n in ctx.finals]
    common = set.intersection(*(set(s) for s in finals)) if finals else set()
    for label in sorted(common):
        if abs(statistics.fmean(s[label] for s in finals) - claimed) <= tolerance:
            return f"the mean of the {label!r} scores over {len(finals)} logs"
    return None


def _seed_notes(ctx: _Context) -> list[str]:
    claimed = ctx.meta.get("seeds") if ctx.meta else None
    logged = sorted({r.seed for r in ctx.finals.values() if r.seed is not None})
    if not isinstance(claimed, list) or not logged:
        return []
    if sorted(str(s) for s in claimed) != sorted(str(s) for s in logged):
        return [f"submission.json seeds {claimed} differ from the logs' seeds {logged}"]
    return []


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text else 0


# -- artifact bytes ---------------------------------------------------------------------------------------

def check_artifact_bytes(ctx: _Context) -> CheckResult:
    """Every seed's artifact (code + compressed model) is at most the limit, recomputed where possible."""
    limit = ctx.ruleset.artifact_limit_bytes
    out = _result("artifact_bytes", f"code bytes + compressed model bytes <= {limit:,} (decimal) for every seed")
    if ctx.sub.kind == "script":
        return out(NA, "a single script: no artifact to measure")
    script = ctx.sub.files.get(SCRIPT_NAME)
    per_seed: list[tuple[str, int]] = []
    evidence = []
    for name, r in ctx.logs.items():
        total = r.artifact_bytes
        if script is not None and r.model_bytes is not None:
            recomputed = len(script) + r.model_bytes
            evidence.append(f"{name}: model {r.model_bytes:,} + train_gpt.py {len(script):,} = {recomputed:,}"
                            + (f" (log prints {total:,})" if total is not None else ""))
            total = max(recomputed, total or 0)
        elif total is not None:
            evidence.append(f"{name}: Total submission size {total:,} bytes")
        if total is not None:
            per_seed.append((name, total))
    for seed, values in _json_seed_results(ctx.meta).items():
        if isinstance(values.get("artifact_bytes"), int):
            per_seed.append((f"submission.json seed {seed}", values["artifact_bytes"]))
            evidence.append(f"submission.json: seed {seed} artifact_bytes {values['artifact_bytes']:,}")
    if ctx.meta and isinstance(ctx.meta.get("bytes_total"), int):
        evidence.append(f"submission.json: bytes_total {ctx.meta['bytes_total']:,}")
        per_seed.append(("submission.json bytes_total", ctx.meta["bytes_total"]))
    if not per_seed:
        return out(UNKNOWN, "no artifact size in the logs or submission.json", evidence)
    uncounted = _uncounted_code(ctx)
    if uncounted:  # code that runs but was not counted: every seed's artifact is that much larger
        extra = sum(b for _, b in uncounted)
        evidence.append(f"uncounted code {extra:,} bytes ({', '.join(f'{n} {b:,}' for n, b in uncounted)}) added "
                        "to every seed")
        logged_code = {n: r.code_bytes or 0 for n, r in ctx.logs.items()}
        script_bytes = len(script or b"")
        per_seed = [(f"{n} + uncounted code", b + max(0, extra - max(0, logged_code.get(n, 0) - script_bytes)))
                    for n, b in per_seed]
    over = [(n, b) for n, b in per_seed if ctx.ruleset.over_artifact_limit(b)]
    if over:
        return out(FAIL, "; ".join(f"{n}: {b:,} bytes > {limit:,}" for n, b in over), evidence)
    largest = max(b for _, b in per_seed)
    return out(PASS, f"largest {largest:,} bytes, headroom {ctx.ruleset.headroom_bytes(largest):,}", evidence)


def _json_seed_results(meta: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    results = (meta or {}).get("seed_results")
    if not isinstance(results, dict):
        return {}
    return {str(k): v for k, v in results.items() if isinstance(v, dict)}


# -- code checks (need the script) ------------------------------------------------------------------------

def _needs_code(name: str, rule: str, ctx: _Context, *, parsed: bool = True
                ) -> Callable[..., CheckResult] | CheckResult:
    """The check's result maker, or UNKNOWN when there is no code to read (or, if `parsed`, none that parses)."""
    out = _result(name, rule)
    if ctx.sub.script is None:
        return out(UNKNOWN, f"no {SCRIPT_NAME} in the submission")
    if not ctx.sub.script.strip():
        return out(UNKNOWN, f"{ctx.sub.script_name} is empty ({len(ctx.sub.script.encode())} bytes): no code to read",
                   [f"{ctx.sub.script_name}: empty"])
    if ctx.decoded is None or (parsed and ctx.source is None):
        return out(UNKNOWN, ctx.code_problem, [f"{ctx.sub.script_name}: {ctx.code_problem}"])
    return out


def _from_findings(out: Callable[..., CheckResult], findings: Sequence[tuple[str, str, str]],
                   ok: str, script_name: str, extra: Sequence[str] = ()) -> CheckResult:
    """Findings are (severity FAIL/WARN/INFO, line, message); the worst decides, INFO alone passes."""
    # a line "@file:N" is in another file of the folder (a helper module); "-" is the file as a whole
    evidence = [f"{line[1:]}: {msg}" if line.startswith("@") else f"{script_name}: {msg}" if line == "-"
                else f"{script_name}:{line}: {msg}" for _, line, msg in findings] + list(extra)
    serious = [f for f in findings if f[0] in (FAIL, WARN)]
    if not serious:
        return out(PASS, ok, evidence)
    worst = FAIL if any(sev == FAIL for sev, _, _ in serious) else WARN
    return out(worst, serious[0][2] + (f" (+{len(serious) - 1} more)" if len(serious) > 1 else ""), evidence)


def check_wrapper(ctx: _Context) -> CheckResult:
    """Wrappers are decoded without executing; code run through exec/eval must be known statically."""
    out = _result("wrapper", "code must be reviewable: compressed self-extracting scripts are decoded and "
                  "the inner code is what the other checks read; code that exec/eval runs must be known statically")
    script, unwrapped, name = ctx.sub.script, ctx.unwrapped, ctx.sub.script_name
    if script is None or unwrapped is None:
        return out(UNKNOWN, f"no {SCRIPT_NAME} in the submission")
    if not script.strip():
        return out(UNKNOWN, f"{name} is empty: no code to read", [f"{name}: empty"])
    layers = [f"{name}: {layer}" for layer in unwrapped.layers]
    if unwrapped.obfuscated:
        return out(WARN, f"OBFUSCATED: {unwrapped.reason}", [f"{name}: {unwrapped.reason}"])
    if unwrapped.syntax_error:
        return out(UNKNOWN, ctx.code_problem, layers + [f"{name}: {ctx.code_problem}"])
    embedded = [f"{ctx.code_name}:{where.removeprefix('line ')}: exec of code known statically "
                "(decoded; the other checks read it too)" for where, _ in unwrapped.embedded]
    if unwrapped.dynamic:
        evidence = [f"{ctx.code_name}:{d.removeprefix('line ')}" for d in unwrapped.dynamic]
        return out(WARN, f"exec/eval of code not known statically ({len(unwrapped.dynamic)} call(s)): the checks "
                   "cannot read what it runs", layers + evidence + embedded)
    if unwrapped.wrapped:
        return out(PASS, f"decoded {len(unwrapped.layers)} wrapper layer(s) without executing them",
                   layers + embedded)
    return out(PASS, "plain source, no wrapper" if not embedded else "plain source; every exec'd payload is "
               "known statically", embedded)


def check_python_grammar(ctx: _Context) -> CheckResult:
    """The script is UTF-8 (or declares its encoding) and parses under the Python 3.10, 3.11 and 3.12 grammars."""
    rule = "the script must compile and run in the records folder (Python 3.10-3.12)"
    out = _result("python_grammar", rule)
    raw = ctx.sub.files.get(ctx.sub.script_name) if ctx.sub.script is not None else None
    if raw is not None and not raw.strip():
        return out(FAIL, f"{ctx.sub.script_name} is empty ({len(raw)} bytes): there is no training script",
                   [f"{ctx.sub.script_name}: {len(raw)} bytes"])
    if raw is not None and (problem := encoding_problem(raw)):
        return out(FAIL, f"Python refuses to read {ctx.sub.script_name}: {problem}",
                   [f"{ctx.sub.script_name}: {problem}"])
    got = _needs_code("python_grammar", rule, ctx, parsed=False)
    if isinstance(got, CheckResult):
        return got
    problems = grammar_problems(ctx.decoded or "")
    checked = ", ".join(f"{a}.{b}" for a, b in GRAMMARS)
    failures = [(v, f"Python {v[0]}.{v[1]}: {p}") for v, p in problems.items() if p]
    if not failures:
        return got(PASS, f"parses under Python {checked}")
    evidence = [f"{ctx.code_name}: {msg}" for _, msg in failures]
    last = f"{failures[-1][0][0]}.{failures[-1][0][1]}"
    if failures[-1][0] != GRAMMARS[-1]:
        return got(WARN, f"needs a newer Python than {last}", evidence)
    return got(FAIL, f"does not parse under Python {last}", evidence)


def check_counted_code(ctx: _Context) -> CheckResult:
    """All code that runs is counted: no exec of other files, folder-local helpers, or code downloaded."""
    got = _needs_code("counted_code", "all code counts toward the artifact: no exec(open(...)), helper modules "
                      "or compiled extensions from the folder, or code downloaded at run time", ctx)
    if isinstance(got, CheckResult):
        return got
    local = {n for n in ctx.sub.files if n != SCRIPT_NAME}
    counted = ctx.meta.get("bytes_code") if ctx.meta else None
    findings = ctx.scan(counted_code_findings, local, ctx.sub.sizes, counted)
    findings += _sibling_findings(ctx, counted)
    for helper in _helper_modules(ctx):  # what a helper module of the folder runs counts too
        native, sources = native_code_findings(ctx.sub.text(helper) or "", local)
        findings += [(sev, f"@{helper}:{line}", msg) for sev, line, msg in native]
        if sources:
            total = sum(ctx.sub.sizes.get(f, 0) for f in sources)
            findings.append(("FAIL", "-", f"{helper} compiles {', '.join(sources)} ({total:,} bytes): source code "
                             "that runs, so it counts toward the artifact"))
    uncounted = _uncounted_code(ctx)
    if uncounted:
        evidence_total = sum(b for _, b in uncounted)
        findings.append(("INFO", "-", f"code outside {SCRIPT_NAME}: {evidence_total:,} bytes "
                         f"({', '.join(f'{n} {b:,}' for n, b in uncounted)})"))
    return _from_findings(got, findings, f"every piece of code that runs is in {ctx.sub.script_name}",
                          ctx.code_name)


def _helper_modules(ctx: _Context) -> list[str]:
    """Python modules of the folder the checked code imports (ngram_tilt.py for `import ngram_tilt`)."""
    found: list[str] = []
    for _, code in ctx.sources():
        tree = parse_tree(code)
        for node in walk(tree) if tree is not None else []:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                file = f"{name.split('.')[0]}.py"
                if file in ctx.sub.files and file != SCRIPT_NAME and file not in found:
                    found.append(file)
    return found


def _uncounted_code(ctx: _Context) -> list[tuple[str, int]]:
    """(file, bytes) of code that runs but that submission.json's bytes_code does not cover."""
    if ctx.sub.kind != "folder" or ctx.source is None:
        return []
    files = list(ctx.unwrapped.siblings if ctx.unwrapped else [])
    for helper in _helper_modules(ctx):
        files.append(helper)
        files += native_code_findings(ctx.sub.text(helper) or "", set(ctx.sub.files))[1]
    counted = (ctx.meta or {}).get("bytes_code")
    script = ctx.sub.sizes.get(SCRIPT_NAME, 0)
    extra = [(f, ctx.sub.sizes.get(f, 0)) for f in dict.fromkeys(files)]
    if isinstance(counted, int) and not isinstance(counted, bool) and counted >= script + sum(b for _, b in extra):
        return []
    return extra


def _sibling_findings(ctx: _Context, counted: object) -> list[tuple[str, str, str]]:
    """A stub that execs another file of the folder: that file runs, so its bytes count as code."""
    siblings = ctx.unwrapped.siblings if ctx.unwrapped else []
    if not siblings:
        return []
    script = ctx.sub.sizes.get(SCRIPT_NAME, len(ctx.sub.script or ""))
    extra = sum(ctx.sub.sizes.get(n, 0) for n in siblings)
    ok = isinstance(counted, int) and not isinstance(counted, bool) and counted >= script + extra
    return [("WARN" if ok else "FAIL", "1", f"{SCRIPT_NAME} ({script:,} bytes) execs {name} "
             f"({ctx.sub.sizes.get(name, 0):,} bytes) from the folder, "
             + (f"counted in bytes_code {counted:,}" if ok else
                f"which the code bytes do not count (bytes_code {counted if counted is not None else 'absent'})"))
            for name in siblings]


def check_network(ctx: _Context) -> CheckResult:
    """No network access (downloads, sockets, hub calls) in the script."""
    got = _needs_code("no_network", "no external downloads or network calls during evaluation", ctx)
    if isinstance(got, CheckResult):
        return got
    return _from_findings(got, ctx.scan(network_findings), "no network module or call", ctx.code_name)


def check_dependencies(ctx: _Context) -> CheckResult:
    """Third-party imports beyond torch/numpy/sentencepiece are declared in requirements.txt."""
    got = _needs_code("dependencies", "packages beyond the challenge image are listed in requirements.txt", ctx)
    if isinstance(got, CheckResult):
        return got
    requirements = ctx.sub.text("requirements.txt") if ctx.sub.kind == "folder" else None
    readme = ctx.sub.text("README.md") if ctx.sub.kind == "folder" else None
    return _from_findings(got, ctx.scan(dependency_findings, requirements, sys.stdlib_module_names, readme),
                          "every third-party import that always runs is declared", ctx.code_name)


def check_lut(ctx: _Context) -> CheckResult:
    """The BPB byte tables follow the canonical rule (static LUT audit)."""
    rule = ("val_bpb counts bytes with the canonical SentencePiece tables (leading space once, byte fallback = 1, "
            "control/unknown/unused = boundaries of 0 bytes)")
    if ctx.sub.script is not None and not ctx.sub.script.strip():
        return _result("lut_audit", rule)(FAIL, f"{ctx.sub.script_name} is empty: no code counts the bytes "
                                         "val_bpb is divided by", [f"{ctx.sub.script_name}: empty"])
    got = _needs_code("lut_audit", rule, ctx)
    if isinstance(got, CheckResult):
        return got
    audit = audit_source(ctx.sub.script or "", script_name=ctx.sub.script_name, read_sibling=_sibling_reader(ctx.sub))
    name = ctx.code_name
    where = f"{name}:{audit.line}: {audit.function}" if audit.function else name
    evidence = [f"{where}: {d.code}: {d.description}; e.g. {d.examples[0]}" for d in audit.deviations]
    sidecar = ctx.scan(byte_sidecar_findings)
    if sidecar:  # the tables may be right and still not be what divides the loss
        return _check_sidecar(ctx, audit, [f"{name}:{line}: {msg}" for _, line, msg in sidecar], where)
    if audit.status == CORRECT:
        return got(PASS, f"CORRECT ({audit.function} at line {audit.line})", [where])
    if audit.status == BUGGY:
        return got(FAIL, f"BUGGY: {', '.join(audit.deviation_codes)}", evidence)
    if audit.status == FAILED:
        return got(FAIL, audit.reason, [f"{name}: {audit.reason}"])
    if audit.status == NOT_APPLICABLE:
        return got(NA, audit.reason, [f"{name}: {audit.reason}"])
    if audit.status == OBFUSCATED:
        return got(WARN, f"OBFUSCATED: {audit.reason}", [audit.reason])
    return got(UNKNOWN, audit.reason, [where])


SIDECAR_RULE = ("README rule 2: a changed tokenizer or dataset must prove val_bpb correct; the byte denominator is "
                "what the validation tokens decode to (the canonical byte rule, a transform's control symbols "
                "counting 0; openai/parameter-golf#1604)")


def _check_sidecar(ctx: _Context, audit: LutAudit, reads: list[str], tables: str) -> CheckResult:
    """The byte denominator comes from a sidecar file (`reads`: the script's lines reading it): verify it when the
    data is at hand, else say how."""
    out = _result("lut_audit", SIDECAR_RULE)
    script_lines = reads + [f"{n}: byte_sidecar:enabled" for n in ctx.logs
                            if "byte_sidecar:enabled" in (ctx.sub.text(n) or "")] + [tables]
    val_data, tokenizer = ctx.options.val_data, ctx.options.tokenizer
    if val_data is None or tokenizer is None:
        missing = " and ".join(w for w, v in (("shards", val_data), ("tokenizer", tokenizer)) if v is None)
        return out(WARN, f"{audit.status} tables, but the byte denominator comes from a submitter-built sidecar "
                   f"file, not checked against the tokenizer's decode (no {missing}): pass --val-data DIR "
                   "--tokenizer MODEL", script_lines)
    from pgolf.submission.sidecar import verify_sidecar  # numpy passes over the split: only when asked

    given = f"sidecar data: {val_data}, tokenizer {tokenizer}"
    try:
        report = verify_sidecar(val_data, tokenizer)
    except DataError as err:
        return out(UNKNOWN, f"the byte sidecar could not be verified: {err}", script_lines + [given])
    status, summary = report.status, report.summary
    if status != FAIL and audit.status in (BUGGY, FAILED):  # the script's fallback without a sidecar is wrong
        status, summary = WARN, f"{summary}; but the script's own tables (used without a sidecar) are {audit.status}"
    return out(status, summary, report.evidence[:3] + script_lines + report.evidence[3:] + [given])


def _sibling_reader(sub: Submission) -> Callable[[str], str | None] | None:
    """Reads another file of a records folder (for a stub that execs it); a single script has none."""
    if sub.kind != "folder":
        return None
    return lambda name: sub.text(name) if name in sub.files and name != SCRIPT_NAME else None


def check_score_first(ctx: _Context) -> CheckResult:
    """Test-time training updates only on validation tokens already scored; val never feeds training."""
    got = _needs_code("score_first_ttt", "test-time training only on validation tokens already scored; "
                      "validation data never feeds training or calibration", ctx)
    if isinstance(got, CheckResult):
        return got
    findings = ctx.scan(score_first_findings) + ctx.scan(val_leak_findings)
    return _from_findings(got, findings, "no optimizer step before scoring; validation tokens never reach "
                                         "training or calibration", ctx.code_name)


def check_community_rules(ctx: _Context) -> CheckResult:
    """The community's rules and the organizers' rulings (rulings.toml), each finding naming both."""
    from pgolf.submission.community import community_findings, load_rulings

    version, rulings = load_rulings()
    got = _needs_code("community_rules", f"the rulings of openai/parameter-golf (#1017 C1-C4, #677, #886, #402, "
                      f"#1797/#1851; rulings.toml {version}, {len(rulings)} rules)", ctx)
    if isinstance(got, CheckResult):
        return got
    submitted = (ctx.meta or {}).get("date")
    findings = ctx.scan(community_findings, submitted if isinstance(submitted, str) else None)
    return _from_findings(got, findings, f"no pattern of the {len(rulings)} rulings", ctx.code_name)


# -- time, hardware, coverage, statistics ----------------------------------------------------------------

def eval_seconds(log_text: str, label: str | None) -> float | None:
    """Evaluation seconds of a log: `total_eval_time`, else the eval_time on the final score's line."""
    found: float | None = None
    for line in log_text.splitlines():
        if (total := _TOTAL_EVAL.match(line)) is not None:
            return float(total["s"])
        match = _EVAL_TIME.match(line)
        if match and label and label.startswith(match["label"]):
            found = float(match["ms"]) / 1000.0
    return found


def check_time_limits(ctx: _Context) -> CheckResult:
    """Training and evaluation each within the ruleset's seconds per seed; no wallclock-bypassing override."""
    train_limit, eval_limit = ctx.ruleset.train_seconds, ctx.ruleset.eval_seconds
    out = _result("time_limits", f"training <= {train_limit} s and evaluation <= {eval_limit} s per seed on "
                  f"{ctx.ruleset.gpu_count}x{ctx.ruleset.gpu_kind}")
    if ctx.sub.kind == "script":
        findings = ctx.scan(wallclock_findings, train_limit)
        return _from_findings(out, findings, "no wallclock override in the script", ctx.code_name) \
            if findings else \
            out(NA, "a single script: no logs to time")
    if train_limit is None and eval_limit is None:
        return out(NA, f"{ctx.ruleset.name} has no time limits")
    if ctx.cpu:
        return out(NA, "not applicable to CPU runs (the limits are for 8xH100 SXM)")
    evidence, problems, notes, flags = [], [], [], []
    for name, r in ctx.finals.items():
        ev = eval_seconds(ctx.sub.text(name) or "", r.label)
        evidence.append(f"{name}: train {r.train_seconds} s, eval {ev} s")
        if train_limit is not None and r.train_seconds is not None and r.train_seconds > train_limit:
            over = r.train_seconds - train_limit
            if over > _OVERSHOOT_S:
                problems.append(f"{name}: training {r.train_seconds} s > {train_limit}")
            else:  # the cap is checked between steps, as in the official baseline: normal, not a finding
                evidence.append(f"{name}: {over:.3f} s past the cap: the step in flight when it was reached")
        if eval_limit is not None and ev is not None and ev > eval_limit:
            problems.append(f"{name}: evaluation {ev} s > {eval_limit}")
        text = ctx.sub.text(name) or ""
        calib = _seconds(_CALIBRATION_TIME, text)
        if calib and train_limit is not None and r.train_seconds is not None \
                and r.train_seconds + calib > train_limit + _OVERSHOOT_S:
            flags.append(f"{name}: GPTQ calibration on training data takes {calib:g} s after training stops at "
                         f"{r.train_seconds} s: it reads training data until ~{r.train_seconds + calib:.1f} s, past "
                         f"the {train_limit:g} s cap")
        warmup = _seconds(_EVAL_WARMUP_TIME, text)
        if warmup and ev is not None:
            flags.append(f"{name}: the evaluation timer starts after a {warmup:g} s compile warm-up (with it, "
                         f"evaluation takes {ev + warmup:.1f} s): flag for review")
        if r.train_seconds is None or ev is None:
            notes.append(f"{name}: {'training' if r.train_seconds is None else 'evaluation'} time not in the log")
    for sev, line, msg in ctx.scan(wallclock_findings, train_limit):
        (problems if sev == FAIL else notes).append(msg)
        evidence.append(f"{ctx.code_name}:{line}: {msg}")
    if problems:
        return out(FAIL, "; ".join(problems), evidence)
    if not ctx.finals:
        return out(UNKNOWN, "no log with a final score to time", evidence)
    if flags:  # phases outside the timers: a reviewer decides
        return out(WARN, "; ".join(flags[:2]) + (f" (+{len(flags) - 2} more)" if len(flags) > 2 else ""),
                   evidence + flags)
    if notes:
        return out(WARN if len(notes) < len(ctx.finals) else UNKNOWN, "; ".join(notes[:3]), evidence)
    return out(PASS, "every seed within the limits", evidence)


def _seconds(pattern: re.Pattern[str], text: str) -> float | None:
    match = pattern.search(text)
    return float(match["s"]) if match else None


def check_hardware(ctx: _Context) -> CheckResult:
    """The logs ran on the ruleset's GPU count (world_size), as the hardware field says."""
    out = _result("hardware", f"record runs use {ctx.ruleset.gpu_count}x{ctx.ruleset.gpu_kind}")
    if ctx.sub.kind == "script":
        return out(NA, "a single script: no logs")
    if ctx.cpu:
        return out(NA, "not applicable to CPU runs")
    if ctx.ruleset.train_seconds is None:
        return out(NA, f"{ctx.ruleset.name} allows any hardware")
    sizes = {n: r.world_size for n, r in ctx.finals.items() if r.world_size is not None}
    hardware = (ctx.meta or {}).get("hardware")
    evidence = [f"{n}: world_size {w}" for n, w in sizes.items()]
    if hardware:
        evidence.append(f"submission.json: hardware {hardware!r}")
    wrong = {n: w for n, w in sizes.items() if w != ctx.ruleset.gpu_count}
    gpus = {n: g for n in ctx.finals if (g := _logged_gpus(ctx.sub.text(n) or ""))}
    kind = ctx.ruleset.gpu_kind.split()[0].upper()  # "H100" of "H100 SXM"
    other = {n: g for n, g in gpus.items() if any(kind not in name.upper() for name in g)}
    evidence += [f"{n}: nvidia-smi lists {_count_names(g)}" for n, g in gpus.items()]
    if other:
        return out(WARN, f"the logs ran on {', '.join(sorted({_count_names(g) for g in other.values()}))}, not "
                   f"{ctx.ruleset.gpu_count}x{ctx.ruleset.gpu_kind}", evidence)
    if wrong:
        return out(WARN, f"world_size {sorted(set(wrong.values()))} instead of {ctx.ruleset.gpu_count}", evidence)
    if not sizes and not hardware:
        return out(UNKNOWN, "neither the logs nor submission.json say what hardware ran", evidence)
    return out(PASS, f"world_size {ctx.ruleset.gpu_count}" if sizes else f"hardware {hardware!r}", evidence)


# An nvidia-smi table row: "|   0  NVIDIA H100 80GB HBM3          On  |".
_NVIDIA_SMI_GPU = re.compile(r"^\|\s+\d+\s+NVIDIA\s+(?P<name>[^|]*?)\s+(?:On|Off)\s+\|", re.MULTILINE)


def _logged_gpus(text: str) -> list[str]:
    return [" ".join(m["name"].split()) for m in _NVIDIA_SMI_GPU.finditer(text)]


def _count_names(names: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{c}x {n}" for n, c in sorted(counts.items()))


def check_val_coverage(ctx: _Context) -> CheckResult:
    """The scored validation tokens are the whole split (up to the last partial sequence)."""
    out = _result("val_coverage", "validation always runs on the full fineweb_val_* split")
    if ctx.sub.kind == "script":
        return out(NA, "a single script: no logs")
    counts = {n: r.val_tokens for n, r in ctx.logs.items() if r.val_tokens is not None}
    expected = ctx.options.val_tokens_expected
    evidence = [f"{n}: val tokens {c:,}" for n, c in counts.items()]
    if not counts:
        return out(UNKNOWN, "no log prints its validation token count", evidence)
    if expected is None:
        return out(UNKNOWN, "no dataset manifest to compare with (pass --manifest)", evidence)
    vocab = ctx.options.val_vocab
    other = {n: v for n in counts if (v := _log_vocab(ctx.sub.text(n) or "")) != vocab}
    for name, found in other.items():
        evidence.append(f"{name}: tokenizer {'not named' if found is None else f'sp{found}'} in the log; the "
                        f"manifest counts sp{vocab}")
        counts.pop(name)
    if not counts:
        return out(UNKNOWN, f"the logs do not use the manifest's tokenizer (sp{vocab})", evidence)
    evidence.append(f"{ctx.options.val_tokens_source}: full split {expected:,} tokens")
    # A script evaluating whole sequences drops fewer than one sequence (at most 64k tokens) at the end.
    slack = 65_536
    short = {n: c for n, c in counts.items() if c < expected - slack}
    over = {n: c for n, c in counts.items() if c > expected}
    if over:
        return out(WARN, "more validation tokens than the split (another tokenizer's split?): "
                   + ", ".join(f"{n} {c:,}" for n, c in over.items()), evidence)
    if short:
        return out(FAIL, "scores a subset of the validation split: "
                   + ", ".join(f"{n} {c:,} of {expected:,}" for n, c in short.items()), evidence)
    return out(PASS, f"{min(counts.values()):,}-{max(counts.values()):,} of {expected:,} tokens", evidence)


def _log_vocab(text: str) -> int | None:
    """The vocabulary size a log's dataset or tokenizer path names (fineweb10B_sp1024, *_1024_bpe.model)."""
    match = _VOCAB_IN_LOG.search(text)
    return None if match is None else int(next(g for g in match.groups() if g))


def check_statistics(ctx: _Context) -> CheckResult:
    """At least min_seeds seeds; with a frontier, a Welch t-test of the nat margin (converted to BPB)."""
    rs = ctx.ruleset
    out = _result("statistics", f">= {rs.min_seeds} seeds; beat the frontier by {rs.record_margin_nats} nats at "
                  f"p < {rs.significance_p} (Welch's t-test, margin in BPB via the run's tokens per byte)")
    if ctx.sub.kind == "script":
        return out(NA, "a single script: no runs")
    finals, repeats = _independent_seeds(ctx)
    scores = [r.val_bpb for r in finals]
    losses = [r.val_loss for r in finals]
    if not scores:
        seeds = _json_seed_results(ctx.meta)
        scores = [v["val_bpb"] for v in seeds.values() if isinstance(v.get("val_bpb"), int | float)]
        losses = [None] * len(scores)
    evidence = [f"{len(scores)} seed score(s): " + ", ".join(_fmt(s) for s in scores)] + repeats
    if len(scores) >= 2:
        evidence.append(f"mean {statistics.fmean(scores):.8f}, std {statistics.stdev(scores):.8f}")
    if ctx.options.against is None:
        if len(scores) < rs.min_seeds:
            return out(WARN, f"{len(scores)} seed(s) < {rs.min_seeds}: a record claim needs more", evidence)
        return out(PASS, f"{len(scores)} seeds (no frontier given for a significance test)", evidence)
    if not any(losses) and ctx.meta and isinstance(ctx.meta.get("val_loss"), int | float):
        losses = [ctx.meta["val_loss"]] * len(scores)  # one ratio for all seeds, from submission.json
    if not scores or not any(losses):
        return out(UNKNOWN, "no per-seed val_bpb and val_loss to test", evidence)
    comparison = compare_runs(scores, losses, ctx.options.against, rs)
    evidence.append(f"frontier {ctx.options.against_label}: mean {comparison.mean_reference:.8f} "
                    f"(n={comparison.n_reference})")
    evidence.append(f"improvement {comparison.improvement:+.6f} BPB vs margin {comparison.margin_bpb:.6f} BPB; "
                    f"{comparison.test} t={_fmt(comparison.t, 3)} df={_fmt(comparison.df, 1)} "
                    f"p={'-' if comparison.p_value is None else f'{comparison.p_value:.3g}'}")
    if not comparison.enough_seeds:
        return out(FAIL, f"{comparison.n_candidate} seed(s) < {rs.min_seeds}", evidence)
    if not comparison.significant:
        return out(FAIL, "does not beat the frontier by the margin at p < "
                   f"{rs.significance_p}", evidence)
    return out(PASS, f"beats the frontier by {comparison.improvement:.5f} BPB, p={comparison.p_value:.2g}",
               evidence)


def _independent_seeds(ctx: _Context) -> tuple[list[RunResult], list[str]]:
    """One final log per seed: an identical copy of a log, or a rerun of the same seed, is not another seed."""
    kept: list[RunResult] = []
    seen_text: dict[str, str] = {}
    seen_seed: dict[int, str] = {}
    notes = []
    for name, r in ctx.finals.items():
        if r.val_bpb is None:
            continue
        text = ctx.sub.text(name) or ""
        if text in seen_text:
            notes.append(f"{name}: an identical copy of {seen_text[text]}, counted once")
            continue
        if r.seed is not None and r.seed in seen_seed:
            notes.append(f"{name}: seed {r.seed} again (as {seen_seed[r.seed]}), a rerun rather than another seed")
            continue
        seen_text[text] = name
        if r.seed is not None:
            seen_seed[r.seed] = name
        kept.append(r)
    return kept, notes


ALL_CHECKS: tuple[Callable[[_Context], CheckResult], ...] = (
    check_package_shape, check_submission_schema, check_logs_agree, check_artifact_bytes, check_wrapper,
    check_counted_code, check_network, check_dependencies, check_python_grammar, check_time_limits,
    check_hardware, check_val_coverage, check_lut, check_score_first, check_community_rules, check_statistics,
)


def _is_cpu(meta: dict[str, Any] | None) -> bool:
    hardware = str((meta or {}).get("hardware", "")).lower()
    return "cpu" in hardware.split() or hardware.startswith("cpu")


def run_checks(sub: Submission, ruleset: Ruleset, options: CheckOptions | None = None) -> list[CheckResult]:
    """Every check on `sub`, in a fixed order."""
    options = options or CheckOptions()
    meta, problem = sub.submission_json() if sub.kind == "folder" else (None, "")
    logs = sub.logs() if sub.kind == "folder" else {}
    if sub.kind == "script":
        ensure_python_script(sub)
    script = sub.script
    source = decoded = None
    code_problem = ""
    unwrapped = None
    if script is not None:
        unwrapped = unwrap(script, script_name=sub.script_name, read_sibling=_sibling_reader(sub))
        if unwrapped.obfuscated:
            code_problem = f"the script cannot be read: {unwrapped.reason}"
        else:
            decoded = unwrapped.source
            source = None if unwrapped.syntax_error else decoded
            code_problem = f"the script does not parse ({unwrapped.syntax_error})" if source is None else ""
    ctx = _Context(sub, ruleset, options, meta, problem, logs,
                   {n: r for n, r in logs.items() if r.complete and r.val_bpb is not None},
                   source, decoded, code_problem, options.cpu if options.cpu is not None else _is_cpu(meta),
                   unwrapped, (unwrapped.source_name if unwrapped and unwrapped.source_name else sub.script_name))
    return [check(ctx) for check in ALL_CHECKS]


def ensure_python_script(sub: Submission) -> None:
    """Refuse a single file that parses under no grammar up to 3.13: it is not a Python script."""
    source = sub.script or ""
    if not source.strip():
        return  # an empty script is a FAIL of the checks, not "not Python"
    problem = parse_problem(source)
    if problem and "nested" not in problem:
        raise DataError(f"{sub.where}: not a Python script ({problem})")


def worst_status(results: Sequence[CheckResult]) -> str:
    """The most severe status among `results`."""
    present = {r.status for r in results}
    return next((s for s in STATUS_ORDER if s in present), NA)

