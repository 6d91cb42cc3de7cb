"""AST scans of a training script for the code rules; each finding is (severity, line, message).

Severity is "FAIL" when the code shown breaks a rule whatever the rest of the script does, "WARN" when
the pattern is suspicious but its effect depends on context a static scan cannot see, and "INFO" for a
fact worth showing that breaks nothing (an optional import used only on a non-default branch).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator

from pgolf.submission.pysource import parse_tree, walk

Finding = tuple[str, str, str]

# The challenge image's own packages (its requirements.txt) plus what ships inside torch: no declaration.
IMAGE_PACKAGES = frozenset({
    "torch", "numpy", "sentencepiece", "tqdm", "huggingface_hub", "kernels", "setuptools",
    "typing_extensions", "datasets", "tiktoken", "triton",
})
# Import names whose package is spelled differently on PyPI.
_PACKAGE_ALIASES = {"flash_attn_interface": "flash_attn", "sklearn": "scikit_learn", "yaml": "pyyaml",
                    "pil": "pillow", "cv2": "opencv", "zstd": "zstandard"}
_NETWORK_MODULES = frozenset({"socket", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "wget",
                              "huggingface_hub", "smtplib", "paramiko", "boto3"})
_NETWORK_CALLS = frozenset({"urlopen", "urlretrieve", "hf_hub_download", "snapshot_download", "create_connection",
                            "load_dataset", "download_url_to_file", "load_state_dict_from_url"})
_HTTP_VERBS = frozenset({"get", "post", "put", "request", "stream"})
_STEP_SKIP = re.compile(r"sched|lr|warmup", re.IGNORECASE)
_SCORE_TARGET = re.compile(r"nll|loss_sum|sum_loss|byte|bits|bpb|score", re.IGNORECASE)
_VAL_NAME = re.compile(r"(?:^|_)(?:val|valid|validation)(?:_|$)|ttt", re.IGNORECASE)
_VAL_SOURCE = re.compile(r"fineweb_val|(?:^|[_/])val_\*|validation", re.IGNORECASE)
_TRAINING_CALL = re.compile(r"train|calib|hessian|gptq|fit", re.IGNORECASE)
_WALLCLOCK = re.compile(r"max_wallclock|wallclock_seconds", re.IGNORECASE)


def _parse(source: str) -> ast.Module | None:
    return parse_tree(source)  # any grammar up to 3.13, depth-bounded (so the recursive helpers are safe)


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for an attribute chain, the name for a Name, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (n for n in walk(tree) if isinstance(n, ast.Call))


def _imports(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    """(top-level module name, statement) for every absolute import."""
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0], node


def _conditional_imports(tree: ast.Module) -> set[int]:
    """Line numbers of imports under a `try:` or an `if` (optional: needed only when that branch runs)."""
    lines: set[int] = set()
    for node in walk(tree):
        if isinstance(node, ast.Try | ast.If):
            for stmt in [*node.body, *node.orelse]:
                lines.update(n.lineno for n in walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom))
    return lines


def _strings(node: ast.AST) -> Iterator[str]:
    return (n.value for n in walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def counted_code_findings(source: str, local_files: Iterable[str], sizes: dict[str, int],
                          counted_bytes: object) -> list[Finding]:
    """Code that runs but is not in the script: exec of files, folder helpers, extensions, downloads."""
    tree = _parse(source)
    if tree is None:
        return []
    local = set(local_files)
    findings: list[Finding] = []
    for call in _calls(tree):
        name = _dotted(call.func)
        inner = {_dotted(c.func).rsplit(".", 1)[-1] for c in _calls(call) if c is not call}
        if name in {"exec", "eval", "compile"} and inner & {"open", "read", "read_text", "read_bytes"}:
            findings.append(("FAIL", str(call.lineno), f"{name} of a file's contents: {ast.unparse(call)[:80]}"))
        elif name in {"runpy.run_path", "runpy.run_module"}:
            findings.append(("FAIL", str(call.lineno), f"{name} runs code outside the script"))
        elif name in {"ctypes.CDLL", "ctypes.cdll.LoadLibrary", "CDLL"}:
            findings.append(("FAIL", str(call.lineno), f"{name} loads a compiled library"))
        elif name.endswith("cpp_extension.load") or name == "load" and "sources" in {k.arg for k in call.keywords}:
            findings.append(("WARN", str(call.lineno), "a C++/CUDA extension is compiled from source files: "
                                                       "they must be counted"))
        elif name in {"importlib.import_module", "__import__"} and not all(
                isinstance(a, ast.Constant) for a in call.args):
            findings.append(("WARN", str(call.lineno), f"{name} with a computed module name"))
        elif name in {"torch.hub.load", "hub.load"}:
            findings.append(("FAIL", str(call.lineno), "torch.hub.load downloads code at run time"))
        elif name in {"subprocess.run", "subprocess.check_call", "subprocess.Popen", "os.system",
                      "subprocess.call", "subprocess.check_output"} and re.search(
                r"\bpip\b.*\binstall\b|\bgit\s+clone\b|\bcurl\b|\bwget\b", " ".join(_strings(call))):
            findings.append(("FAIL", str(call.lineno), f"{name} installs or downloads code at run time"))
    helpers = []
    for module, stmt in _imports(tree):
        hits = [f for f in local if f == f"{module}.py" or f.startswith(f"{module}/")
                or re.fullmatch(rf"{re.escape(module)}(?:\.[\w\-]+)*\.(?:so|pyd|dylib)", f)]
        helpers += [(stmt.lineno, hit) for hit in hits]
    if helpers:
        extra = sum(sizes.get(h, 0) for _, h in helpers)
        script = sizes.get("train_gpt.py", 0)
        counted_ok = isinstance(counted_bytes, int) and counted_bytes >= script + extra
        for line, hit in helpers:
            findings.append(("WARN" if counted_ok else "FAIL", str(line),
                             f"imports {hit} from the folder ({sizes.get(hit, 0):,} bytes) "
                             + ("counted in bytes_code" if counted_ok else "not counted in the code bytes")))
    return findings


_COMPILERS = re.compile(r"^(?:g\+\+|gcc|c\+\+|clang\+?\+?|nvcc|cc)$")
_NATIVE_SOURCE = re.compile(r"[\w\-]+\.(?:cpp|cc|cxx|c|cu|cuh|h|hpp)$")


def native_code_findings(source: str, local_files: Iterable[str]) -> tuple[list[Finding], list[str]]:
    """A helper module's compiled code: (findings, the folder's source files it compiles or loads)."""
    tree = _parse(source)
    if tree is None:
        return [], []
    local = sorted(local_files)
    findings: list[Finding] = []
    sources: list[str] = []
    for node in walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _NATIVE_SOURCE.search(node.value):
            base = node.value.rsplit("/", 1)[-1]
            sources += [f for f in local if f.rsplit("/", 1)[-1] == base and f not in sources]
    for call in _calls(tree):
        name = _dotted(call.func)
        words = [s.rsplit("/", 1)[-1] for s in _strings(call)]
        if name.startswith(("subprocess.", "os.system")) and any(_COMPILERS.match(w) for w in words):
            compiler = next(w for w in words if _COMPILERS.match(w))
            findings.append(("FAIL", str(call.lineno), f"compiles native code with {compiler} at run time"
                             + (f" ({', '.join(sources)})" if sources else "")))
        elif name in {"ctypes.CDLL", "ctypes.cdll.LoadLibrary", "CDLL"}:
            findings.append(("FAIL", str(call.lineno), f"{name} loads a compiled library"))
    return findings, sources


_SIDECAR = re.compile(r"(?i)val_bytes|byte_sidecar|token_bytes_\w*\.bin")
_LOG_KEY = re.compile(r"byte_sidecar:")  # a log line naming the mode ("val_bpb:byte_sidecar:enabled"), not a file


def byte_sidecar_findings(source: str) -> list[Finding]:
    """Where the script reads the byte denominator from a file of its own instead of the tokenizer's LUT."""
    tree = _parse(source)
    if tree is None:
        return []
    return [("WARN", str(n.lineno), f"reads per-token byte counts from a sidecar file ({n.value[:50]!r}) "
                                    "instead of deriving them from the tokenizer")
            for n in walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and _SIDECAR.search(n.value) and not _LOG_KEY.search(n.value)][:3]


