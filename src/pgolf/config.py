"""The pgolf.toml schema and its loading. Secrets never live here: see `secret()`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pgolf.errors import ConfigError
from pgolf.rules import DEFAULT_RULESET, Ruleset, get_ruleset

CONFIG_FILENAME = "pgolf.toml"


class _Section(BaseModel):
    """Every section rejects unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class RulesOverrides(_Section):
    """Per-workspace overrides of the ruleset's constants (rarely needed)."""

    artifact_limit_bytes: int | None = Field(default=None, gt=0)
    train_seconds: float | None = Field(default=None, gt=0)
    eval_seconds: float | None = Field(default=None, gt=0)
    gpu_kind: str | None = None
    gpu_count: int | None = Field(default=None, gt=0)
    record_margin_nats: float | None = Field(default=None, ge=0)
    significance_p: float | None = Field(default=None, gt=0, lt=1)
    min_seeds: int | None = Field(default=None, ge=1)


class DataConfig(_Section):
    """Where the dataset and tokenizer live, relative to the workspace unless absolute."""

    dataset_dir: str = "data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "data/tokenizers/fineweb_1024_bpe.model"
    vocab_size: int = Field(default=1024, gt=0)


class LocalTier(_Section):
    """This machine: CPU, one GPU, or torchrun over local GPUs."""

    command: str = "python train_gpt.py"
    env: dict[str, str] = Field(default_factory=dict)
    wallclock_seconds: float = Field(default=600.0, gt=0)
    timeout_seconds: float = Field(default=1800.0, gt=0)


class SshTier(_Section):
    """Any host reachable with ssh; runs `torchrun --standalone` there."""

    host: str
    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    remote_dir: str = "pgolf-runs"
    data_dir: str | None = None
    python: str = "python3"
    gpus: int = Field(default=8, gt=0)
    price_per_gpu_hour: float = Field(default=0.0, ge=0)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=1800.0, gt=0)


class RunpodTier(_Section):
    """Pods created through the RunPod REST API for one run and deleted after it."""

    api_url: str = "https://rest.runpod.io/v1"
    gpu_type: str = "NVIDIA H100 80GB HBM3"
    gpu_count: int = Field(default=8, gt=0)
    image: str = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
    cloud_type: Literal["SECURE", "COMMUNITY"] = "SECURE"
    container_disk_gb: int = Field(default=50, gt=0)
    volume_gb: int = Field(default=0, ge=0)
    network_volume_id: str | None = None
    data_dir: str = "/workspace/data"
    env: dict[str, str] = Field(default_factory=dict)
    ready_timeout_seconds: float = Field(default=600.0, gt=0)
    timeout_seconds: float = Field(default=1800.0, gt=0)
    price_per_gpu_hour: float | None = Field(default=None, ge=0)
    ssh_user: str = "root"
    identity_file: str | None = None


class TiersConfig(_Section):
    """The local tier and, optionally, the remote tier that promotion uses."""

    local: LocalTier = Field(default_factory=LocalTier)
    ssh: SshTier | None = None
    runpod: RunpodTier | None = None
    remote: Literal["ssh", "runpod"] | None = None


class BudgetConfig(_Section):
    """Money limits. The running state lives in .pgolf/budget.json."""

    total_usd: float = Field(default=0.0, ge=0)
    reserve_usd: float = Field(default=0.0, ge=0)
    price_per_gpu_hour: float = Field(default=2.5, ge=0)
    min_seconds_between_paid_runs: float = Field(default=3600.0, ge=0)
    llm_cap_usd: float = Field(default=5.0, ge=0)
    confirm_min_gpus: int = Field(default=8, gt=0)
    auto_confirm: bool = False


class LoopConfig(_Section):
    """The experiment loop's decisions and limits."""

    noise_seeds: int = Field(default=2, ge=2)
    min_gain: float = Field(default=0.002, ge=0)
    sigma_multiplier: float = Field(default=2.0, ge=0)
    promotion_threshold: float = Field(default=0.03, ge=0)
    artifact_margin_bytes: int = Field(default=100_000, ge=0)
    max_experiments: int | None = Field(default=None, gt=0)
    max_hours: float | None = Field(default=None, gt=0)
    max_usd: float | None = Field(default=None, ge=0)


class SearchParam(_Section):
    """One searched hyperparameter: a range (float/int) or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None


class ProposerConfig(_Section):
    """What proposes the next change: built-in search, an external agent, or an LLM."""

    kind: Literal["search", "agent", "llm"] = "search"
    seed: int = 0
    agent_command: str | None = None
    agent_timeout_seconds: float = Field(default=1800.0, gt=0)
    search_space: dict[str, SearchParam] = Field(default_factory=dict)


class LlmConfig(_Section):
    """One LLM endpoint; the key is read from the environment variable named here."""

    provider: Literal["openai", "anthropic"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    input_usd_per_mtok: float = Field(default=0.15, ge=0)
    output_usd_per_mtok: float = Field(default=0.60, ge=0)
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    max_tokens: int = Field(default=4096, gt=0)


class ResearchConfig(_Section):
    """Research sources and grading; each source has its own sub-table."""

    enabled: bool = True
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    grader: Literal["heuristic", "llm"] = "heuristic"


class PgolfConfig(_Section):
    """The whole pgolf.toml."""

    ruleset: str = DEFAULT_RULESET
    rules: RulesOverrides = Field(default_factory=RulesOverrides)
    data: DataConfig = Field(default_factory=DataConfig)
    tiers: TiersConfig = Field(default_factory=TiersConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    proposer: ProposerConfig = Field(default_factory=ProposerConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    research: ResearchConfig = Field(default_factory=ResearchConfig)

    def get_ruleset(self) -> Ruleset:
        """The ruleset named here with this file's overrides applied."""
        return get_ruleset(self.ruleset, self.rules.model_dump())


def _describe(err: ValidationError, source: str) -> str:
    """One line naming the first bad key path and the problem."""
    first = err.errors()[0]
    path = ".".join(str(p) for p in first["loc"]) or "(top level)"
    problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {path}: {problem}{tail}"


def parse_config(data: dict[str, Any], source: str = CONFIG_FILENAME) -> PgolfConfig:
    """Validate a parsed TOML mapping; errors name the key path."""
    try:
        cfg = PgolfConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None
    cfg.get_ruleset()  # an unknown ruleset name is a config error too
    return cfg


def load_config(path: Path) -> PgolfConfig:
    """Read and validate a pgolf.toml file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return parse_config(data, str(path))


def _read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments and blank lines skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def secret(name: str, workspace_root: Path | None = None) -> str | None:
    """A secret from the environment, else from the workspace's .env (which never overrides it)."""
    value = os.environ.get(name)
    if value:
        return value
    if workspace_root is not None:
        return _read_dotenv(workspace_root / ".env").get(name) or None
    return None
