"""Grading: the rubric, the prompt built from the ledger, the heuristic and the LLM graders, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_server import Scripted, openai_reply, serve
from pgolf.config import LlmConfig
from pgolf.ledger import LedgerRow
from pgolf.llm import LLMClient
from pgolf.research.competitors import CompetitorEntry
from pgolf.research.grading import (
    HeuristicGrader,
    ItemGrade,
    LLMGrader,
    build_context,
    clamp_breakdown,
    grade_pending,
    grading_prompt,
    parse_reply,
    stored_grades,
    tier_of,
)
from pgolf.research.items import ResearchItem
from pgolf.research.store import ResearchStore
from pgolf.rules import get_ruleset


def _item(item_id: str, title: str, abstract: str, kind: str = "paper") -> ResearchItem:
    return ResearchItem(item_id, "arxiv", kind, title, abstract, f"https://arxiv.org/abs/{item_id}",
                        "2025-01-01", "2025-01-02T00:00:00Z")


GPTQ_PAPER = _item("arxiv:2501.00001", "Hessian-aware int6 GPTQ for small language models",
                   "We quantize 20M-parameter transformer language models to 6-bit weights with GPTQ error "
                   "compensation and lose almost no perplexity after compression.")
RLHF_PAPER = _item("arxiv:2501.00002", "Scaling RLHF to a 70B chat model",
                   "We align a 70B-parameter model with reinforcement learning from human feedback, training a "
                   "reward model on preference data collected from annotators.")
EMA_PAPER = _item("arxiv:2501.00003", "Exponential moving average of weights for fast pretraining",
                  "Keeping an EMA of the weights improves small transformer language models at no cost.")

ROWS = [
    LedgerRow("a1", "local", 1.2500, 15_000_000, None, "baseline", run_id="r1", description="baseline"),
    LedgerRow("a2", "local", 1.2400, 15_100_000, None, "keep", promoted="yes", run_id="r2",
              description="EMA of weights, decay 0.997"),
    LedgerRow("a3", "local", 1.2600, 15_100_000, None, "discard", run_id="r3",
              description="depth recurrence over layers 3-5"),
    LedgerRow("a4", "local", None, None, None, "crash", run_id="r4", description="fp8 matmuls everywhere"),
]
COMPETITORS = [
    CompetitorEntry("PR #1855", "codemath3000", "SmearGate + LQER stack", 1.0611, "2026-04-27",
                    "track_10min_16mb", "merged", "challenge-readme"),
    CompetitorEntry("PR #9", "x", "Unlimited thing", 1.0, None, "track_non_record_16mb", None, "pr-title"),
]


def _context(rows=ROWS, competitors=COMPETITORS):
    return build_context(rows, get_ruleset(), competitors)


def test_tier_comes_from_the_clamped_breakdown():
    raw = {"bpb_impact": 9, "size_compatibility": "3", "time_compatibility": -4, "implementability": 2.6,
           "novelty": None, "total": 15, "tier": "A"}
    breakdown = clamp_breakdown(raw, with_competitors=False)
    assert breakdown == {"bpb_impact": 3, "size_compatibility": 3, "time_compatibility": 0,
                         "implementability": 3, "novelty": 0}
    grade = ItemGrade("x", breakdown, "", "test")
    assert (grade.score, grade.max_score, grade.tier) == (9, 15, "B")
    assert [tier_of(s, False) for s in (10, 9, 7, 6)] == ["A", "B", "B", "C"]
    assert [tier_of(s, True) for s in (12, 11, 8, 7)] == ["A", "B", "B", "C"]
    with_comp = ItemGrade("x", clamp_breakdown({**raw, "competitor_validated": 5}, True), "", "t")
    assert (with_comp.score, with_comp.max_score, with_comp.tier) == (11, 17, "B")
    assert ItemGrade.from_json("x", with_comp.as_json()) == with_comp


def test_prompt_contains_best_failures_competitors_and_rules():
    context = _context()
    system, user = grading_prompt(context, [GPTQ_PAPER])
    assert "competitor_validated 0-2" in system and "16,000,000-byte" in system
    assert "val_bpb 1.2400 (EMA of weights, decay 0.997)" in user  # the best
    assert "EMA of weights, decay 0.997" in user.split("already adopted")[1]  # proven
    assert "discard: depth recurrence over layers 3-5 (val_bpb 1.2600)" in user  # failures
    assert "crash: fp8 matmuls everywhere" in user
    assert "1.0611 SmearGate + LQER stack (PR #1855)" in user  # competitors of this track only
    assert "Unlimited thing" not in user
    assert "training 600 s" in user
    assert f"Item id: {GPTQ_PAPER.id}" in user and "> Hessian-aware int6 GPTQ" in user
    empty_system, empty_user = grading_prompt(build_context([], get_ruleset()), [GPTQ_PAPER])
    assert "competitor_validated" not in empty_system and "no scored run yet" in empty_user


def test_only_the_last_ten_failures_reach_the_prompt():
    rows = [LedgerRow(f"c{i}", "local", 1.3, None, None, "discard", run_id=f"f{i}", description=f"idea {i}")
            for i in range(14)]
    _system, user = grading_prompt(build_context(rows, get_ruleset()), [])
    assert "idea 3\n" not in user and "idea 4" in user and "idea 13" in user


def test_heuristic_ranks_small_lm_quantization_above_rlhf_for_70b():
    grader = HeuristicGrader()
    context = _context()
    gptq = grader.grade_one(GPTQ_PAPER, context)
    rlhf = grader.grade_one(RLHF_PAPER, context)
    assert gptq.score > rlhf.score
    assert gptq.tier == "A" and rlhf.tier == "C"
    assert rlhf.breakdown["size_compatibility"] == 0 and "70B" in rlhf.rationale
    assert gptq.breakdown["novelty"] == 3


def test_heuristic_marks_a_technique_proven_in_the_ledger_as_low_novelty():
    grader = HeuristicGrader()
    proven = grader.grade_one(EMA_PAPER, _context())
    fresh = grader.grade_one(EMA_PAPER, _context(rows=ROWS[:1]))
    assert proven.breakdown["novelty"] == 0 and "already proven here" in proven.rationale
    assert fresh.breakdown["novelty"] == 3
    failed = grader.grade_one(_item("arxiv:4", "Depth recurrence for small LMs", "Looped layers."), _context())
    assert failed.breakdown["novelty"] == 1 and "recently failed" in failed.rationale


def _grades_reply(*ids: str, **overrides) -> str:
    grades = [{"id": i, "bpb_impact": 3, "size_compatibility": 3, "time_compatibility": 2,
               "implementability": 4, "novelty": 3, "competitor_validated": 2, "rationale": "good",
               **overrides} for i in ids]
    return json.dumps({"grades": grades})


def _llm(url: str) -> LLMGrader:
    client = LLMClient(LlmConfig(base_url=url, model="grader-model", max_retries=0), backoff_seconds=0)
    return LLMGrader(client, model="grader-model", batch_size=2)


def test_llm_grader_batches_and_validates():
    items = [GPTQ_PAPER, RLHF_PAPER, EMA_PAPER]
    replies = [openai_reply("```json\n" + _grades_reply(GPTQ_PAPER.id, RLHF_PAPER.id, novelty=9) + "\n```"),
               openai_reply(_grades_reply(EMA_PAPER.id, "not-asked-for"))]
    with serve(replies) as server:
        run = _llm(server.url).grade(items, _context())
    assert len(server.requests) == 2  # two batches of at most two
    assert "Item id: arxiv:2501.00001" in server.requests[0].body["messages"][1]["content"]
    assert {g.item_id for g in run.grades} == {i.id for i in items} and not run.failures
    first = run.grades[0]
    assert first.breakdown["novelty"] == 3 and first.score == 17 and first.grader == "llm:grader-model"


def test_llm_grader_retries_a_malformed_reply_once():
    replies = [openai_reply("Sure! Here are the grades: none"), openai_reply(_grades_reply(GPTQ_PAPER.id))]
    with serve(replies) as server:
        run = _llm(server.url).grade([GPTQ_PAPER], _context())
    assert len(server.requests) == 2
    assert "could not be used (no JSON object" in server.requests[1].body["messages"][1]["content"]
    assert [g.item_id for g in run.grades] == [GPTQ_PAPER.id]


def test_llm_failures_are_reported_never_cached_and_retried_next_time(tmp_path: Path):
    store = ResearchStore(tmp_path / "research.db")
    store.upsert([GPTQ_PAPER, RLHF_PAPER])
    context = _context()
    bad = [openai_reply('{"grades": [{"id": "arxiv:2501.00001", "bpb_impact": "high"}]}')]
    with serve(bad) as server:
        grader = _llm(server.url)
        report = grade_pending(store, context, grader)
    assert len(server.requests) == 2  # the first try and one retry
    assert report.graded == 0 and set(report.failures) == {GPTQ_PAPER.id, RLHF_PAPER.id}
    assert "malformed grader reply twice" in report.failures[GPTQ_PAPER.id]
    digest = context.digest(grader.name)
    assert stored_grades(store, store.list(), digest) == {}  # nothing cached as a zero
    with serve([openai_reply(_grades_reply(GPTQ_PAPER.id, RLHF_PAPER.id))]) as server:
        report = grade_pending(store, context, _llm(server.url))
    assert report.graded == 2 and not report.failures
    assert stored_grades(store, store.list(), digest)[GPTQ_PAPER.id].score == 17


def _without_competitor_field(*ids: str) -> str:
    reply = json.loads(_grades_reply(*ids))
    for grade in reply["grades"]:
        del grade["competitor_validated"]
    return json.dumps(reply)


def test_a_reply_without_competitor_validated_is_malformed_when_competitors_are_known(tmp_path: Path):
    store = ResearchStore(tmp_path / "research.db")
    store.upsert([GPTQ_PAPER])
    context = _context()
    assert context.with_competitors
    with serve([openai_reply(_without_competitor_field(GPTQ_PAPER.id))]) as server:
        grader = _llm(server.url)
        report = grade_pending(store, context, grader)
    assert len(server.requests) == 2  # retried once, with the reason
    assert "grades.0.competitor_validated: Field required" in server.requests[1].body["messages"][1]["content"]
    assert report.graded == 0
    assert "malformed grader reply twice: grades.0.competitor_validated" in report.failures[GPTQ_PAPER.id]
    assert stored_grades(store, store.list(), context.digest(grader.name)) == {}  # never cached as 0
    # Without competitor data the field is not asked for, so a reply without it is whole.
    with serve([openai_reply(_without_competitor_field(GPTQ_PAPER.id))]) as server:
        run = _llm(server.url).grade([GPTQ_PAPER], _context(competitors=[]))
    assert len(server.requests) == 1 and run.grades[0].score == 15 and not run.failures


def test_llm_http_errors_become_failures():
    with serve([Scripted(500, {"error": {"message": "down"}})]) as server:
        run = _llm(server.url).grade([GPTQ_PAPER], _context())
    assert not run.grades and "HTTP 500" in run.failures[GPTQ_PAPER.id]


def test_parse_reply_names_the_problem():
    with pytest.raises(ValueError, match="grades.0.novelty"):
        parse_reply('{"grades": [{"id": "a", "bpb_impact": 1, "size_compatibility": 1, '
                    '"time_compatibility": 1, "implementability": 1}]}')


def test_grades_are_cached_per_context_and_refresh_when_history_changes(tmp_path: Path):
    store = ResearchStore(tmp_path / "research.db")
    store.upsert([GPTQ_PAPER, RLHF_PAPER, EMA_PAPER])
    grader = HeuristicGrader()
    before = _context(rows=ROWS[:1])
    assert grade_pending(store, before, grader).graded == 3
    assert grade_pending(store, before, grader).graded == 0  # cached
    after = _context()  # EMA got proven, failures happened
    assert after.digest(grader.name) != before.digest(grader.name)
    assert grade_pending(store, after, grader).graded == 3
    old = stored_grades(store, [EMA_PAPER], before.digest(grader.name))[EMA_PAPER.id]
    new = stored_grades(store, [EMA_PAPER], after.digest(grader.name))[EMA_PAPER.id]
    assert old.breakdown["novelty"] == 3 and new.breakdown["novelty"] == 0