def network_findings(source: str) -> list[Finding]:
    """Network modules and calls (downloads, sockets, hub APIs)."""
    tree = _parse(source)
    if tree is None:
        return []
    findings: list[Finding] = []
    for module, stmt in _imports(tree):
        if module in _NETWORK_MODULES:
            findings.append(("WARN", str(stmt.lineno), f"imports {module}"))
    eval_lines = {n.lineno for f in walk(tree) if isinstance(f, ast.FunctionDef) and "eval" in f.name.lower()
                  for n in walk(f) if hasattr(n, "lineno")}
    for call in _calls(tree):
        name = _dotted(call.func)
        last = name.rsplit(".", 1)[-1]
        root = name.split(".", 1)[0]
        if last in _NETWORK_CALLS or (root in {"requests", "httpx", "aiohttp"} and last in _HTTP_VERBS):
            where = "inside an evaluation function" if call.lineno in eval_lines else "timing unknown"
            findings.append(("FAIL" if call.lineno in eval_lines else "WARN", str(call.lineno),
                             f"network call {name}() ({where})"))
    return findings


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


# Other spellings a requirements.txt or README uses for a package (FlashAttention 3 is installed from a
# wheel index and documented rather than pinned: "FlashAttention 3 must be installed separately").
_PACKAGE_SPELLINGS = {"flash_attn": ("flash_attn", "flash_attn_3", "flashattention", "flash attention", "fa3")}


