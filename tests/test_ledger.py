"""results.tsv: columns, locked concurrent appends, damaged lines, round trips, queries."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgolf.ledger import (
    COLUMNS,
    HEADER,
    Ledger,
    LedgerRow,
    best_by_tier,
    failed_runs,
    last_runs,
    proven_techniques,
    row_field_names,
    tier_correlation,
)


def _row(**kw) -> LedgerRow:
    base = dict(commit="abc1234", tier="local", val_bpb=1.2, artifact_bytes=15_000_000, memory_gb=1.5,
                status="keep", description="d", run_id="r1")
    base.update(kw)
    return LedgerRow(**base)


def test_columns_are_the_sixteen_of_the_design_in_order():
    assert COLUMNS == (
        "commit", "tier", "val_bpb", "artifact_bytes", "memory_gb", "status", "promoted", "cost_usd",
        "description", "source_item", "run_id", "parent_run", "seed", "steps", "train_seconds",
        "finished_at",
    )
    assert row_field_names() == list(COLUMNS)


def test_create_writes_header_only(tmp_path: Path):
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.create()
    assert (tmp_path / "results.tsv").read_text() == HEADER
    assert ledger.load().rows == []


def _append_many(path: str, worker: int, count: int) -> None:
    ledger = Ledger(Path(path))
    for i in range(count):
        ledger.append(_row(run_id=f"w{worker}-{i}", description=f"worker {worker} row {i} " + "x" * 300,
                           seed=worker, steps=i))


def _run_together(*jobs: tuple) -> None:
    """Run (target, args) jobs in separate processes at once; each must exit 0."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for target, args in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_eight_processes_appending_200_rows_each_leave_1600_intact_rows(tmp_path: Path):
    path = tmp_path / "results.tsv"
    Ledger(path).create()
    _run_together(*[(_append_many, (str(path), w, 200)) for w in range(8)])
    contents = Ledger(path).load()
    assert contents.damaged == []
    assert len(contents.rows) == 1600
    assert {r.run_id for r in contents.rows} == {f"w{w}-{i}" for w in range(8) for i in range(200)}
    # Each worker's rows stay in its own order.
    for w in range(8):
        steps = [r.steps for r in contents.rows if r.seed == w]
        assert steps == list(range(200))


def _toggle_promoted(path: str, rounds: int) -> None:
    ledger = Ledger(Path(path))
    for i in range(rounds):
        ledger.update_promoted("first", "yes" if i % 2 else "pending")


def test_appends_racing_a_promoted_rewrite_are_never_lost(tmp_path: Path):
    path = tmp_path / "results.tsv"
    Ledger(path).append(_row(run_id="first", promoted="pending"))
    _run_together((_toggle_promoted, (str(path), 150)), (_append_many, (str(path), 1, 150)))
    contents = Ledger(path).load()
    assert contents.damaged == []
    assert len(contents.rows) == 151


