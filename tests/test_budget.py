"""The money: cost formula, reserve floor, rate limit, races, restarts, LLM cap."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from pgolf.budget import BudgetManager, run_cost
from pgolf.config import BudgetConfig
from pgolf.errors import BudgetRefused


class Clock:
    """A settable clock: no test depends on the time of day."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _manager(tmp_path: Path, clock: Clock | None = None, **settings) -> BudgetManager:
    cfg = BudgetConfig(**{"total_usd": 100.0, "reserve_usd": 20.0, **settings})
    return BudgetManager(tmp_path / "budget.json", cfg, clock or Clock())


def test_cost_formula():
    assert run_cost(3600, 8, 2.5) == pytest.approx(20.0)
    assert run_cost(600, 8, 2.5) == pytest.approx(20.0 / 6)
    assert run_cost(90, 1, 4.0) == pytest.approx(0.1)
    assert run_cost(-5, 8, 2.5) == 0.0
    assert BudgetManager(Path("unused.json"), BudgetConfig()).cost(1800, 8) == pytest.approx(10.0)


def test_reserve_then_settle_spends_the_actual_cost(tmp_path: Path):
    m = _manager(tmp_path)
    rid = m.reserve(30.0, gpus=8, description="promote r1", run_id="r1")
    st = m.status()
    assert st.reserved_usd == 30.0 and st.available_usd == 70.0
    m.settle(rid, 12.5, seconds=2250)
    st = m.status()
    assert st.reserved_usd == 0.0 and st.spent_usd == 12.5 and st.available_usd == 87.5
    with pytest.raises(BudgetRefused, match="already settled"):
        m.settle(rid, 1.0)


def test_reserve_floor_blocks_with_a_reason(tmp_path: Path):
    m = _manager(tmp_path)
    verdict = m.can_submit(85.0)
    assert not verdict.ok
    assert "reserve" in verdict.reason and "$20.00" in verdict.reason
    with pytest.raises(BudgetRefused, match="reserve"):
        m.reserve(85.0, gpus=8)
    assert m.can_submit(80.0).ok


def test_rate_limit_counts_from_the_start_of_the_previous_paid_run(tmp_path: Path):
    clock = Clock()
    m = _manager(tmp_path, clock, min_seconds_between_paid_runs=3600)
    rid = m.reserve(10.0, gpus=8)
    clock.now += 1800
    m.settle(rid, 10.0, seconds=1800)
    clock.now += 1799  # 3599 s after the start
    verdict = m.can_submit(10.0)
    assert not verdict.ok and "rate limit" in verdict.reason
    clock.now += 1
    assert m.can_submit(10.0).ok


def test_released_reservation_does_not_count(tmp_path: Path):
    m = _manager(tmp_path)
    rid = m.reserve(10.0, gpus=8)
    m.release(rid, "pod creation failed")
    st = m.status()
    assert st.reserved_usd == 0 and st.spent_usd == 0 and st.last_paid_start is None
    assert m.can_submit(10.0).ok


def test_spent_total_and_rate_limit_survive_a_restart(tmp_path: Path):
    clock = Clock()
    m = _manager(tmp_path, clock)
    rid = m.reserve(10.0, gpus=8)
    m.settle(rid, 7.0)
    restarted = _manager(tmp_path, clock)
    st = restarted.status()
    assert st.spent_usd == 7.0
    assert st.last_paid_start == clock.now
    assert not restarted.can_submit(1.0).ok  # still inside the hour


def _slow_clock(start_at: float):
    """A clock that pauses when read: reserve() reads it inside its locked section, which widens the
    window in which an unlocked read-modify-write would let both racers through."""
    def clock() -> float:
        time.sleep(0.2)
        return start_at
    return clock


def _race(path: str, barrier, results) -> None:
    m = BudgetManager(Path(path), BudgetConfig(total_usd=50.0, reserve_usd=20.0,
                                                min_seconds_between_paid_runs=0), _slow_clock(5.0))
    barrier.wait()
    try:
        m.reserve(25.0, gpus=8)
        results.put("won")
    except BudgetRefused as err:
        results.put(f"refused: {err}")


def test_two_processes_racing_for_the_last_run_exactly_one_wins(tmp_path: Path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    path = str(tmp_path / "budget.json")
    for _attempt in range(3):  # several rounds, fresh file each time
        Path(path).unlink(missing_ok=True)
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcome = sorted(results.get(timeout=10) for _ in range(2))
        assert outcome[1] == "won"
        assert outcome[0].startswith("refused: reserve")
        assert BudgetManager(Path(path), BudgetConfig(total_usd=50, reserve_usd=20)).status().reserved_usd == 25


def test_warning_below_twice_the_reserve(tmp_path: Path):
    m = _manager(tmp_path, min_seconds_between_paid_runs=0)
    assert m.status().warning is None
    m.settle(m.reserve(61.0, gpus=8), 61.0)
    assert "twice the reserve" in m.status().warning


def test_llm_spend_has_its_own_cap(tmp_path: Path):
    m = _manager(tmp_path, llm_cap_usd=1.0)
    m.record_llm(0.6, description="grade", input_tokens=1000, output_tokens=200)
    assert m.can_spend_llm(0.3).ok
    verdict = m.can_spend_llm(0.5)
    assert not verdict.ok and "LLM cap" in verdict.reason
    st = m.status()
    assert st.llm_spent_usd == pytest.approx(0.6)
    assert st.spent_usd == 0.0  # LLM money is a separate category


def test_damaged_budget_file_refuses_to_spend(tmp_path: Path):
    m = _manager(tmp_path)
    (tmp_path / "budget.json").write_text("{not json")
    with pytest.raises(BudgetRefused, match="damaged"):
        m.reserve(1.0, gpus=1)
    assert (tmp_path / "budget.json").read_text() == "{not json"  # nothing recorded is lost
    for shape in ("[]", '{"entries": [{"id": 1}]}'):
        (tmp_path / "budget.json").write_text(shape)
        with pytest.raises(BudgetRefused, match="damaged budget file"):
            m.status()
