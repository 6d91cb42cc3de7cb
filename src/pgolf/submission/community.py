"""The community's rules (openai/parameter-golf#1017 C1-C4, #677, #886, #402, ...) as static detectors.

Which rulings apply, their severity, date and PR live in `rulings.toml` beside this module, so a new ruling
is a data change; this module holds only the detectors the data names. Every detector reads the AST (never
runs the script) and returns (line, what it saw) pairs; the check turns them into evidence lines that name
the rule and the ruling.
"""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgolf.submission.pysource import parse_tree, walk

RULINGS_FILE = Path(__file__).with_name("rulings.toml")
Hit = tuple[int, str, bool]  # (line, what the detector saw, sure: False caps the severity at WARN)

_TARGET = re.compile(r"(?i)^(?:tgt|tgts|target|targets|y|y_batch|labels?|next_tok(?:en)?s?)(?:_np|_ids)?$")
_KEY = re.compile(r"(?i)key|hash|bucket|slot_idx|idx_full")
_LOSSY = re.compile(r"(?i)nll|loss|bpb|bits")
_VAL = re.compile(r"(?i)(?:^|_)val(?:id|idation)?(?:_|$)")
_EVALISH = re.compile(r"(?i)eval|ttt|score|val")


@dataclass(frozen=True)
class Ruling:
    """One rule as the data file states it."""

    id: str
    detector: str
    severity: str
    rule: str
    ruling: str
    refs: tuple[str, ...]
    date: str

    def cite(self) -> str:
        """`C1-target-in-key (openai/parameter-golf#779, 2026-03-27)`: what a finding applies."""
        return f"{self.id} ({', '.join(self.refs[:2])}, {self.date})"


@functools.cache
def load_rulings(path: Path = RULINGS_FILE) -> tuple[str, tuple[Ruling, ...]]:
    """(version, rulings) from the data file; an unknown detector name is refused there, not ignored."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rulings = tuple(Ruling(r["id"], r["detector"], r["severity"], r["rule"], r["ruling"], tuple(r.get("refs", [])),
                           str(r["date"])) for r in data.get("rule", []))
    unknown = [r.detector for r in rulings if r.detector not in DETECTORS]
    if unknown:
        raise ValueError(f"{path.name}: no detector named {', '.join(unknown)}")
    return str(data.get("version", "")), rulings


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in walk(node) if isinstance(n, ast.Attribute)}


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in walk(tree) if isinstance(n, ast.FunctionDef)]


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in walk(node) if isinstance(n, ast.Call)]


def _is_step(call: ast.Call) -> bool:
    name = _dotted(call.func)
    return name.endswith(".backward") or (name.endswith(".step") and not re.search(r"(?i)sched|lr", name))


# -- detectors ------------------------------------------------------------------------------------------

def target_in_cache_key(tree: ast.Module) -> list[Hit]:
    """A lookup key (hash/bucket index) computed from the target token: C1 (the #779 ruling)."""
    hits = []
    for node in walk(tree):
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.BinOp):
            continue
        target = " ".join(_dotted(t) for t in node.targets)
        used = _names(node.value)
        if _KEY.search(target) and any(_TARGET.match(n) for n in used) and any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitXor | ast.Mult) for n in walk(node.value)):
            tgt = sorted(n for n in used if _TARGET.match(n))
            hits.append((node.lineno, f"{target} hashes the target token ({', '.join(tgt)}) into the lookup key",
                         True))
    return hits


