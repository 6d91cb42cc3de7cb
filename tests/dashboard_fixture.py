"""A workspace with a little of everything the dashboard shows, built with the real writers.

`make_dashboard_workspace(root)` gives: local and remote ledger rows of every common status, three
promoted local/remote pairs, run folders (command, diff, log, result), settled and reserved budget
entries plus LLM charges, graded research items, and a competitors leaderboard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pgolf.budget import BudgetManager
from pgolf.ledger import LedgerRow
from pgolf.research.competitors import CompetitorEntry, CompetitorFile, competitors_path
from pgolf.research.items import ResearchItem
from pgolf.research.store import ResearchStore
from pgolf.workspace import Workspace, init_workspace

START = 1_750_000_000.0  # 2025-06-15 15:06 UTC; fixed so nothing depends on the time of day
HOUR = 3600.0


@dataclass(frozen=True)
class FixtureRun:
    """One ledger row of the fixture and whether it gets a run folder."""

    row: LedgerRow
    folder: bool = True


def _row(run_id: str, tier: str, bpb: float | None, size: int | None, status: str, description: str,
         *, promoted: str = "no", cost: float = 0.0, parent: str = "", hour: int = 0) -> LedgerRow:
    return LedgerRow(
        commit=hashlib.sha1(run_id.encode()).hexdigest(),
        tier=tier, val_bpb=bpb, artifact_bytes=size, memory_gb=None if bpb is None else 1.5,
        status=status, promoted=promoted, cost_usd=cost, description=description, run_id=run_id,
        parent_run=parent, seed=1337, steps=None if bpb is None else 200,
        train_seconds=None if bpb is None else 118.5, finished_at=f"2025-06-{15 + hour // 24:02d}T{hour % 24:02d}:10:00Z",
    )


def fixture_runs() -> list[FixtureRun]:
    """The ledger, in order: ten local runs, three remote runs promoted from them."""
    rows = [
        _row("l01-baseline", "local", 1.3120, 9_812_345, "baseline", "unchanged baseline, seed 1337", hour=0),
        _row("l02-lr", "local", 1.2895, 9_820_001, "keep", "raise matrix_lr to 0.06", promoted="yes", hour=1),
        _row("l03-warmup", "local", 1.2950, 9_815_000, "discard", "longer warmup (40 steps)", hour=2),
        _row("l04-mlp4x", "local", None, None, "crash", "MLP 4x: CUDA out of memory", hour=3),
        _row("l05-qk", "local", 1.2702, 10_400_200, "keep", "QK-norm gain 1.5", promoted="yes", hour=4),
        _row("l06-wide", "local", 1.2410, 16_350_000, "oversize", "width 640: artifact too large", hour=5),
        _row("l07-slow", "local", None, None, "timeout", "12 layers: over the wallclock", hour=6),
        _row("l08-int6", "local", 1.2655, 8_120_444, "keep", "int6 export, zstd-22", promoted="yes", hour=7),
        _row("l09-muon", "local", 1.2690, 8_100_000, "discard", "Muon momentum 0.99", hour=8),
        _row("r01-lr", "runpod", 1.2218, 9_820_001, "keep", "raise matrix_lr to 0.06", cost=3.34,
             parent="l02-lr", hour=9),
        _row("r02-qk", "runpod", 1.2031, 10_400_200, "keep", "QK-norm gain 1.5", cost=3.41, parent="l05-qk",
             hour=11),
        _row("l10-rope", "local", 1.2648, 8_120_100, "keep", "RoPE base 20000", promoted="pending", hour=12),
        _row("r03-int6", "runpod", 1.1994, 8_120_444, "keep", "int6 export, zstd-22", cost=3.29,
             parent="l08-int6", hour=13),
    ]
    return [FixtureRun(r, folder=r.run_id != "l09-muon") for r in rows]


def _write_run_folder(ws: Workspace, row: LedgerRow) -> None:
    folder = ws.run_dir(row.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "command.txt").write_text("python train_gpt.py\n" if row.tier == "local"
                                        else "torchrun --standalone --nproc_per_node=8 train_gpt.py\n")
    (folder / "diff.patch").write_text(
        f"diff --git a/train_gpt.py b/train_gpt.py\n--- a/train_gpt.py\n+++ b/train_gpt.py\n"
        f"@@ -40,3 +40,3 @@ class Hyperparameters:\n-    note = 'before'\n+    note = '{row.description}'\n"
        "     keep = 1\n")
    lines = [f"step:{s}/200 train_loss:{3.0 - s / 100:.4f} train_time:{s * 500}ms" for s in range(0, 201, 10)]
    if row.val_bpb is not None:
        lines += [f"step:200/200 val_loss:{row.val_bpb * 0.7:.4f} val_bpb:{row.val_bpb:.4f}",
                  f"final_int8_zlib_roundtrip val_loss:{row.val_bpb * 0.7:.4f} val_bpb:{row.val_bpb:.4f}",
                  f"Total submission size int8+zlib: {row.artifact_bytes} bytes"]
    else:
        lines.append(f"run ended: {row.status}")
    (folder / "train.log").write_text("\n".join(lines) + "\n")
    result = {"status": "ok" if row.val_bpb is not None else "crashed", "reason": "", "val_bpb": row.val_bpb,
              "artifact_bytes": row.artifact_bytes, "steps": row.steps, "seed": row.seed,
              "hyperparameters": {"MATRIX_LR": 0.06, "WARMUP_STEPS": 20},
              "curve": [{"step": 100, "val_bpb": 1.5}, {"step": 200, "val_bpb": row.val_bpb}]}
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")


def _write_budget(ws: Workspace) -> None:
    clock_value = [START]
    budget = BudgetManager(ws.budget_json, ws.config().budget, clock=lambda: clock_value[0])
    for i, usd in enumerate((3.34, 3.41, 3.29)):
        clock_value[0] = START + (9 + 2 * i) * HOUR
        reservation = budget.reserve(4.0, gpus=8, description=f"remote run {i + 1}", run_id=f"r0{i + 1}")
        clock_value[0] += 600
        budget.settle(reservation, usd, seconds=600)
        clock_value[0] += 60
        budget.record_llm(0.0123 * (i + 1), description="grading research items", input_tokens=4000)
    clock_value[0] = START + 16 * HOUR
    budget.reserve(4.0, gpus=8, description="remote run 4 (in flight)", run_id="r04-rope")


RESEARCH_ITEMS = (
    ("arxiv:2501.00001", "Quantization-aware training for tiny language models", "A", 12.0),
    ("arxiv:2501.00002", "Muon: an optimizer for hidden layers", "A", 11.0),
    ("github-pr:openai/parameter-golf#77", "Record: int6 + zstd (val_bpb 1.1750)", "B", 8.5),  # a competitor too
    ("rss:blog/rope", "Notes on RoPE base frequency", "C", 4.0),
)


# The challenge PR above, as the competitors module scores it from its title.
PR_COMPETITOR = ("Record: int6 + zstd (val_bpb 1.1750)", 1.1750)


def _write_research(ws: Workspace) -> None:
    store = ResearchStore(ws.research_db)
    store.upsert(ResearchItem(
        id=item_id, source=item_id.split(":", 1)[0], kind="pr" if item_id.startswith("github") else "paper",
        title=title, abstract=f"About {title.lower()}.", url=f"https://example.org/{i}",
        published="2025-05-0" + str(i + 1), fetched_at="2025-06-01T00:00:00Z",
    ) for i, (item_id, title, _, _) in enumerate(RESEARCH_ITEMS))
    for item_id, _, tier, score in RESEARCH_ITEMS:
        store.save_grade(item_id, "ctx", {"score": score}, tier, score)


COMPETITORS = (
    ("Int6 MLP3x + SmearGate", "alice", 1.1458, "2025-05-20"),
    ("10L Mixed Precision", "bob", 1.2147, "2025-04-02"),
    ("Naive Baseline", "openai", 1.2244, "2025-03-18"),
)


def _write_competitors(ws: Workspace) -> None:
    CompetitorFile(competitors_path(ws.state_dir)).add(
        CompetitorEntry(pr_or_folder=f"records/track_10min_16mb/{date}_{name.replace(' ', '')}", author=author,
                        name=name, val_bpb=bpb, date=date, track="track_10min_16mb", state="merged",
                        source="challenge-readme")
        for name, author, bpb, date in COMPETITORS)


def make_dashboard_workspace(root: Path) -> Workspace:
    """Create the fixture workspace in `root` (a new folder) and return it."""
    ws = init_workspace(root)
    config = ws.config_path.read_text()
    config = config.replace("total_usd = 0.0", "total_usd = 50.0").replace("reserve_usd = 0.0", "reserve_usd = 5.0")
    ws.config_path.write_text(config)
    ledger = ws.ledger()
    for run in fixture_runs():
        ledger.append(run.row)
        if run.folder:
            _write_run_folder(ws, run.row)
    _write_budget(ws)
    _write_research(ws)
    _write_competitors(ws)
    return ws


# An agent-proposed run whose folder holds every file the loop writes beside the usual four.
AGENT_RUN = "l05-qk"
DECISION = {
    "status": "keep", "reason": "gain 0.0193 over the best beats the bar 0.0040 (p 0.0032 < 0.0100)",
    "gain": 0.019312345678, "threshold": 0.004, "candidate_mean": 1.27021234567, "incumbent_mean": 1.2895,
    "p_value": 0.0032, "n": 2,
    "gates": [{"name": "artifact_bytes", "passed": True, "detail": "10,400,200 <= 16,000,000"},
              {"name": "train_seconds", "passed": True, "detail": "118.5 s <= 600.0 s"}],
}
PREFLIGHT = {"ok": True, "oversize": False, "checks": [
    {"name": "compiles", "ok": True, "detail": "train_gpt.py parses"},
    {"name": "no_network", "ok": True, "detail": "imports no network module"},
    {"name": "projected_artifact", "ok": True, "detail": "projected 10,398,112 bytes <= 15,500,000"},
]}
AGENT_LOG = "reading PGOLF_HANDOFF\nediting train_gpt.py: QK-norm gain 1.0 -> 1.5\nwrote the description\n"
HANDOFF = "# Brief\n\nBest so far: l02-lr at 1.2895 (local).\nDead ends: longer warmup.\n"


def add_agent_files(ws: Workspace, run_id: str = AGENT_RUN) -> None:
    """decision.json, preflight.json, agent.log and handoff.md in one run folder; result.json gets the
    long floats a real run writes (train_ms 120026.89053999985)."""
    folder = ws.run_dir(run_id)
    (folder / "decision.json").write_text(json.dumps(DECISION, indent=1) + "\n")
    (folder / "preflight.json").write_text(json.dumps(PREFLIGHT, indent=1) + "\n")
    (folder / "agent.log").write_text(AGENT_LOG)
    (folder / "handoff.md").write_text(HANDOFF)
    result = json.loads((folder / "result.json").read_text())
    result |= {"train_ms": 120026.89053999985, "step_avg_ms": 600.1344526999993}
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")


SKIPPED_RUNS = 40


def make_skipped_workspace(root: Path) -> Workspace:
    """A workspace where an agent failed again and again: a baseline, 40 skipped proposals, one crash
    with a partial val_bpb of 1.0 in its row (better than every real score), then two kept runs."""
    ws = init_workspace(root)
    ledger = ws.ledger()
    rows = [_row("s000-baseline", "local", 1.3120, 9_812_345, "baseline", "unchanged baseline", hour=0),
            _row("s001-baseline", "local", 1.3131, 9_812_345, "baseline", "unchanged baseline, seed 1338", hour=0)]
    rows += [_row(f"s{i + 2:03d}-skip", "local", None, None, "skipped", "no change to run", hour=1)
             for i in range(SKIPPED_RUNS)]
    crash = _row("s042-crash", "local", None, None, "crash", "agent edit: CUDA out of memory", hour=2)
    crash.val_bpb = 1.0  # a partial score a crashed run may carry: never to be drawn as one
    rows += [crash,
             _row("s043-keep", "local", 1.2950, 9_815_000, "keep", "raise matrix_lr", hour=3),
             _row("s044-discard", "local", 1.3010, 9_820_001, "discard", "longer warmup", hour=4),
             _row("s045-keep", "local", 1.2870, 9_700_000, "keep", "QK-norm gain 1.5", hour=5)]
    for row in rows:
        ledger.append(row)
        if row.status != "skipped":
            _write_run_folder(ws, row)
    return ws
