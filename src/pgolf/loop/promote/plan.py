"""A promotion's plan: tier, GPUs, price, the worst-case reservation, and every gate's verdict.

Nothing here spends money; `pgolf.loop.promote.execute` does, after the plan's gates pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgolf.budget import BudgetManager
from pgolf.compute.base import RunOutcome
from pgolf.compute.early_abort import AbortPoint, plan_early_abort
from pgolf.compute.runpod import API_KEY_ENV
from pgolf.compute.ssh import STOP_SECONDS, SshTarget
from pgolf.config import PgolfConfig, RunpodTier, SshHost, SshTier, secret
from pgolf.errors import PgolfError
from pgolf.fmt import fmt_bytes
from pgolf.ledger import LedgerRow
from pgolf.loop.decision import Gate
from pgolf.loop.promotion import remote_tier_name
from pgolf.status import Status
from pgolf.workspace import Workspace

# Gates that may pass later (with time, or once the user fixes pgolf.toml or the environment): the row
# stays pending. The others judge the run itself and refuse it for good.
TRANSIENT_GATES = frozenset({"rate_limit", "confirmation", "remote_tier", "api_key"})
# Expected (not worst-case) seconds around training and evaluation: boot, staging, fetching.
_SETUP_SECONDS = 300.0
# Worst-case allowances inside the reservation: copying the commit, data and results (all within the
# run's deadline, which cuts them short), and the provider's answer to the termination (4 tries of
# 30 s with back-off), which comes after the deadline.
_COPY_ALLOWANCE_SECONDS = 300.0
TERMINATE_SECONDS = 150.0
# Environment names that change how many processes or GPUs a run uses.
_GPU_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NPROC_PER_NODE",
                      "NPROC", "NUM_GPUS"})


@dataclass
class PromotionPlan:
    """What a promotion would do and cost, and every gate's verdict."""

    run_id: str
    remote_run_id: str
    commit: str
    tier: str | None
    gpus: int
    gpu_kind: str
    price_per_hour: float
    wallclock_seconds: float
    timeout_seconds: float
    worst_seconds: float  # what is reserved; the run's deadline is this long after it starts
    expected_seconds: float
    expected_usd: float
    reserved_usd: float
    available_usd: float
    budget_after_usd: float
    command: str
    env: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    early_abort: AbortPoint | None = None
    gates: list[Gate] = field(default_factory=list)

    @property
    def refusal(self) -> Gate | None:
        """The first gate that fails, or None when every gate passes."""
        return next((g for g in self.gates if not g.passed), None)

    @property
    def paid(self) -> bool:
        return self.price_per_hour > 0

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output and plan.json."""
        data = asdict(self)
        data["ok"] = self.refusal is None
        return data


@dataclass
class PromotionResult:
    """How a promotion ended: dry-run, refused, pending (a transient gate), or the remote row's status."""

    plan: PromotionPlan
    status: str
    reason: str = ""
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    row: LedgerRow | None = None
    outcome: RunOutcome | None = None

    @property
    def run_id(self) -> str:
        """The local run that was (or was to be) promoted."""
        return self.plan.run_id

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return {"run_id": self.run_id, "status": self.status, "reason": self.reason, "cost_usd": self.cost_usd,
                "saved_usd": self.saved_usd, "row": self.row.as_dict() if self.row else None,
                "plan": self.plan.as_dict()}


def tier_settings(config: PgolfConfig, name: str | None) -> SshTier | RunpodTier | None:
    if name == "ssh":
        return config.tiers.ssh
    if name == "runpod":
        return config.tiers.runpod
    return None


def _gpus(tier: SshTier | RunpodTier | None) -> int:
    if isinstance(tier, SshTier):
        return tier.gpus
    return tier.gpu_count if isinstance(tier, RunpodTier) else 0


def _price_per_hour(config: PgolfConfig, tier: SshTier | RunpodTier | None, gpus: int) -> float:
    if isinstance(tier, SshTier):
        return tier.price_per_gpu_hour * gpus
    if isinstance(tier, RunpodTier):
        per_gpu = tier.price_per_gpu_hour
        return (config.budget.price_per_gpu_hour if per_gpu is None else per_gpu) * gpus
    return 0.0


