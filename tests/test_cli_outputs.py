"""Honest outputs and one name per idea: what the commands say when there is nothing, or nothing valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgolf.fmt import fmt_bpb, fmt_bytes, fmt_time, fmt_usd
from pgolf.ledger import LedgerRow
from pgolf.workspace import Workspace, init_workspace


def _pgolf(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"} | {"COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "pgolf", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = init_workspace(tmp_path_factory.mktemp("outputs") / "ws")
    for i in range(3):
        ws.ledger().append(LedgerRow(f"{i:08x}", "local", 1.3 - i / 100, 15_861_272 + i, None, "keep",
                                     run_id=f"r000{i + 1}", description=f"run {i}"))
    return ws


def test_empty_budget_history_says_so_once(ws: Workspace) -> None:
    out = _pgolf("budget", "history", cwd=ws.root)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "no budget history yet: nothing reserved, spent or charged\n"
    assert json.loads(_pgolf("budget", "history", "--json", cwd=ws.root).stdout) == []


@pytest.mark.parametrize("extra", [("--dry-run",), ("--dry-run", "--json"), ()])
def test_promote_without_a_remote_tier_refuses_in_one_line(ws: Workspace, extra: tuple[str, ...]) -> None:
    out = _pgolf("promote", "r0001", *extra, cwd=ws.root)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "error: promote: no remote tier in pgolf.toml; add [tiers.ssh] or [tiers.runpod] (README: Remote tier)"]
    assert ws.budget().history() == []


def test_an_unknown_ruleset_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    for flag in ("--ruleset", "--track"):
        out = _pgolf("init", "golf", flag, "track_bogus", cwd=tmp_path)
        assert out.returncode == 2
        assert "Invalid value for '--ruleset': unknown ruleset 'track_bogus'; choose from track_10min_16mb" \
            in out.stderr
    assert not (tmp_path / "golf").exists()


def test_ruleset_has_one_name_in_help_and_the_old_one_still_works(ws: Workspace, tmp_path: Path) -> None:
    for args in (("check",), ("submit", "package"), ("stats", "compare"), ("measure",), ("init",)):
        page = _pgolf(*args, "--help", cwd=tmp_path).stdout
        assert "--ruleset RULESET" in page and "--track" not in page, args
    script = ws.train_script
    out = _pgolf("check", str(script), "--track", "track_non_record_16mb", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["ruleset"] == "track_non_record_16mb"


def test_ledger_limit_and_its_old_name(ws: Workspace) -> None:
    newest = [r["run_id"] for r in json.loads(_pgolf("ledger", "--limit", "2", "--json", cwd=ws.root).stdout)]
    assert newest == ["r0002", "r0003"]
    for flag in ("-n", "--last"):
        rows = json.loads(_pgolf("ledger", flag, "1", "--json", cwd=ws.root).stdout)
        assert [r["run_id"] for r in rows] == ["r0003"]
    page = _pgolf("ledger", "--help", cwd=ws.root).stdout
    assert "-n, --limit N" in page and "--last" not in page


def test_run_limits_show_that_they_are_unlimited_by_default(tmp_path: Path) -> None:
    page = " ".join(_pgolf("run", "--help", cwd=tmp_path).stdout.split())
    assert "-n, --experiments N Stop after N experiments (noise-floor runs not counted). [default: unlimited" in page
    assert "--hours HOURS Start no new experiment after HOURS hours. [default: unlimited" in page


def test_an_unknown_grader_is_refused_before_the_workspace_is_read(tmp_path: Path) -> None:
    out = _pgolf("research", "grade", "--grader", "oracle", cwd=tmp_path)  # no workspace here either
    assert out.returncode == 2
    assert "unknown grader 'oracle'; choose from heuristic, llm" in out.stderr


def test_byte_counts_read_one_way_everywhere(ws: Workspace) -> None:
    assert fmt_bytes(15_861_272) == "15,861,272" and fmt_bytes(None) == "-"
    assert fmt_bpb(float("nan")) == "-" and fmt_usd(float("inf")) == "-" and fmt_usd(3.456) == "$3.46"
    ledger = _pgolf("ledger", cwd=ws.root, columns=200).stdout
    status = _pgolf("status", cwd=ws.root, columns=200).stdout
    assert "15,861,274" in ledger and "15,861,274" in status and "16,000,000 bytes" in status
    assert "15861274" not in ledger + status


def test_one_time_format() -> None:
    assert fmt_time("2026-01-31T14:05:59+00:00") == "2026-01-31 14:05 UTC"
    assert fmt_time("2026-01-31T15:05:00+01:00") == "2026-01-31 14:05 UTC"
    assert fmt_time("2026-01-31T14:05:00") == "2026-01-31 14:05 UTC"
    assert fmt_time(0) == "1970-01-01 00:00 UTC"
    assert fmt_time("not a time") == "not a time" and fmt_time(None) == "-"
