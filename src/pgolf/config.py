"""The pgolf.toml schema and its loading. Secrets never live here: see `secret()`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from pgolf import statefile
from pgolf.errors import ConfigError
from pgolf.rules import DEFAULT_RULESET, Ruleset, get_ruleset

CONFIG_FILENAME = "pgolf.toml"


class _Section(BaseModel):
    """Every section rejects unknown keys, so a typo is an error, not a silent default; no number may be
    nan or inf (`total_usd = inf` would open every budget gate)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Sane maxima for counts: a value beyond them is a typo or an attack (noise_seeds = 10**30 exhausts memory).
_MAX_SEEDS = 100
_MAX_GPUS = 1024
_MAX_COUNT = 1_000_000
_MAX_RETRIES = 100
_MAX_BYTES = 10**12


def _command_line(value: str | None) -> str | None:
    """A command pgolf splits into argv: not empty, quotes balanced (checked at load, not mid-run)."""
    if value is None:
        return value
    try:
        argv = shlex.split(value)
    except ValueError as err:
        raise ValueError(f"cannot be split into arguments ({err}: check its quotes)") from None
    if not argv:
        raise ValueError("is empty: give the command that trains, e.g. 'python train_gpt.py'")
    return value


CommandLine = Annotated[str, AfterValidator(_command_line)]


class RulesOverrides(_Section):
    """Per-workspace overrides of the ruleset's constants (rarely needed)."""

    artifact_limit_bytes: int | None = Field(default=None, gt=0, le=_MAX_BYTES)
    train_seconds: float | None = Field(default=None, gt=0)
    eval_seconds: float | None = Field(default=None, gt=0)
    gpu_kind: str | None = None
    gpu_count: int | None = Field(default=None, gt=0, le=_MAX_GPUS)
    record_margin_nats: float | None = Field(default=None, ge=0)
    significance_p: float | None = Field(default=None, gt=0, lt=1)
    min_seeds: int | None = Field(default=None, ge=1, le=_MAX_SEEDS)


class DataConfig(_Section):
    """Where the dataset and tokenizer live, relative to the workspace unless absolute."""

    dataset_dir: str = "data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "data/tokenizers/fineweb_1024_bpe.model"
    vocab_size: int = Field(default=1024, gt=0, le=65536)  # shards hold uint16 token ids


class LocalTier(_Section):
    """This machine: CPU, one GPU, or torchrun over local GPUs."""

    command: CommandLine = "python train_gpt.py"
    env: dict[str, str] = Field(default_factory=dict)
    wallclock_seconds: float = Field(default=600.0, gt=0)
    timeout_seconds: float = Field(default=1800.0, gt=0)
    # Runs at once: a number, or "auto" (one per gpus_per_slot visible CUDA GPUs, else 1).
    slots: StrictInt | Literal["auto"] = Field(default=1)
    gpus_per_slot: int = Field(default=1, gt=0, le=64)
    # Runs end at ITERATIONS; a run the wallclock cap stopped earlier is a crash, never a silent score.
    step_limited: bool = False

    @field_validator("slots")
    @classmethod
    def _slot_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("slots must be between 1 and 256, or \"auto\"")
        return value


# Remote tiers: `{gpus}` in the command becomes the tier's GPU count; `fetch` names what comes back.
REMOTE_COMMAND = "torchrun --standalone --nproc_per_node={gpus} train_gpt.py"
REMOTE_FETCH = ("result.json", "*.ptz")


class SshHost(_Section):
    """Another host of the SSH tier: the same settings as the tier's own host, its own address and slots."""

    host: str
    port: int = Field(default=22, gt=0, le=65535)
    user: str | None = None
    slots: int = Field(default=1, gt=0, le=64)