def remote_data(ws: Workspace, config: PgolfConfig, tier: SshTier | RunpodTier | None
                ) -> tuple[dict[str, str], tuple[tuple[Path, str], ...]]:
    """DATA_PATH/TOKENIZER_PATH on the remote host, and the uploads when the tier syncs data.

    With a `data_dir` (an absolute path on the host), the challenge's layout below it is assumed
    (`datasets/<name>`, `tokenizers/<file>`). Without one, synced data goes to `<remote_dir>/data`
    (found from the run folder as `../data`), and unsynced paths of [data] are used as written.
    """
    dataset, tokenizer = config.data.dataset_dir, config.data.tokenizer_path
    data_dir = getattr(tier, "data_dir", None)
    sync = bool(getattr(tier, "sync_data", False))
    layout = (f"datasets/{Path(dataset).name}", f"tokenizers/{Path(tokenizer).name}")
    if data_dir:
        targets = [f"{data_dir.rstrip('/')}/{part}" for part in layout]
        seen = targets
    elif sync and tier is not None:
        targets = [f"{tier.remote_dir.rstrip('/')}/data/{part}" for part in layout]
        seen = [f"../data/{part}" for part in layout]  # the script runs in <remote_dir>/<run_id>
    else:
        targets = seen = [dataset, tokenizer]
    env = {"DATA_PATH": seen[0], "TOKENIZER_PATH": seen[1], "VOCAB_SIZE": str(config.data.vocab_size)}
    uploads: tuple[tuple[Path, str], ...] = ()
    if sync:
        uploads = ((ws.resolve(dataset), targets[0]), (ws.resolve(tokenizer), targets[1]))
    return env, uploads


def parent_row(ws: Workspace, run_id: str) -> LedgerRow:
    rows = [r for r in ws.ledger().rows() if r.run_id == run_id]
    if not rows:
        raise PgolfError(f"no run {run_id!r} in {ws.results_tsv.name}")
    return rows[-1]


