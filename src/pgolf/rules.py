"""The challenge's rulesets: the only place where its constants live."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from pgolf.errors import ConfigError


@dataclass(frozen=True)
class Ruleset:
    """Constants of one Parameter Golf track; `None` for a time limit means unlimited."""

    name: str
    artifact_limit_bytes: int
    train_seconds: float | None
    eval_seconds: float | None
    gpu_kind: str
    gpu_count: int
    record_margin_nats: float
    significance_p: float
    min_seeds: int

    def over_artifact_limit(self, total_bytes: int) -> bool:
        """True when an artifact of `total_bytes` breaks the decimal byte limit."""
        return total_bytes > self.artifact_limit_bytes

    def headroom_bytes(self, total_bytes: int) -> int:
        """Bytes left under the limit (negative when over)."""
        return self.artifact_limit_bytes - total_bytes

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


TRACK_10MIN_16MB = Ruleset(
    name="track_10min_16mb",
    artifact_limit_bytes=16_000_000,
    train_seconds=600.0,
    eval_seconds=600.0,
    gpu_kind="H100 SXM",
    gpu_count=8,
    record_margin_nats=0.005,
    significance_p=0.01,
    min_seeds=3,
)

TRACK_NON_RECORD_16MB = replace(
    TRACK_10MIN_16MB, name="track_non_record_16mb", train_seconds=None, eval_seconds=None
)

RULESETS: dict[str, Ruleset] = {r.name: r for r in (TRACK_10MIN_16MB, TRACK_NON_RECORD_16MB)}
DEFAULT_RULESET = TRACK_10MIN_16MB.name


def get_ruleset(name: str = DEFAULT_RULESET, overrides: dict[str, Any] | None = None) -> Ruleset:
    """The named ruleset with a workspace's overrides applied."""
    try:
        base = RULESETS[name]
    except KeyError:
        known = ", ".join(sorted(RULESETS))
        raise ConfigError(f"ruleset: unknown ruleset {name!r} (known: {known})") from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - {f.name for f in fields(Ruleset)} - {"name"}
    if unknown:
        raise ConfigError(f"rules: unknown override(s) {', '.join(sorted(unknown))}")
    return replace(base, **overrides)