class SshTier(_Section):
    """Any host reachable with ssh; runs `torchrun --standalone` there."""

    host: str
    user: str | None = None
    port: int = Field(default=22, gt=0, le=65535)
    identity_file: str | None = None
    remote_dir: str = "pgolf-runs"
    data_dir: str | None = None
    python: str = "python3"
    gpus: int = Field(default=8, gt=0, le=_MAX_GPUS)
    price_per_gpu_hour: float = Field(default=0.0, ge=0)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=1800.0, gt=0)
    command: CommandLine = REMOTE_COMMAND
    sync_data: bool = False
    fetch: list[str] = Field(default_factory=lambda: list(REMOTE_FETCH))
    slots: int = Field(default=1, gt=0, le=64)  # promotions run on the host at once
    hosts: list[SshHost] = Field(default_factory=list, max_length=64)  # more hosts, each with its slots


class RunpodTier(_Section):
    """Pods created through the RunPod REST API for one run and deleted after it."""

    api_url: str = "https://rest.runpod.io/v1"
    gpu_type: str = "NVIDIA H100 80GB HBM3"
    gpu_count: int = Field(default=8, gt=0, le=_MAX_GPUS)
    image: str = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
    cloud_type: Literal["SECURE", "COMMUNITY"] = "SECURE"
    container_disk_gb: int = Field(default=50, gt=0, le=_MAX_COUNT)
    volume_gb: int = Field(default=0, ge=0, le=_MAX_COUNT)
    network_volume_id: str | None = None
    data_dir: str = "/workspace/data"
    env: dict[str, str] = Field(default_factory=dict)
    ready_timeout_seconds: float = Field(default=600.0, gt=0)
    max_pods: int = Field(default=1, gt=0, le=64)  # promotions (one pod each) at once
    timeout_seconds: float = Field(default=1800.0, gt=0)
    price_per_gpu_hour: float | None = Field(default=None, ge=0)
    ssh_user: str = "root"
    identity_file: str | None = None
    remote_dir: str = "/workspace/pgolf-runs"
    command: CommandLine = REMOTE_COMMAND
    sync_data: bool = False
    fetch: list[str] = Field(default_factory=lambda: list(REMOTE_FETCH))


class EarlyAbortConfig(_Section):
    """Stop a remote run whose val_bpb at a checkpoint is worse than the best remote run's."""

    enabled: bool = True
    at_fraction: float = Field(default=0.3, gt=0, lt=1)
    margin_bpb: float = Field(default=0.02, ge=0)


class TiersConfig(_Section):
    """The local tier and, optionally, the remote tier that promotion uses."""

    local: LocalTier = Field(default_factory=LocalTier)
    ssh: SshTier | None = None
    runpod: RunpodTier | None = None
    remote: Literal["ssh", "runpod"] | None = None
    early_abort: EarlyAbortConfig = Field(default_factory=EarlyAbortConfig)


class BudgetConfig(_Section):
    """Money limits. The running state lives in .pgolf/budget.json."""

    total_usd: float = Field(default=0.0, ge=0)
    reserve_usd: float = Field(default=0.0, ge=0)
    price_per_gpu_hour: float = Field(default=2.5, ge=0)
    min_seconds_between_paid_runs: float = Field(default=3600.0, ge=0)
    llm_cap_usd: float = Field(default=5.0, ge=0)
    confirm_min_gpus: int = Field(default=8, gt=0, le=_MAX_GPUS)
    auto_confirm: bool = False