def _remote_run_id(ws: Workspace, parent: str, tier: str) -> str:
    base = f"{parent}-{tier}"
    candidate, n = base, 1
    while ws.run(candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def _budget_gates(budget: BudgetManager, paid: bool, reserved_usd: float) -> list[Gate]:
    if not paid:
        return [Gate("reserve", True, "not a paid run (price 0)"),
                Gate("rate_limit", True, "not a paid run (price 0)")]
    st = budget.status()
    now = budget.clock()
    left = st.available_usd - reserved_usd
    reserve = Gate(
        "reserve", left >= st.reserve_usd,
        f"${reserved_usd:.2f} reserved leaves ${left:.2f} of ${st.available_usd:.2f} available "
        f"(reserve floor ${st.reserve_usd:.2f})")
    if st.next_paid_allowed_at is not None and now < st.next_paid_allowed_at:
        wait = (st.next_paid_allowed_at - now) / 60.0
        rate = Gate("rate_limit", False, f"one paid run per "
                             f"{budget.settings.min_seconds_between_paid_runs:.0f} s; next in {wait:.1f} min")
    else:
        rate = Gate("rate_limit", True, "no paid run started within the limit")
    return [reserve, rate]


def _env_warnings(defaults: dict[str, str], overrides: dict[str, str], gpus: int, track_gpus: int,
                  gpu_kind: str) -> list[str]:
    warnings = [f"[tiers] env overrides {k}={overrides[k]!r} (pgolf would set {defaults[k]!r})"
                for k in sorted(overrides) if k in defaults and overrides[k] != defaults[k]]
    warnings += [f"[tiers] env sets {k}={overrides[k]!r}, which changes the GPU/process count"
                 for k in sorted(overrides) if k.upper() in _GPU_ENV]
    if gpus != track_gpus:
        warnings.append(f"{gpus} GPU(s); the track's record runs use {track_gpus}×{gpu_kind}")
    return warnings


def plan_promotion(ws: Workspace, config: PgolfConfig, run_id: str, *, yes: bool = False,
                   budget: BudgetManager | None = None) -> PromotionPlan:
    """The plan for promoting `run_id`: tier, GPUs, cost, budget after, each gate's verdict."""
    budget = budget or ws.budget(config)
    parent = parent_row(ws, run_id)
    ruleset = config.get_ruleset()
    tier_name = remote_tier_name(config)
    tier = tier_settings(config, tier_name)
    gpus = _gpus(tier)
    price = _price_per_hour(config, tier, gpus)
    timeout = tier.timeout_seconds if tier else 0.0
    wallclock = ruleset.train_seconds or timeout
    expected_seconds = wallclock + (ruleset.eval_seconds or 0.0) + _SETUP_SECONDS
    worst_seconds = timeout + _COPY_ALLOWANCE_SECONDS + STOP_SECONDS
    if isinstance(tier, RunpodTier):
        worst_seconds += tier.ready_timeout_seconds + TERMINATE_SECONDS
    rows = ws.ledger().rows()
    abort = plan_early_abort(ws.runs_dir, rows, tier_name, config.tiers.early_abort) if tier_name else None
    data_env, _uploads = remote_data(ws, config, tier)
    defaults = {**data_env, "MAX_WALLCLOCK_SECONDS": f"{wallclock:g}",
                **({"SEED": str(parent.seed)} if parent.seed is not None else {}),
                **(abort.env() if abort else {})}
    overrides = dict(tier.env) if tier else {}
    reserved = price * worst_seconds / 3600.0
    available = budget.status().available_usd
    command = tier.command.replace("{gpus}", str(gpus)) if tier else ""
    gpu_kind = tier.gpu_type if isinstance(tier, RunpodTier) else ruleset.gpu_kind
    limit = ruleset.artifact_limit_bytes
    gates = [
        Gate("remote_tier", tier is not None,
                      f"[tiers.{tier_name}]" if tier else "no [tiers.ssh] or [tiers.runpod] in pgolf.toml"),
        Gate("parent", parent.tier == "local" and parent.status in (Status.KEEP, Status.BASELINE)
                      and bool(parent.commit),
                      f"{parent.tier} run, status {parent.status}, commit {parent.commit[:8] or '-'}"),
        Gate("artifact_bytes", parent.artifact_bytes is not None and parent.artifact_bytes <= limit,
                      f"{fmt_bytes(parent.artifact_bytes, 'unknown')} of {fmt_bytes(limit)}"),
    ]
    if isinstance(tier, RunpodTier):
        has_key = bool(secret(API_KEY_ENV, ws.root))
        gates.append(Gate("api_key", has_key, f"{API_KEY_ENV} is set" if has_key
                                   else f"{API_KEY_ENV} is not set"))
    gates += _budget_gates(budget, price > 0, reserved)
    confirmed = yes or config.budget.auto_confirm or gpus < config.budget.confirm_min_gpus
    gates.append(Gate(
        "confirmation", confirmed,
        f"{gpus} GPU(s) < {config.budget.confirm_min_gpus}" if gpus < config.budget.confirm_min_gpus
        else "confirmed (--yes or budget.auto_confirm)" if confirmed
        else f"{gpus} GPUs need --yes (or budget.auto_confirm = true)"))
    return PromotionPlan(
        run_id=run_id, remote_run_id=_remote_run_id(ws, run_id, tier_name or "remote"),
        commit=parent.commit, tier=tier_name, gpus=gpus, gpu_kind=gpu_kind, price_per_hour=price,
        wallclock_seconds=wallclock, timeout_seconds=timeout, worst_seconds=worst_seconds,
        expected_seconds=expected_seconds,
        expected_usd=price * expected_seconds / 3600.0, reserved_usd=reserved, available_usd=available,
        budget_after_usd=available - reserved, command=command, env={**defaults, **overrides},
        overrides=overrides, warnings=_env_warnings(defaults, overrides, gpus, ruleset.gpu_count, gpu_kind),
        early_abort=abort, gates=gates,
    )


def ssh_hosts(tier: SshTier) -> list[tuple[str, SshHost]]:
    """Every host of the tier as (key, settings): its own host first, then `hosts`."""
    own = SshHost(host=tier.host, port=tier.port, user=tier.user, slots=tier.slots)
    return [(f"{h.host}:{h.port}", h) for h in (own, *tier.hosts)]


def ssh_target(ws: Workspace, tier: SshTier, host: str = "") -> SshTarget:
    """The tier's host named by `host` (a key of `ssh_hosts`; default: the tier's own host)."""
    chosen = dict(ssh_hosts(tier)).get(host) or ssh_hosts(tier)[0][1]
    return SshTarget(host=chosen.host, user=chosen.user, port=chosen.port,
                     identity_file=ws.resolve(tier.identity_file) if tier.identity_file else None,
                     known_hosts=ws.known_hosts)
