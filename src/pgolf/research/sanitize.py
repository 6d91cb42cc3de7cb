"""Fetched text is untrusted: markup stripped, made inert, agent-aimed instructions cut out, truncated.

Neutralizing reuses `pgolf.program.neutralize` (control characters, HTML comment markers). On top of it,
a sentence that addresses an AI agent ("ignore previous instructions", "you are now …", chat-template
tokens) is replaced by `[agent-directed text removed]` and the item is flagged `agent_instruction`, so
no such sentence can reach `program.md` or a grading prompt, and later stages can show the flag.
"""

from __future__ import annotations

import html
import re

from pgolf.program import neutralize

REMOVED = "[agent-directed text removed]"
AGENT_INSTRUCTION_FLAG = "agent_instruction"

TITLE_LIMIT = 300
ABSTRACT_LIMIT = 4000
DOCUMENT_LIMIT = 20000

_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|blockquote|pre|section|article)\b[^<>]{0,500}>", re.I)
_TAG = re.compile(r"<(?!!--)[^<>]{0,500}>")
_SPACE = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
# A trigger phrase plus the rest of its sentence. Phrases are what prompt-injection attempts use to
# address an agent reading the text, not ordinary prose about models.
_INSTRUCTION = re.compile(
    r"(?:"
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|"
    r"preceding|your|system)\s+(?:instructions?|prompts?|rules|directions|context)"
    r"|\byou\s+are\s+now\s+(?:a|an|in)\b"
    r"|\bnew\s+(?:system\s+)?instructions?\s*:"
    r"|\b(?:as|to)\s+(?:an?\s+)?(?:ai|llm|language\s+model|coding)\s+(?:agent|assistant)s?\b[^.!?\n]{0,40}"
    r"\b(?:must|should|will)\b"
    r"|\b(?:system|developer)\s+prompt\s*:"
    r"|<\|im_(?:start|end)\|>|\[/?INST\]|<\|(?:system|user|assistant)\|>"
    r")[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)


def strip_markup(text: str) -> str:
    """HTML tags removed (block tags become line breaks) and entities decoded; feeds and snippets carry HTML."""
    text = _TAG.sub("", _BLOCK_TAG.sub("\n", text))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis when shortened."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def clean_text(text: str | None, limit: int, *, single_line: bool = False) -> tuple[str, bool]:
    """Untrusted text made safe to store; returns it and whether an agent-aimed instruction was cut."""
    if not text:
        return "", False
    text = neutralize(text)
    text, hits = _INSTRUCTION.subn(REMOVED, text)
    text = _SPACE.sub(" ", text)
    text = " ".join(text.split()) if single_line else _BLANK_LINES.sub("\n\n", text).strip()
    return truncate(text, limit), hits > 0