class LoopConfig(_Section):
    """The experiment loop's decisions and limits."""

    noise_seeds: int = Field(default=2, ge=2, le=_MAX_SEEDS)
    # The keep decision (pgolf.loop.judge; defaults tuned by benchmarks/bench_validity.py).
    min_gain: float = Field(default=0.002, ge=0, le=1)  # a keep must beat the incumbent by more than this
    alpha: float = Field(default=0.05, gt=0, le=0.5)  # per session: chance of keeping any change that is not better
    # The first run's bar, in σ of a difference. `sigma_multiplier`, the single-run bar of the rule before
    # the judge, is read as its old name: both are "the σs one run must beat".
    screen_sigmas: float = Field(default=1.0, ge=0, le=10,
                                 validation_alias=AliasChoices("screen_sigmas", "sigma_multiplier"))
    replicates: int = Field(default=4, ge=1, le=50)  # paired seeds at the first look of the test
    max_replicates: int = Field(default=8, ge=1, le=100)  # paired seeds at the last look
    equal_sigmas: float = Field(default=2.0, ge=0, le=10)  # "equal within the noise": loss allowed a shorter script
    alpha_horizon: int = Field(default=8, ge=1, le=10_000)  # screened-in candidates that share 90% of alpha
    promotion_threshold: float = Field(default=0.03, ge=0)
    artifact_margin_bytes: int = Field(default=100_000, ge=0, le=_MAX_BYTES)
    max_experiments: int | None = Field(default=None, gt=0, le=_MAX_COUNT)
    max_hours: float | None = Field(default=None, gt=0)
    max_usd: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _replicates_in_order(self) -> LoopConfig:
        if self.max_replicates < self.replicates:
            raise ValueError(f"max_replicates ({self.max_replicates}) must be >= replicates ({self.replicates})")
        return self


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
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # samplers take 32-bit seeds
    agent_command: CommandLine | None = None
    agent_timeout_seconds: float = Field(default=1800.0, gt=0)
    max_failures: int = Field(default=3, ge=1, le=100)  # proposer failures in a row that stop the loop
    search_space: dict[str, SearchParam] = Field(default_factory=dict)
    search_sampler: Literal["tpe", "random"] = "tpe"  # random: a baseline to compare TPE with


class LlmConfig(_Section):
    """One LLM endpoint; the key is read from the environment variable named here."""

    provider: Literal["openai", "anthropic"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    input_usd_per_mtok: float = Field(default=0.15, ge=0)
    output_usd_per_mtok: float = Field(default=0.60, ge=0)
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=_MAX_RETRIES)
    max_tokens: int = Field(default=4096, gt=0, le=_MAX_COUNT)


_DURATION = r"^\d+(\.\d+)?[mhdw]$"  # "90m", "48h", "7d", "2w"; parsed by pgolf.research.fetch.parse_duration


class _ResearchSource(_Section):
    """What every research source shares; `since` overrides [research].since for this source."""

    enabled: bool = True
    base_url: str
    since: str | None = Field(default=None, pattern=_DURATION)
    timeout_seconds: float = Field(default=120.0, gt=0)
    min_interval_seconds: float = Field(default=0.0, ge=0)
    max_items: int = Field(default=200, gt=0, le=_MAX_COUNT)


class ArxivSource(_ResearchSource):
    """arXiv API (Atom): each query is searched within all `categories`, newest first."""

    base_url: str = "https://export.arxiv.org/api/query"
    min_interval_seconds: float = Field(default=3.0, ge=0)  # arXiv asks for 3 s between calls
    categories: list[str] = Field(default_factory=lambda: ["cs.LG", "cs.CL"])
    queries: list[str] = Field(default_factory=lambda: [
        "language model quantization", "small language model training", "tokenizer compression",
        "test-time training language model", "parameter efficient transformer", "optimizer for transformers"])
    page_size: int = Field(default=50, gt=0, le=2000)


class OpenReviewSource(_ResearchSource):
    """OpenReview API v2: accepted papers of `venues` whose title, abstract or keywords match a keyword."""

    base_url: str = "https://api2.openreview.net"
    since: str | None = Field(default="365d", pattern=_DURATION)
    venues: list[str] = Field(default_factory=lambda: [
        "ICLR.cc/2025/Conference", "ICML.cc/2025/Conference", "NeurIPS.cc/2025/Conference"])
    keywords: list[str] = Field(default_factory=lambda: [
        "quantization", "compression", "small language model", "tokenizer", "test-time training",
        "efficient training", "optimizer"])
    page_size: int = Field(default=1000, gt=0, le=1000)
    max_pages: int = Field(default=10, gt=0, le=_MAX_COUNT)


class SemanticScholarSource(_ResearchSource):
    """Semantic Scholar Graph API paper search; S2_API_KEY (optional) raises the rate limit."""

    base_url: str = "https://api.semanticscholar.org/graph/v1"
    since: str | None = Field(default="30d", pattern=_DURATION)  # its index lags arXiv by days
    min_interval_seconds: float = Field(default=1.0, ge=0)
    queries: list[str] = Field(default_factory=lambda: [
        "language model quantization", "tiny language model pretraining", "bits per byte compression"])
    page_size: int = Field(default=100, gt=0, le=100)


