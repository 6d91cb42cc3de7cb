"""`pgolf research grade | verify | inject` through the real CLI, offline."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pgolf.cli.app import app
from pgolf.ledger import LedgerRow
from pgolf.program import read_sections
from pgolf.research.items import ResearchItem
from pgolf.research.store import ResearchStore
from pgolf.workspace import init_workspace

runner = CliRunner()

ITEMS = [
    ResearchItem("arxiv:1", "arxiv", "paper", "GPTQ int6 quantization for small language models",
                 "Hessian-aware int6 post-training quantization of small transformer language models "
                 "keeps perplexity within 0.5% at a third of the bytes.",
                 "https://arxiv.org/abs/1", "2026-01-01", "2026-01-02T00:00:00Z"),
    ResearchItem("arxiv:2", "arxiv", "paper", "RLHF reward modelling for a 70B assistant",
                 "Preference optimisation of a 70-billion-parameter chat model.",
                 "https://arxiv.org/abs/2", "2026-01-01", "2026-01-02T00:00:00Z"),
]


def test_grade_verify_inject_offline(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws")
    ws.ledger().append(LedgerRow("c1", "local", 1.25, 15_000_000, None, "baseline", run_id="r1"))
    w = ["--workspace", str(ws.root)]

    missing = runner.invoke(app, [*w, "research", "grade"])
    assert "no research yet" in str(missing.exception)  # main() prints it as one line, exit 1

    ResearchStore(ws.research_db).upsert(ITEMS)
    graded = runner.invoke(app, [*w, "research", "grade", "--json"])
    assert graded.exit_code == 0, graded.output
    report = json.loads(graded.stdout)
    assert report["graded"] == 2 and report["grader"] == "heuristic" and report["failures"] == {}
    again = json.loads(runner.invoke(app, [*w, "research", "grade", "--json"]).stdout)
    assert again["graded"] == 0  # cached for this history

    verified = runner.invoke(app, [*w, "research", "verify", "--no-fetch", "--json"])
    assert verified.exit_code == 0, verified.output
    ids = [v["item_id"] for v in json.loads(verified.stdout)["verified"]]
    assert "arxiv:2" not in ids  # only Tier-A items are verified

    injected = runner.invoke(app, [*w, "research", "inject"])
    assert injected.exit_code == 0, injected.output
    sections = read_sections(ws.program_md.read_text())
    assert "GPTQ int6" in sections["RESEARCH"]
    assert sections["RESEARCH"].index("GPTQ int6") < sections["RESEARCH"].index("RLHF")
