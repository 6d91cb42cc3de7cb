"""Rulesets and the pgolf.toml schema."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pgolf.config import PgolfConfig, load_config, parse_config, secret
from pgolf.errors import ConfigError
from pgolf.rules import RULESETS, get_ruleset
from pgolf.workspace import render_config


def test_the_two_tracks():
    rec = get_ruleset("track_10min_16mb")
    assert (rec.artifact_limit_bytes, rec.train_seconds, rec.eval_seconds) == (16_000_000, 600, 600)
    assert (rec.gpu_count, rec.gpu_kind) == (8, "H100 SXM")
    assert (rec.record_margin_nats, rec.significance_p) == (0.005, 0.01)
    non = get_ruleset("track_non_record_16mb")
    assert non.artifact_limit_bytes == 16_000_000
    assert non.train_seconds is None and non.eval_seconds is None
    assert set(RULESETS) == {"track_10min_16mb", "track_non_record_16mb"}


def test_limit_is_decimal_and_inclusive():
    r = get_ruleset()
    assert not r.over_artifact_limit(16_000_000)
    assert r.over_artifact_limit(16_000_001)
    assert r.headroom_bytes(15_999_000) == 1_000


def test_workspace_overrides_apply():
    cfg = parse_config({"ruleset": "track_non_record_16mb", "rules": {"artifact_limit_bytes": 1000}})
    r = cfg.get_ruleset()
    assert r.artifact_limit_bytes == 1000 and r.name == "track_non_record_16mb"


def test_defaults_are_complete():
    cfg = PgolfConfig()
    assert cfg.budget.price_per_gpu_hour == 2.5
    assert cfg.budget.min_seconds_between_paid_runs == 3600
    assert cfg.proposer.kind == "search"
    assert cfg.loop.promotion_threshold == 0.03


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budget": {"totl_usd": 5}}, "budget.totl_usd: unknown key"),
        ({"tiers": {"local": {"timeout_seconds": "soon"}}}, "tiers.local.timeout_seconds: Input should be"),
        ({"loop": {"noise_seeds": 1}}, "loop.noise_seeds: Input should be greater than or equal to 2"),
        ({"ruleset": "track_1h"}, "unknown ruleset 'track_1h'"),
        ({"proposer": {"kind": "oracle"}}, "proposer.kind"),
        ({"surprise": True}, "surprise: unknown key"),
    ],
)
def test_bad_config_names_the_key_path(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "pgolf.toml")
    text = str(err.value)
    assert message in text
    assert "\n" not in text
    assert err.value.exit_code == 2


def test_invalid_toml_is_one_line(tmp_path: Path):
    path = tmp_path / "pgolf.toml"
    path.write_text("[budget\ntotal_usd = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_rendered_template_is_valid_for_every_ruleset():
    for name in RULESETS:
        cfg = parse_config(tomllib.loads(render_config(name)))
        assert cfg.ruleset == name


def test_secret_prefers_the_environment_over_dotenv(tmp_path: Path, monkeypatch):
    (tmp_path / ".env").write_text("# keys\nRUNPOD_API_KEY='from-file'\nexport GITHUB_TOKEN=gh\n")
    assert secret("RUNPOD_API_KEY", tmp_path) == "from-file"
    assert secret("GITHUB_TOKEN", tmp_path) == "gh"
    monkeypatch.setenv("RUNPOD_API_KEY", "from-env")
    assert secret("RUNPOD_API_KEY", tmp_path) == "from-env"
    assert secret("MISSING_KEY", tmp_path) is None