def unnormalized_mixture(tree: ast.Module) -> list[Hit]:
    """`(1 - a) * p_model + a * p_cache` of the target's probability only, then a log: C2 (#886)."""
    hits = []
    for func in _functions(tree):
        text = ast.unparse(func) if len(func.body) < 400 else ""
        normalizes = bool(re.search(r"softmax|log_softmax|logsumexp|/\s*\w*(?:sum|total|norm)\w*\(", text))
        for node in walk(func):
            if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
                continue
            sides = [node.left, node.right]
            if not all(isinstance(s, ast.BinOp) and isinstance(s.op, ast.Mult) for s in sides):
                continue
            weights = " ".join(ast.unparse(s) for s in sides)
            if re.search(r"\(1(?:\.0?)? - \w+\)", weights) and re.search(r"(?i)\bp_?\w*|prob", weights) \
                    and not normalizes and re.search(r"(?i)cache|ngram|n_gram|count", text):
                hits.append((node.lineno, f"{func.name}: a blend of the target's probabilities "
                                          f"({ast.unparse(node)[:60]}) with no normalization over the vocabulary",
                             False))
    return hits


def min_over_passes(tree: ast.Module) -> list[Hit]:
    """The better of several scorings kept (min of losses / bpb): C4, single pass."""
    hits = []
    for call in _calls(tree):
        name = _dotted(call.func).rsplit(".", 1)[-1]
        if name not in {"min", "minimum", "fmin"} or len(call.args) < 2:
            continue
        lossy = [ast.unparse(a) for a in call.args if _LOSSY.search(" ".join(_names(a)) or ast.unparse(a))]
        if len(lossy) >= 2:
            hits.append((call.lineno, f"{_dotted(call.func)}({', '.join(lossy)[:60]}) keeps the better of several "
                                      "scorings of the same tokens", True))
    return hits


def val_finetune_before_scoring(tree: ast.Module) -> list[Hit]:
    """Epochs of optimizer steps on validation data before (not after) the tokens are scored."""
    hits = []
    for func in _functions(tree):
        parents = {child: node for node in walk(func) for child in ast.iter_child_nodes(node)}
        for loop in (n for n in walk(func) if isinstance(n, ast.For)):
            if not re.search(r"(?i)epoch", ast.unparse(loop.target) + ast.unparse(loop.iter)):
                continue
            steps = [c.lineno for c in _calls(loop) if _is_step(c)]
            names = _names(loop) | {a.arg for a in func.args.args}
            if not steps or not any(_VAL.search(n) or n == "val_tokens" for n in names):
                continue
            if _scored_before(loop, parents, func):
                continue  # score-first TTT: the chunk was scored earlier in the enclosing loop
            later = [n.lineno for n in walk(func) if _scores(n) and n.lineno > loop.lineno]
            hits.append((steps[0], f"{func.name}: epochs of optimizer steps on validation data"
                         + (f", scored afterwards at line {later[0]} (train-then-score)" if later else
                            " with no scoring in this function (check that these tokens were scored first)"),
                         bool(later)))
    return hits


def _scores(node: ast.AST) -> bool:
    if isinstance(node, ast.AugAssign):
        return bool(re.search(r"(?i)nll|loss_sum|sum_loss|byte|bits|bpb|score", ast.unparse(node.target)))
    return isinstance(node, ast.Call) and bool(re.search(r"(?i)score|eval_val|bpb|accumulate",
                                                         _dotted(node.func).rsplit(".", 1)[-1]))


def _scored_before(loop: ast.AST, parents: dict[ast.AST, ast.AST], func: ast.AST) -> bool:
    node = parents.get(loop)
    while node is not None and node is not func:
        if isinstance(node, ast.For | ast.While) and any(
                _scores(n) and n.lineno < loop.lineno for stmt in node.body for n in walk(stmt)):
            return True
        node = parents.get(node)
    return False


def slot_or_second_order_on_val(tree: ast.Module) -> list[Hit]:
    """A delta optimized at eval time (SLOT) or L-BFGS / second-order steps in an eval function."""
    hits = []
    for func in _functions(tree):
        if not _EVALISH.search(func.name):
            continue
        for call in _calls(func):
            name = _dotted(call.func)
            if name.endswith(("LBFGS", "optim.lbfgs")) or re.search(r"(?i)hessian_vector|hvp", name):
                hits.append((call.lineno, f"{func.name}: {name} (a second-order optimizer) at evaluation", False))
            elif name.split(".")[-1] in {"zeros", "zeros_like", "randn", "empty"} and any(
                    k.arg == "requires_grad" and isinstance(k.value, ast.Constant) and k.value.value
                    for k in call.keywords) and any(_is_step(c) for c in _calls(func)):
                hits.append((call.lineno, f"{func.name}: a tensor optimized at evaluation (SLOT-style delta)", False))
    return hits