def _mentions(text: str, module: str, package: str) -> bool:
    names = {_normalize(module), _normalize(package), *_PACKAGE_SPELLINGS.get(_normalize(package), ())}
    return any(re.search(rf"(?<![a-z0-9]){re.escape(n)}(?![a-z0-9])", text) for n in names)


def dependency_findings(source: str, requirements: str | None, stdlib: Iterable[str],
                        readme: str | None = None) -> list[Finding]:
    """Third-party imports that neither requirements.txt nor the README's setup notes declare."""
    tree = _parse(source)
    if tree is None:
        return []
    declared = _normalize(requirements or "")
    documented = _normalize(readme or "")
    guarded = _conditional_imports(tree)
    std = set(stdlib) | {"__future__"}
    findings: list[Finding] = []
    seen: set[str] = set()
    for module, stmt in _imports(tree):
        if module in std or module in IMAGE_PACKAGES or module in seen:
            continue
        seen.add(module)
        package = _PACKAGE_ALIASES.get(module.lower(), module)
        if _mentions(declared, module, package):
            continue
        if _mentions(documented, module, package):
            findings.append(("INFO", str(stmt.lineno), f"imports {module}: README.md documents installing it "
                                                       "(setup instructions, as the challenge's README allows)"))
            continue
        optional = stmt.lineno in guarded
        findings.append(("INFO" if optional else "FAIL", str(stmt.lineno),
                         f"imports {module}{' (optional)' if optional else ''}, not declared in requirements.txt"
                         + ("" if requirements is not None else " (no requirements.txt)")))
    return findings


def _is_step(call: ast.Call) -> bool:
    name = _dotted(call.func)
    if name.endswith(".backward"):
        return True
    return name.endswith(".step") and not _STEP_SKIP.search(name)


def _score_lines(body: list[ast.stmt]) -> list[int]:
    def scores(node: ast.AST) -> bool:
        if isinstance(node, ast.AugAssign):
            return bool(_SCORE_TARGET.search(ast.unparse(node.target)))
        return isinstance(node, ast.Call) and bool(re.search(r"score|eval_|bpb|accumulate",
                                                             _dotted(node.func).rsplit(".", 1)[-1]))

    return [n.lineno for stmt in body for n in walk(stmt) if scores(n)]


def _mentions_val(node: ast.AST) -> bool:
    names = {n.id for n in walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in walk(node) if isinstance(n, ast.Attribute)}
    return any(_VAL_NAME.search(name) for name in names)


def score_first_findings(source: str) -> list[Finding]:
    """Loops over validation data that take an optimizer step before scoring the same tokens."""
    tree = _parse(source)
    if tree is None:
        return []
    findings: list[Finding] = []
    for func in (n for n in walk(tree) if isinstance(n, ast.FunctionDef)):
        ttt_function = bool(re.search(r"ttt|test_time|eval", func.name, re.IGNORECASE))
        for loop in (n for n in walk(func) if isinstance(n, ast.For | ast.While)):
            if any(isinstance(n, ast.For | ast.While) for stmt in loop.body for n in walk(stmt)):
                continue  # judge the innermost loops, where one chunk is scored and trained on
            header = ast.unparse(loop.test) if isinstance(loop, ast.While) else \
                f"{ast.unparse(loop.target)} {ast.unparse(loop.iter)}"
            if re.search(r"(?i)warm", header) or any(re.search(r"(?i)warm", ast.unparse(o.iter))
                                                    for o in walk(func) if isinstance(o, ast.For)
                                                    and loop in walk(o) and o is not loop):
                continue  # a warm-up, not scoring: the community rule on eval warm-ups judges it
            steps = sorted(c.lineno for stmt in loop.body for c in _calls(stmt) if _is_step(c))
            if not steps or not (ttt_function or _mentions_val(loop)):
                continue
            scores = sorted(_score_lines(loop.body))
            if not scores:  # a training loop nested in a chunk loop: the chunk's scoring is in an outer loop
                scores = _enclosing_scores(func, loop)
            if not scores:
                findings.append(("WARN", str(steps[0]), f"optimizer step on validation data in {func.name} with "
                                                        "no scoring in the same loop"))
            elif steps[0] < scores[0]:
                flag = _guard(func, steps[0])
                findings.append(("WARN" if flag else "FAIL", str(steps[0]),
                                 f"{func.name}: optimizer step at line {steps[0]} before the chunk is scored at line "
                                 f"{scores[0]}" + (f" (only when {flag})" if flag else "")))
    return findings


