"""Deterministic, cheap checks of a proposed script before any training starts."""

from __future__ import annotations

import ast
import sys
from dataclasses import asdict, dataclass
from typing import Any

from pgolf.loop.hyperparams import Hyperparameter, find, read_hyperparameters

# Modules that reach the network: a script that imports one could download data during evaluation.
NETWORK_MODULES = frozenset({
    "socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib",
    "telnetlib", "websocket", "websockets", "paramiko", "huggingface_hub", "datasets", "boto3",
})
# Third-party modules the challenge's scripts use; anything else is flagged (a warning, not a failure).
KNOWN_THIRD_PARTY = frozenset({
    "torch", "numpy", "sentencepiece", "zstandard", "zstd", "brotli", "triton", "flash_attn",
    "flash_attn_interface", "mlx", "einops", "lzma", "tiktoken",
})
_SIZE_PARAMS = ("VOCAB_SIZE", "MODEL_DIM", "NUM_LAYERS", "NUM_HEADS", "NUM_KV_HEADS", "MLP_MULT")


@dataclass(frozen=True)
class Check:
    """One preflight check's verdict; `fatal` failures stop the experiment before it runs."""

    name: str
    passed: bool
    detail: str
    fatal: bool = True


@dataclass(frozen=True)
class Preflight:
    """Every check, and the first fatal failure if any."""

    checks: tuple[Check, ...]
    oversize: bool = False

    @property
    def ok(self) -> bool:
        return all(c.passed or not c.fatal for c in self.checks)

    @property
    def failure(self) -> str:
        """The first fatal failure as one line (empty when ok)."""
        bad = next((c for c in self.checks if c.fatal and not c.passed), None)
        return f"preflight {bad.name}: {bad.detail}" if bad else ""

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for preflight.json."""
        return {"ok": self.ok, "oversize": self.oversize, "checks": [asdict(c) for c in self.checks]}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _import_checks(tree: ast.AST) -> list[Check]:
    names = _imports(tree)
    network = sorted(names & NETWORK_MODULES)
    unknown = sorted(n for n in names - NETWORK_MODULES - KNOWN_THIRD_PARTY
                     if n not in sys.stdlib_module_names and n != "__future__")
    return [
        Check("network", not network,
              f"imports {', '.join(network)}: no network is allowed at evaluation" if network
              else "no network module imported"),
        Check("imports", not unknown,
              f"unusual third-party imports: {', '.join(unknown)}" if unknown else "only known modules",
              fatal=False),
    ]


def _value(params: dict[str, Hyperparameter], key: str, env: dict[str, str]) -> float | None:
    if key in env:
        try:
            return float(env[key])
        except ValueError:
            return None
    p = find(params, key)
    return float(p.default) if p is not None and isinstance(p.default, int | float) else None


def model_size_units(params: dict[str, Hyperparameter], env: dict[str, str]) -> float | None:
    """Parameter count of the baseline GPT shape, up to a constant; None when the block lacks a size."""
    v = {k: _value(params, k, env) for k in _SIZE_PARAMS}
    if any(x is None or x <= 0 for x in v.values()):
        return None
    d, layers = v["MODEL_DIM"], v["NUM_LAYERS"]
    kv_dim = d * v["NUM_KV_HEADS"] / v["NUM_HEADS"]  # type: ignore[operator]
    per_layer = 2 * d * d + 2 * d * kv_dim + 2 * v["MLP_MULT"] * d * d  # type: ignore[operator]
    return v["VOCAB_SIZE"] * d + layers * per_layer  # type: ignore[operator]


def projected_artifact_bytes(source: str, env: dict[str, str], parent_source: str,
                             parent_model_bytes: int | None) -> int | None:
    """Code bytes plus the parent's measured model bytes scaled by the change in model size."""
    if parent_model_bytes is None:
        return None
    new = model_size_units(read_hyperparameters(source), env)
    old = model_size_units(read_hyperparameters(parent_source), env)
    if new is None or old is None:
        return None
    return len(source.encode("utf-8")) + round(parent_model_bytes * new / old)


def preflight(source: str, *, artifact_limit: int, margin_bytes: int, env: dict[str, str] | None = None,
              parent_source: str | None = None, parent_model_bytes: int | None = None) -> Preflight:
    """Compiles, imports no network module, projected artifact under the limit with a margin."""
    env = env or {}
    try:
        tree = ast.parse(source, "train_gpt.py")
        compile(tree, "train_gpt.py", "exec")
    except SyntaxError as err:
        return Preflight((Check("compiles", False, f"line {err.lineno}: {err.msg}"),))
    checks = [Check("compiles", True, "ok"), *_import_checks(tree)]
    projected = None
    if parent_source is not None:
        projected = projected_artifact_bytes(source, env, parent_source, parent_model_bytes)
    oversize = False
    if projected is None:
        checks.append(Check("artifact_bytes", True, "no projection (no measured parent or no size "
                            "hyperparameters)", fatal=False))
    else:
        budget = artifact_limit - margin_bytes
        oversize = projected > budget
        checks.append(Check("artifact_bytes", not oversize,
                            f"projected {projected:,} bytes {'>' if oversize else '<='} {budget:,} "
                            f"(limit {artifact_limit:,} minus margin {margin_bytes:,})"))
    return Preflight(tuple(checks), oversize)
