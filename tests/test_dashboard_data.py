"""dashboard.data and dashboard.charts: what the pages show, read from real workspace files."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from pathlib import Path

import pytest

from dashboard_fixture import AGENT_RUN, DECISION, RESEARCH_ITEMS, add_agent_files, make_dashboard_workspace
from pgolf.dashboard.charts import all_figures, correlation_figure, progress_figure, size_figure
from pgolf.dashboard.data import (
    LOG_TAIL_LINES,
    RUN_FILES,
    _probe_lock,
    gather,
    loop_state,
    pareto_front,
    run_detail,
    run_file,
    running_best,
)
from pgolf.dashboard.render import _number, _when
from pgolf.ledger import LedgerRow
from pgolf.loop.supervisor import workspace_lock
from pgolf.workspace import Workspace, init_workspace


@pytest.fixture(scope="module")
def fixture_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_dashboard_workspace(tmp_path_factory.mktemp("dash") / "ws")


def _row(run_id: str, bpb: float | None, size: int | None, status: str = "keep", tier: str = "local") -> LedgerRow:
    return LedgerRow(commit="c" * 40, tier=tier, val_bpb=bpb, artifact_bytes=size, memory_gb=None, status=status,
                     run_id=run_id)


def test_gather_summarises_the_fixture(fixture_ws: Workspace) -> None:
    data = gather(fixture_ws)
    assert data.problems == []
    assert {t: r.run_id for t, r in data.best.items()} == {"local": "l10-rope", "runpod": "r03-int6"}
    assert data.tiers == ["local", "runpod"]
    assert data.status_counts == {"keep": 7, "discard": 2, "baseline": 1, "crash": 1, "oversize": 1, "timeout": 1}
    assert data.correlation.pairs == 3
    assert data.correlation.mean_offset == pytest.approx(((1.2218 - 1.2895) + (1.2031 - 1.2702)
                                                          + (1.1994 - 1.2655)) / 3)
    promo = data.last_promotion
    assert promo is not None and promo.local.run_id == "l10-rope" and promo.remote is None
    assert data.budget is not None
    assert data.budget.spent_usd == pytest.approx(3.34 + 3.41 + 3.29)
    assert data.budget.reserved_usd == pytest.approx(4.0)
    assert data.budget.llm_spent_usd == pytest.approx(0.0123 * 6)
    assert data.total_cost_usd == pytest.approx(10.04)
    assert not data.loop.running
    assert "l09-muon" not in data.run_folders and "l05-qk" in data.run_folders
    json.dumps(data.as_dict(), allow_nan=False)  # the JSON endpoint's payload is plain JSON


def test_research_is_sorted_by_tier_then_score(fixture_ws: Workspace) -> None:
    rows = gather(fixture_ws).research.rows
    assert [(r["tier"], r["title"]) for r in rows] == [(tier, title) for _, title, tier, _ in RESEARCH_ITEMS]


def test_leaderboard_ranks_this_projects_best_run(fixture_ws: Workspace) -> None:
    data = gather(fixture_ws)
    rows = data.competitors.rows
    assert [r["val_bpb"] for r in rows] == sorted(r["val_bpb"] for r in rows)
    ours = [r for r in rows if r["ours"]]
    assert len(ours) == 1 and ours[0]["where"] == "r03-int6"  # the remote best, not the local one
    assert data.frontier is not None
    assert data.frontier["val_bpb"] == 1.1458
    assert data.frontier["gap"] == pytest.approx(1.1994 - 1.1458)


def test_pareto_front_keeps_only_undominated_runs_under_the_limit() -> None:
    rows = [
        _row("a", 1.30, 5_000_000), _row("b", 1.32, 6_000_000),  # b: bigger and worse than a
        _row("c", 1.25, 9_000_000), _row("d", 1.20, 15_000_000),
        _row("e", 1.10, 17_000_000, status="oversize"),  # over the limit
        _row("f", 1.00, 4_000_000, status="crash"),  # a crash's number is not a measurement
        _row("g", 1.26, 9_000_000, status="discard"),  # same size as c, worse
    ]
    assert [r.run_id for r in pareto_front(rows, 16_000_000)] == ["a", "c", "d"]
    assert [r.run_id for r in pareto_front(rows, 18_000_000)] == ["a", "c", "d", "e"]


def test_running_best_counts_only_scored_statuses() -> None:
    rows = [_row("a", 1.3, 1, "baseline"), _row("b", 1.1, 1, "discard"), _row("c", 1.25, 1),
            _row("d", None, None, "crash"), _row("e", 1.27, 1), _row("f", 1.2, 1)]
    assert running_best(rows) == [(1, 1.3), (3, 1.25), (6, 1.2)]


def test_loop_state_follows_the_run_lock(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert not loop_state(ws).running
    with workspace_lock(ws):  # what `pgolf run` holds for its whole life
        state = loop_state(ws)
        assert state.running and f"pid {os.getpid()}" in state.detail
    assert not loop_state(ws).running


def test_lock_probe_where_proc_locks_is_missing(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text("")
    assert not _probe_lock(lock).running
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _probe_lock(lock).running


def test_empty_workspace_has_notes_and_no_charts(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    data = gather(ws)
    assert data.rows == [] and data.problems == []
    assert all(fig is None for fig in all_figures(data).values())
    assert "`pgolf research fetch`" in data.research.note  # the exact command that fills the page
    assert "`pgolf competitors scan PATH`" in data.competitors.note
    assert not (ws.research_db).exists()


def test_broken_files_become_problems_not_errors(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    ws.budget_json.write_text("{not json")
    with open(ws.results_tsv, "a") as fh:
        fh.write("torn line without a newline")
    ws.config_path.write_text(ws.config_path.read_text() + "\n[nonsense]\nx = 1\n")
    data = gather(ws)
    text = " | ".join(data.problems)
    assert "pgolf.toml" in text and "budget.json" in text and "damaged line" in text
    assert data.budget is None
    assert data.ruleset.name == "track_10min_16mb"


def test_artifact_limit_line_comes_from_the_ruleset(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text().replace(
        "# artifact_limit_bytes = 16000000", "artifact_limit_bytes = 12000000"))
    ws.ledger().append(_row("a", 1.3, 11_000_000))
    ws.ledger().append(_row("b", 1.2, 13_000_000))
    fig = size_figure(gather(ws))
    assert fig is not None
    assert fig["layout"]["shapes"][0]["x0"] == 12_000_000
    fronts = [t for t in fig["data"] if t["name"].startswith("Pareto")]
    assert fronts[0]["x"] == [11_000_000]  # b is over this workspace's limit


def test_progress_and_correlation_figures(fixture_ws: Workspace) -> None:
    data = gather(fixture_ws)
    progress = progress_figure(data)
    assert progress is not None
    best_local = next(t for t in progress["data"] if t["name"] == "best so far (local)")
    assert best_local["y"] == [1.312, 1.2895, 1.2702, 1.2655, 1.2648, 1.2648]
    crash = next(t for t in progress["data"] if t["name"] == "crash (no score)")
    assert crash["marker"]["symbol"] == "x" and crash["yaxis"] == "y2"  # on the no-score strip, not a score
    corr = correlation_figure(data)
    assert corr is not None
    pairs = next(t for t in corr["data"] if t["name"] == "promoted pairs")
    assert sorted(zip(pairs["x"], pairs["y"], strict=True)) == sorted(data.correlation.points)


def test_run_detail_reads_the_run_folder(fixture_ws: Workspace) -> None:
    detail = run_detail(fixture_ws, "l05-qk")
    assert detail is not None and detail.exists and detail.row is not None
    assert detail.command == "python train_gpt.py\n"
    assert "+    note = 'QK-norm gain 1.5'" in (detail.diff or "")
    assert detail.result is not None and detail.result["val_bpb"] == 1.2702
    assert (detail.log_tail or "").endswith("Total submission size int8+zlib: 10400200 bytes")
    no_folder = run_detail(fixture_ws, "l09-muon")
    assert no_folder is not None and not no_folder.exists and no_folder.row is not None
    assert run_detail(fixture_ws, "unknown-run") is None


@pytest.mark.parametrize("bad", ["..", "../ws", "a/../../b", ".hidden", "a/b", ""])
def test_run_ids_cannot_leave_the_runs_folder(fixture_ws: Workspace, bad: str) -> None:
    assert run_detail(fixture_ws, bad) is None
    assert run_file(fixture_ws, bad, "train.log") is None


def test_run_file_serves_only_known_names(fixture_ws: Workspace) -> None:
    assert run_file(fixture_ws, "l05-qk", "train.log") == fixture_ws.run_dir("l05-qk") / "train.log"
    assert run_file(fixture_ws, "l05-qk", "secrets.env") is None


def test_long_log_and_bad_result(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    folder = ws.run_dir("big")
    folder.mkdir(parents=True)
    (folder / "train.log").write_text("".join(f"line {i} " + "x" * 2000 + "\n" for i in range(200)))
    (folder / "result.json").write_text("[1, 2]")
    detail = run_detail(ws, "big")
    assert detail is not None and detail.row is None
    lines = (detail.log_tail or "").splitlines()
    assert len(lines) <= LOG_TAIL_LINES and lines[-1].startswith("line 199 ")
    assert all(line.startswith("line ") for line in lines)  # no line cut in the middle
    assert detail.result is None and detail.result_text == "[1, 2]"


def test_research_is_read_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    ws = make_dashboard_workspace(tmp_path / "ws")
    writer = sqlite3.connect(ws.research_db)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("UPDATE items SET title = title")
        writer.commit()
        assert ws.research_db.with_name("research.db-wal").exists()
        assert len(gather(ws).research.rows) == len(RESEARCH_ITEMS)
    finally:
        writer.close()


def test_run_detail_reads_decision_preflight_and_agent_files(tmp_path: Path) -> None:
    ws = make_dashboard_workspace(tmp_path / "ws")
    add_agent_files(ws)
    detail = run_detail(ws, AGENT_RUN)
    assert detail is not None and detail.decision == DECISION and detail.preflight["ok"] is True
    assert detail.agent_log_tail and detail.agent_log_tail.startswith("reading PGOLF_HANDOFF")
    assert detail.handoff and detail.handoff.startswith("# Brief")
    assert detail.files == ("command.txt", "diff.patch", "train.log", "result.json", "preflight.json",
                            "decision.json", "handoff.md", "agent.log")
    for name in detail.files:
        assert run_file(ws, AGENT_RUN, name) == ws.run_dir(AGENT_RUN) / name
    assert run_file(ws, AGENT_RUN, "promotion.json") is None  # known, absent
    assert run_file(ws, AGENT_RUN, "../pgolf.toml") is None and "../pgolf.toml" not in RUN_FILES
    (ws.run_dir(AGENT_RUN) / "decision.json").write_text('{"gain": NaN')
    broken = run_detail(ws, AGENT_RUN)
    assert broken is not None and broken.decision is None and broken.broken_json == ("decision.json",)


def test_numbers_and_times_read_one_way() -> None:
    assert _number(120026.89053999985) == "120,026.89" and _number(1.23456789) == "1.2346"
    assert _number(600.0) == "600" and _number(17059912) == "17,059,912" and _number(1337, "seed") == "1337"
    assert _number(0.000012345) == "1.23e-05" and _number(True) == "yes" and _number(None) == "–"
    assert _when("2025-06-15T03:10:00Z") == _when(1749957000.0) == "2025-06-15 03:10 UTC"


def test_size_chart_scale_follows_the_points(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    for i, size in enumerate((95_000, 101_000, 99_500)):  # a demo's models, 160 times under the limit
        ws.ledger().append(LedgerRow(f"{i:08x}", "local", 2.1 - i / 100, size, None, "keep", run_id=f"d{i}"))
    layout = size_figure(gather(ws))["layout"]
    assert layout["xaxis"]["type"] == "log" and layout["shapes"]  # the points and the limit line both visible
    assert 10 ** layout["xaxis"]["range"][0] < 95_000 and 10 ** layout["xaxis"]["range"][1] > 16_000_000


def test_the_loop_state_lists_the_runs_in_flight_on_every_slot(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    ws.running_dir.mkdir(parents=True)
    for slot, (run_id, step) in enumerate((("r0007", 50), ("r0008", 10))):
        folder = ws.run_dir(run_id)
        folder.mkdir(parents=True)
        (folder / "train.log").write_text(f"step:{step}/100 train_loss:2.0 train_time:5000ms step_avg:100.00ms\n")
        (ws.running_dir / f"{run_id}.json").write_text(json.dumps(
            {"run_id": run_id, "kind": "experiment", "phase": "running", "description": "d", "slot": slot}))
    assert loop_state(ws).inflight == ()  # no loop holds the lock: nothing is in flight, whatever the files say
    with workspace_lock(ws):
        runs = loop_state(ws).inflight
    assert [(r.run_id, r.slot, r.step, r.total_steps, r.eta_seconds) for r in runs] == [
        ("r0007", 0, 50, 100, 5.0), ("r0008", 1, 10, 100, 9.0)]
    before = sorted(p.name for p in ws.running_dir.iterdir())
    (ws.running_dir / "r0007.json").write_text('{"run_id": "../../etc"}')
    (ws.running_dir / "r0009.json").write_text("{not json")
    with workspace_lock(ws):
        assert [r.run_id for r in loop_state(ws).inflight] == ["r0008"]
    assert sorted(p.name for p in ws.running_dir.iterdir()) == sorted([*before, "r0009.json"])  # nothing removed
