"""A damaged budget.json never opens a gate: every entry is validated, NaN and negatives refuse.

The property test writes random entry lists (valid and damaged alike) and checks that what the manager
reports as available never exceeds the credits minus the valid settled spend, and that it refuses exactly
when an entry is damaged.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgolf.budget import BudgetManager
from pgolf.config import BudgetConfig, parse_config
from pgolf.errors import BudgetRefused, ConfigError

NOW = 1_760_000_000.0


def _entry(**over) -> dict:
    base = {"id": "e0", "kind": "run", "state": "settled", "estimated_usd": 10.0, "actual_usd": 8.0,
            "created_at": NOW - 7200, "settled_at": NOW - 6600, "gpus": 8, "seconds": 600.0,
            "description": "", "run_id": "r1", "extra": {}}
    base.update(over)
    return base


def _manager(path: Path, **settings_) -> BudgetManager:
    cfg = BudgetConfig(**{"total_usd": 1000.0, "reserve_usd": 10.0, "min_seconds_between_paid_runs": 0,
                          **settings_})
    return BudgetManager(path, cfg, clock=lambda: NOW)


def _write(path: Path, entries: list) -> str:
    text = json.dumps({"version": 1, "entries": entries})
    path.write_text(text)
    return text


BAD_ENTRIES = {
    "negative actual": _entry(actual_usd=-1000.0),
    "NaN actual": _entry(actual_usd=float("nan")),
    "infinite actual": _entry(actual_usd=float("inf")),
    "NaN estimate": _entry(state="reserved", actual_usd=None, settled_at=None, estimated_usd=float("nan")),
    "negative estimate": _entry(state="reserved", actual_usd=None, settled_at=None, estimated_usd=-1.0),
    "unknown state": _entry(state="refunded"),
    "unknown kind": _entry(kind="gift"),
    "string amount": _entry(actual_usd="8"),
    "boolean amount": _entry(actual_usd=True),
    "settled without actual": _entry(actual_usd=None),
    "NaN time": _entry(created_at=float("nan")),
    "negative time": _entry(created_at=-5.0),
    "future time": _entry(created_at=NOW + 10 * 86_400, settled_at=NOW + 10 * 86_400),
    "settled before created": _entry(settled_at=NOW - 10 * 86_400),
    "negative gpus": _entry(gpus=-8),
    "fractional gpus": _entry(gpus=0.5),
    "missing id": {k: v for k, v in _entry().items() if k != "id"},
    "unknown field": _entry(refund=1),
    "extra not an object": _entry(extra="x"),
    "NaN inside extra": _entry(extra={"x": float("nan")}),
    "reserved LLM charge": _entry(kind="llm", state="reserved", actual_usd=None, settled_at=None),
    "not an object": "entry",
}


@pytest.mark.parametrize("name", BAD_ENTRIES)
def test_every_malformed_entry_refuses_and_names_the_entry(tmp_path: Path, name: str):
    path = tmp_path / "budget.json"
    text = _write(path, [_entry(id="good"), BAD_ENTRIES[name]])
    manager = _manager(path)
    for attempt in (lambda: manager.reserve(1.0, gpus=8), lambda: manager.can_submit(1.0), manager.status,
                    manager.peek, lambda: manager.record_llm(0.01), lambda: manager.can_spend_llm(0.01)):
        with pytest.raises(BudgetRefused, match=r"budget\.json: entry 1\b.*refusing to spend") as info:
            attempt()
        assert "\n" not in str(info.value)
    assert path.read_text() == text  # nothing recorded is touched


@pytest.mark.parametrize("shape", ["[]", '{"entries": {}}', '{"entries": [', "", '{"entries": [], "x": '
                                   + "[" * 5000 + "]" * 5000 + "}"])
def test_damaged_file_shapes_refuse(tmp_path: Path, shape: str):
    path = tmp_path / "budget.json"
    path.write_text(shape)
    with pytest.raises(BudgetRefused, match=r"budget\.json.*refusing to spend"):
        _manager(path).can_submit(1.0)


def test_a_folder_where_budget_json_belongs_refuses(tmp_path: Path):
    (tmp_path / "budget.json").mkdir()
    with pytest.raises(BudgetRefused, match="is a directory"):
        _manager(tmp_path / "budget.json").reserve(1.0, gpus=1)


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), -1.0, -1e-9])
def test_nan_or_negative_amounts_never_pass_a_gate(tmp_path: Path, amount: float):
    manager = _manager(tmp_path / "budget.json")
    assert not manager.can_submit(amount).ok
    with pytest.raises(BudgetRefused):
        manager.reserve(amount, gpus=8)
    assert not manager.can_spend_llm(amount).ok
    with pytest.raises(BudgetRefused):
        manager.record_llm(amount)
    assert manager.history() == []


def test_an_unusable_settled_cost_is_charged_at_the_estimate(tmp_path: Path):
    manager = _manager(tmp_path / "budget.json")
    rid = manager.reserve(30.0, gpus=8)
    entry = manager.settle(rid, float("nan"), seconds=float("inf"))
    assert entry.actual_usd == 30.0 and entry.seconds is None
    assert manager.status().spent_usd == 30.0  # and the file stays loadable
    assert "NaN" not in (tmp_path / "budget.json").read_text()


def test_the_reserve_gate_counts_only_valid_money(tmp_path: Path):
    # The case: a settled -1000 used to leave "$990.71 of $1010.00" and pass the gate.
    path = tmp_path / "budget.json"
    _write(path, [_entry(actual_usd=-1000.0)])
    with pytest.raises(BudgetRefused, match="actual_usd -1000.0 is negative"):
        _manager(path, total_usd=10.0, reserve_usd=0.0).can_submit(9.0)


@pytest.mark.parametrize("setting", ["total_usd = inf", "total_usd = nan", "reserve_usd = -inf",
                                     "price_per_gpu_hour = nan", "llm_cap_usd = inf"])
def test_config_refuses_non_finite_money(setting: str):
    import tomllib

    with pytest.raises(ConfigError, match="finite|greater than or equal"):
        parse_config(tomllib.loads(f"[budget]\n{setting}\n"))


# -- the property --------------------------------------------------------------------------------------

_amounts = st.one_of(st.floats(min_value=0, max_value=500, allow_nan=False), st.just(-1000.0),
                     st.just(float("nan")), st.just(float("inf")), st.none())
_raw_entries = st.fixed_dictionaries({
    "kind": st.sampled_from(["run", "run", "llm", "bogus"]),
    "state": st.sampled_from(["reserved", "settled", "released", "settled", "??"]),
    "estimated_usd": _amounts, "actual_usd": _amounts,
    "created_at": st.one_of(st.floats(min_value=NOW - 1e6, max_value=NOW), st.just(float("nan")), st.just(-1.0)),
})


def _valid(e: dict) -> bool:
    def money(v: object, nullable: bool) -> bool:
        return (v is None and nullable) or (isinstance(v, float) and math.isfinite(v) and v >= 0)

    if e["kind"] not in ("run", "llm") or e["state"] not in ("reserved", "settled", "released"):
        return False
    if not money(e["estimated_usd"], False) or not money(e["actual_usd"], True):
        return False
    if e["state"] == "settled" and e["actual_usd"] is None:
        return False
    if e["kind"] == "llm" and e["state"] != "settled":
        return False
    return math.isfinite(e["created_at"]) and e["created_at"] > 0


@settings(max_examples=150, deadline=None)
@given(st.lists(_raw_entries, max_size=8), st.floats(min_value=0, max_value=2000), st.floats(min_value=0, max_value=100))
def test_available_never_exceeds_total_minus_valid_spend(raw: list[dict], total: float, reserve: float):
    entries = [{**e, "id": f"e{i}", "gpus": 8, "settled_at": None, "seconds": None, "description": "",
                "run_id": "", "extra": {}} for i, e in enumerate(raw)]
    spent_valid = sum(e["actual_usd"] for e in entries if _valid(e) and e["kind"] == "run"
                      and e["state"] == "settled")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "budget.json"
        _write(path, entries)
        manager = _manager(path, total_usd=total, reserve_usd=reserve)
        try:
            status = manager.status()
        except BudgetRefused:
            assert not all(_valid(e) for e in entries)  # refused only for real damage
            with pytest.raises(BudgetRefused):
                manager.reserve(0.0, gpus=8)
            return
        assert all(_valid(e) for e in entries)
        assert math.isfinite(status.available_usd)
        assert status.available_usd <= total - spent_valid + 1e-9
        verdict = manager.can_submit(1.0)
        if verdict.ok:
            assert status.available_usd - 1.0 >= reserve
