"""The research sources, one module each, and their registry (the order of reports)."""

from __future__ import annotations

from pgolf.research.sources.arxiv import fetch_arxiv
from pgolf.research.sources.base import SourceSpec
from pgolf.research.sources.feeds import fetch_feeds
from pgolf.research.sources.github_code import fetch_github_code
from pgolf.research.sources.github_prs import fetch_github_prs
from pgolf.research.sources.openreview import LOGIN_ENV as OPENREVIEW_LOGIN
from pgolf.research.sources.openreview import fetch_openreview
from pgolf.research.sources.semantic_scholar import fetch_semantic_scholar
from pgolf.research.sources.tavily import fetch_tavily

SOURCES: dict[str, SourceSpec] = {spec.name: spec for spec in (
    SourceSpec("arxiv", fetch_arxiv),
    SourceSpec("openreview", fetch_openreview, login_env=OPENREVIEW_LOGIN),
    SourceSpec("semantic_scholar", fetch_semantic_scholar, key_env="S2_API_KEY"),
    SourceSpec("github_prs", fetch_github_prs, key_env="GITHUB_TOKEN", fast=True),
    SourceSpec("github_code", fetch_github_code, key_env="GITHUB_TOKEN", key_required=True, fast=True),
    SourceSpec("feeds", fetch_feeds),
    SourceSpec("tavily", fetch_tavily, key_env="TAVILY_API_KEY", key_required=True, fast=True),
)}