def test_half_written_last_line_is_reported_and_complete_rows_load(tmp_path: Path):
    path = tmp_path / "results.tsv"
    ledger = Ledger(path)
    for i in range(3):
        ledger.append(_row(run_id=f"r{i}"))
    full = _row(run_id="torn").to_line()
    with open(path, "a") as fh:
        fh.write(full[: len(full) // 2])  # a writer killed mid-line
    contents = ledger.load()
    assert [r.run_id for r in contents.rows] == ["r0", "r1", "r2"]
    assert len(contents.damaged) == 1
    assert contents.damaged[0].line_number == 5
    assert "incomplete" in contents.damaged[0].reason
    # The next append does not glue onto the torn line: the new row loads, the torn one stays reported.
    ledger.append(_row(run_id="after"))
    contents = ledger.load()
    assert [r.run_id for r in contents.rows] == ["r0", "r1", "r2", "after"]
    assert len(contents.damaged) == 1 and contents.damaged[0].line_number == 5


def test_garbage_lines_are_reported_not_fatal(tmp_path: Path):
    path = tmp_path / "results.tsv"
    ledger = Ledger(path)
    ledger.append(_row(run_id="ok"))
    with open(path, "a") as fh:
        fh.write("not\ta\trow\n")
        fh.write("\t".join(["c", "local", "notanumber"] + [""] * 13) + "\n")
    contents = ledger.load()
    assert [r.run_id for r in contents.rows] == ["ok"]
    reasons = [d.reason for d in contents.damaged]
    assert "expected 16 columns, found 3" in reasons[0]
    assert "val_bpb" in reasons[1]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_description_round_trips_cleaned(tmp_path_factory, description: str):
    path = tmp_path_factory.mktemp("l") / "results.tsv"
    ledger = Ledger(path)
    ledger.append(_row(description=description))
    (row,) = ledger.load().rows
    assert "\t" not in row.description and "\n" not in row.description
    assert row.description == " ".join("".join(c if c.isprintable() else " " for c in description).split())
    # What was written is exactly what reads back, a second time too.
    ledger.append(row)
    assert ledger.load().rows[1] == row


@settings(max_examples=100, deadline=None)
@given(
    val=st.one_of(st.none(), st.floats(0.5, 5.0)),
    size=st.one_of(st.none(), st.integers(0, 10**9)),
    cost=st.floats(0, 1000),
)
def test_numbers_round_trip(tmp_path_factory, val, size, cost):
    path = tmp_path_factory.mktemp("n") / "results.tsv"
    ledger = Ledger(path)
    ledger.append(_row(val_bpb=val, artifact_bytes=size, cost_usd=cost))
    (row,) = ledger.load().rows
    assert row.artifact_bytes == size
    assert (row.val_bpb is None) == (val is None)
    if val is not None:
        assert abs(row.val_bpb - val) < 1e-8
    assert abs(row.cost_usd - cost) < 1e-6


def test_unknown_status_is_refused():
    with pytest.raises(ValueError):
        _row(status="great")


def test_queries():
    rows = [
        _row(run_id="b", status="baseline", val_bpb=1.30),
        _row(run_id="k1", status="keep", val_bpb=1.25, promoted="yes", description="int6 quant"),
        _row(run_id="d", status="discard", val_bpb=1.20, description="worse in noise"),
        _row(run_id="c", status="crash", val_bpb=None),
        _row(run_id="k2", status="keep", val_bpb=1.22, promoted="pending", description="ema"),
        _row(run_id="rem1", tier="runpod", status="keep", val_bpb=1.10, parent_run="k1"),
        _row(run_id="rem2", tier="runpod", status="keep", val_bpb=1.08, parent_run="k2"),
        _row(run_id="rem3", tier="runpod", status="keep", val_bpb=1.20, parent_run="b"),
    ]
    best = best_by_tier(rows)
    assert best["local"].run_id == "k2"  # a discard never counts as best
    assert best["runpod"].run_id == "rem2"
    assert [r.run_id for r in failed_runs(rows)] == ["d", "c"]
    assert proven_techniques(rows) == ["int6 quant"]
    assert [r.run_id for r in last_runs(rows, 2)] == ["rem2", "rem3"]
    assert [r.run_id for r in last_runs(rows, 2, tier="local")] == ["c", "k2"]
    corr = tier_correlation(rows)
    assert corr.pairs == 3
    xs, ys = [1.25, 1.22, 1.30], [1.10, 1.08, 1.20]
    assert corr.mean_offset == pytest.approx(sum(y - x for x, y in zip(xs, ys, strict=True)) / 3)

    assert corr.pearson_r == pytest.approx(float(np.corrcoef(xs, ys)[0, 1]))
    assert tier_correlation(rows[:3]).pairs == 0


def test_update_promoted_rewrites_only_that_row(tmp_path: Path):
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.append(_row(run_id="a", promoted="pending"))
    ledger.append(_row(run_id="b", promoted="no"))
    assert ledger.update_promoted("a", "yes")
    assert not ledger.update_promoted("missing", "yes")
    assert [r.promoted for r in ledger.rows()] == ["yes", "no"]


def test_update_rewrites_a_judged_row_and_keeps_damaged_lines(tmp_path: Path):
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.append(_row(run_id="a", status="replicate", description="try x"))
    with open(ledger.path, "a") as fh:
        fh.write("torn\tline\n")
    ledger.append(_row(run_id="b", status="replicate", description="replicate of a, seed 2"))
    assert ledger.update("a", status="keep", description="try x [n=3 p=0.001]\tand a tab")
    rows = ledger.rows()
    assert [(r.run_id, r.status) for r in rows] == [("a", "keep"), ("b", "replicate")]
    assert rows[0].description == "try x [n=3 p=0.001] and a tab"  # cleaned like any new row
    assert len(ledger.load().damaged) == 1  # the torn line is still there, still reported
    with pytest.raises(ValueError, match="unknown status"):
        ledger.update("b", status="great")
    assert ledger.rows()[1].status == "replicate"