class GithubPrsSource(_ResearchSource):
    """Pull requests of watched repositories; `records_repo` PRs also yield their records folders."""

    base_url: str = "https://api.github.com"
    repos: list[str] = Field(default_factory=lambda: [
        "openai/parameter-golf", "KellerJordan/modded-nanogpt", "karpathy/autoresearch"])
    records_repo: str = "openai/parameter-golf"
    page_size: int = Field(default=100, gt=0, le=100)
    max_pages: int = Field(default=10, gt=0, le=_MAX_COUNT)


class GithubCodeSource(_ResearchSource):
    """GitHub code search (needs GITHUB_TOKEN)."""

    base_url: str = "https://api.github.com"
    min_interval_seconds: float = Field(default=6.0, ge=0)  # code search allows 10 requests a minute
    queries: list[str] = Field(default_factory=lambda: [
        "parameter-golf train_gpt.py", "val_bpb int6 quantization", "fineweb10B_sp1024"])
    page_size: int = Field(default=30, gt=0, le=100)


class FeedsSource(_ResearchSource):
    """RSS 2.0 and Atom feeds."""

    base_url: str = ""  # unused: every feed is a full URL
    since: str | None = Field(default="14d", pattern=_DURATION)
    urls: list[str] = Field(default_factory=lambda: [
        "https://huggingface.co/blog/feed.xml", "https://openai.com/news/rss.xml",
        "https://kellerjordan.github.io/feed.xml"])


class TavilySource(_ResearchSource):
    """Tavily web search (needs TAVILY_API_KEY), scheduled queries."""

    base_url: str = "https://api.tavily.com"
    queries: list[str] = Field(default_factory=lambda: [
        "OpenAI parameter golf leaderboard", "parameter golf val_bpb record", "16MB language model challenge"])
    search_depth: Literal["basic", "advanced"] = "basic"
    max_results: int = Field(default=10, gt=0, le=20)


class ResearchSources(_Section):
    """One sub-table per source: `[research.sources.arxiv]` and so on."""

    arxiv: ArxivSource = Field(default_factory=ArxivSource)
    openreview: OpenReviewSource = Field(default_factory=OpenReviewSource)
    semantic_scholar: SemanticScholarSource = Field(default_factory=SemanticScholarSource)
    github_prs: GithubPrsSource = Field(default_factory=GithubPrsSource)
    github_code: GithubCodeSource = Field(default_factory=GithubCodeSource)
    feeds: FeedsSource = Field(default_factory=FeedsSource)
    tavily: TavilySource = Field(default_factory=TavilySource)


class RelevanceFloor(_Section):
    """Least source relevance score kept, by authority band (high >= 0.8 > medium >= 0.5 > low)."""

    high: float = Field(default=0.3, ge=0, le=1)
    medium: float = Field(default=0.4, ge=0, le=1)
    low: float = Field(default=0.65, ge=0, le=1)


class ResearchConfig(_Section):
    """Research sources and grading; each source has its own sub-table."""

    enabled: bool = True
    sources: ResearchSources = Field(default_factory=ResearchSources)
    grader: Literal["heuristic", "llm"] = "heuristic"
    since: str = Field(default="48h", pattern=_DURATION)
    relevance_floor: RelevanceFloor = Field(default_factory=RelevanceFloor)
    max_retries: int = Field(default=3, ge=0, le=_MAX_RETRIES)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=60.0, ge=0)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    full_every_hours: float = Field(default=6.0, gt=0)
    fast_every_hours: float = Field(default=1.0, gt=0)


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
    problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
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
    """Read and validate a pgolf.toml file (guarded: size, UTF-8, nesting; see pgolf.statefile)."""
    return parse_config(statefile.load_toml(path, error=ConfigError), str(path))


def _read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments and blank lines skipped, quotes stripped."""
    values: dict[str, str] = {}
    text = statefile.read_text(path, max_bytes=statefile.CONFIG_MAX_BYTES, error=ConfigError, missing_ok=True)
    for line in (text or "").splitlines():
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