def gptq_calibration_on_val(tree: ast.Module) -> list[Hit]:
    """GPTQ / Hessian calibration fed validation tokens."""
    hits = []
    for call in _calls(tree):
        name = _dotted(call.func).rsplit(".", 1)[-1]
        if not re.search(r"(?i)gptq|hessian|calib", name):
            continue
        args = [*call.args, *(k.value for k in call.keywords)]
        val = sorted({n for a in args for n in _names(a) if _VAL.search(n) or n == "val_tokens"})
        if val:
            hits.append((call.lineno, f"{name}() calibrates on validation data ({', '.join(val)})", True))
    return hits


def warmup_on_val(tree: ast.Module) -> list[Hit]:
    """backward()/step() on validation tokens in a warm-up (compile warm-up before the eval loop)."""
    hits = []
    for func in _functions(tree):
        for node in walk(func):
            if not isinstance(node, ast.For | ast.If):
                continue
            label = ast.unparse(node.test) if isinstance(node, ast.If) else \
                ast.unparse(node.target) + " " + ast.unparse(node.iter)
            if not re.search(r"(?i)warm", label):
                continue
            steps = [c.lineno for c in _calls(node) if _is_step(c)]
            if steps and any(_VAL.search(n) or n == "val_tokens" for n in _names(node)):
                hits.append((steps[0], f"{func.name}: a warm-up ({label[:40]}) takes optimizer steps on "
                                       "validation tokens", False))
                break
    return hits


def smear_without_bos_mask(tree: ast.Module) -> list[Hit]:
    """Previous-token mixing (x[:, :-1] shifted in through a gate) with no BOS mask in the same function."""
    hits = []
    for func in _functions(tree):
        text = ast.unparse(func) if len(func.body) < 400 else ""
        shifted = re.search(r"\[:, :-1\]", text) and re.search(r"(?i)smear|gate", text)
        if shifted and not re.search(r"(?i)bos", text):
            line = next((n.lineno for n in walk(func) if isinstance(n, ast.Subscript)
                         and ast.unparse(n).endswith("[:, :-1]")), func.lineno)
            hits.append((line, f"{func.name}: mixes in the previous token with no BOS (document-boundary) mask",
                         False))
    return hits


DETECTORS: dict[str, Callable[[ast.Module], list[Hit]]] = {
    f.__name__: f for f in (target_in_cache_key, unnormalized_mixture, min_over_passes, val_finetune_before_scoring,
                            slot_or_second_order_on_val, gptq_calibration_on_val, warmup_on_val,
                            smear_without_bos_mask)
}


def community_findings(source: str, submitted: str | None = None) -> list[tuple[str, str, str]]:
    """(severity, line, message naming the rule and the ruling) for every ruling the code matches.

    A pattern a detector cannot be sure of is at most a WARN; a submission dated before a ruling gets INFO
    for it (the ruling did not exist yet), with the evidence still shown.
    """
    tree = parse_tree(source)
    if tree is None:
        return []
    found = []
    for ruling in load_rulings(RULINGS_FILE)[1]:  # the module global, so another data file can be named
        for line, what, sure in DETECTORS[ruling.detector](tree):
            severity = ruling.severity if sure else "WARN"
            note = ""
            if submitted and submitted[:10] < ruling.date:
                severity, note = "INFO", f" (submitted {submitted[:10]}, before this ruling)"
            found.append((severity, str(line), f"{what}{note} [{ruling.cite()}: {ruling.ruling}]"))
    return found
