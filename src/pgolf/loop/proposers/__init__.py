"""Proposers: what produces the next change to train_gpt.py (search, agent, llm)."""

from __future__ import annotations

from pgolf.config import PgolfConfig
from pgolf.errors import ConfigError
from pgolf.loop.proposers.base import Proposal, ProposalContext, Proposer
from pgolf.workspace import Workspace

KINDS = ("search", "agent", "llm")


def make_proposer(kind: str, ws: Workspace, config: PgolfConfig) -> Proposer:
    """The proposer named `kind`, configured from pgolf.toml; a bad setting is a ConfigError."""
    if kind == "search":
        from pgolf.loop.proposers.search import SearchProposer

        return SearchProposer(ws, config)
    if kind == "agent":
        from pgolf.loop.proposers.agent import AgentProposer

        return AgentProposer(ws, config)
    if kind == "llm":
        from pgolf.loop.proposers.llm import LlmProposer

        return LlmProposer(ws, config)
    raise ConfigError(f"unknown proposer {kind!r}; choose one of {', '.join(KINDS)}")


__all__ = ["KINDS", "Proposal", "ProposalContext", "Proposer", "make_proposer"]