def _guard(func: ast.FunctionDef, line: int) -> str:
    """The condition of the innermost `if` in `func` whose body holds `line` (an optional branch), or ""."""
    found = ""
    for node in walk(func):
        if isinstance(node, ast.If) and any(getattr(n, "lineno", 0) == line for s in node.body for n in walk(s)):
            found = ast.unparse(node.test)[:60]  # walk is breadth-first: later matches are nested deeper
    return found


def _enclosing_scores(func: ast.FunctionDef, loop: ast.For | ast.While) -> list[int]:
    """Score lines of the nearest loop around `loop` that scores anything (the per-chunk loop)."""
    parents: dict[ast.AST, ast.AST] = {}
    for node in walk(func):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    node: ast.AST | None = parents.get(loop)
    while node is not None and node is not func:
        if isinstance(node, ast.For | ast.While) and (lines := sorted(_score_lines(node.body))):
            return lines
        node = parents.get(node)
    return []


def val_leak_findings(source: str) -> list[Finding]:
    """Validation tokens passed to training or calibration (GPTQ Hessians, fitting)."""
    tree = _parse(source)
    if tree is None:
        return []
    val_names: set[str] = set()
    for node in walk(tree):
        if isinstance(node, ast.Assign) and (
            any(_VAL_SOURCE.search(s) for s in _strings(node.value))
            or any(re.search(r"load_val|validation", _dotted(c.func)) for c in _calls(node.value))
        ):
            val_names |= {n.id for t in node.targets for n in walk(t) if isinstance(n, ast.Name)}
    findings: list[Finding] = []
    for call in _calls(tree):
        name = _dotted(call.func).rsplit(".", 1)[-1]
        if not _TRAINING_CALL.search(name):
            continue
        args = [a for a in [*call.args, *(k.value for k in call.keywords)] if isinstance(a, ast.Name)]
        leaked = [a.id for a in args if a.id in val_names]
        if leaked:
            findings.append(("FAIL", str(call.lineno), f"validation data {', '.join(leaked)} passed to {name}()"))
    return findings


def wallclock_findings(source: str, train_limit: float | None) -> list[Finding]:
    """Defaults or assignments that lift the training wallclock cap above the limit or disable it."""
    tree = _parse(source)
    if tree is None or train_limit is None:
        return []
    findings: list[Finding] = []
    for call in _calls(tree):
        if (_dotted(call.func) in {"os.environ.get", "os.getenv", "environ.get"} and len(call.args) == 2
                and isinstance(call.args[0], ast.Constant) and _WALLCLOCK.search(str(call.args[0].value))):
            findings += _cap_value(call.args[1], call.lineno, train_limit, f"default of {call.args[0].value}")
    for node in walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Constant):
            target = _dotted(node.targets[0]) if not isinstance(node.targets[0], ast.Subscript) else ""
            if target and _WALLCLOCK.search(target):
                scale = 1000.0 if target.lower().endswith("_ms") else 1.0  # a cap held in milliseconds
                findings += _cap_value(node.value, node.lineno, train_limit * scale, target)
    return findings


def _cap_value(node: ast.expr, line: int, limit: float, what: str) -> list[Finding]:
    try:
        value = float(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError):
        return []
    if value <= 0:
        return [("FAIL", str(line), f"{what} = {value:g} disables the wallclock cap")]
    if value > limit:
        return [("FAIL", str(line), f"{what} = {value:g} is above the limit ({limit:g})")]
    return []
