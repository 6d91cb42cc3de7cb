"""Research for program.md: grade what the current context lacks and rank the graded items.

Rendering and writing program.md are `pgolf.sections`' job; this module only decides which items are
shown and in which order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pgolf.config import PgolfConfig
from pgolf.ledger import LedgerRow
from pgolf.research.competitors import CompetitorEntry, workspace_competitors
from pgolf.research.grading import (
    GradingContext,
    HeuristicGrader,
    ItemGrade,
    build_context,
    grade_pending,
    stored_grades,
)
from pgolf.rules import Ruleset
from pgolf.workspace import Workspace


@dataclass(frozen=True)
class RankedItem:
    """A stored item with the grade it is shown with."""

    item: Any
    grade: ItemGrade


def rank_items(items: Sequence[Any], grades: dict[str, ItemGrade]) -> list[RankedItem]:
    """Graded items, best first: by score share, then the source's authority, then id."""
    ranked = [RankedItem(i, grades[i.id]) for i in items if i.id in grades]
    ranked.sort(key=lambda r: (-r.grade.score / r.grade.max_score, -float(r.item.authority or 0), r.item.id))
    return ranked


def open_store(ws: Workspace) -> Any:
    """The workspace's research store, or None when nothing was ever fetched."""
    if not ws.research_db.exists():
        return None
    from pgolf.research.store import ResearchStore  # imported lazily: SQLite only when there is a db

    return ResearchStore(ws.research_db)


def workspace_context(ws: Workspace, config: PgolfConfig, store: Any = None) -> GradingContext:
    """The grading context of a workspace: its ledger, ruleset and every known competitor."""
    competitors = workspace_competitors(ws.state_dir, store)
    return build_context(ws.ledger().rows(), config.get_ruleset(), competitors)


def current_grades(store: Any, items: Sequence[Any], context: GradingContext,
                   preferred: Sequence[str] = ()) -> dict[str, ItemGrade]:
    """Each item's grade under this context: a preferred grader's (e.g. the LLM's) when present,
    else the heuristic's."""
    grades = stored_grades(store, items, context.digest(HeuristicGrader.name))
    for name in reversed(preferred):
        grades.update(stored_grades(store, items, context.digest(name)))
    return grades


@dataclass
class GradedResearch:
    """The ranked items program.md shows, the competitors of the context, and what grading did."""

    ranked: list[RankedItem] = field(default_factory=list)
    competitors: list[CompetitorEntry] = field(default_factory=list)
    graded: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    context_hash: str = ""


def graded_research(ws: Workspace, rows: Sequence[LedgerRow], ruleset: Ruleset, grader: Any = None) -> GradedResearch:
    """Grade the items without a grade under the current context (by `grader` when given, and always by
    the offline heuristic) and rank every graded item."""
    store = open_store(ws)
    competitors = workspace_competitors(ws.state_dir, store)
    context = build_context(list(rows), ruleset, competitors)
    out = GradedResearch(competitors=competitors, context_hash=context.digest(HeuristicGrader.name))
    if store is None:
        return out
    preferred = []
    if grader is not None and grader.name != HeuristicGrader.name:
        result = grade_pending(store, context, grader)
        out.graded += result.graded
        out.failures.update(result.failures)
        preferred.append(grader.name)
    out.graded += grade_pending(store, context, HeuristicGrader()).graded
    items = store.list()
    out.ranked = rank_items(items, current_grades(store, items, context, preferred))
    return out
