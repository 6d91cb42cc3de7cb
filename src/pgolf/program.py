"""program.md: the agent's context, a template plus injected sections between markers.

Each section sits between `<!-- NAME_START -->` and `<!-- NAME_END -->`. Section bodies may carry text
fetched from the internet, so every body is neutralized: nothing in it can open or close a section.
"""

from __future__ import annotations

import fcntl
import re
from importlib import resources
from pathlib import Path

from pgolf import statefile
from pgolf.atomic import atomic_write_text

SECTIONS: tuple[str, ...] = ("BEST", "EXPERIMENTS", "RESEARCH", "VERIFIED", "COMPETITORS", "BUDGET")

_MARKER = re.compile(r"<!--\s*([A-Z_]+?)_(START|END)\s*-->")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def neutralize(text: str) -> str:
    """Untrusted text made inert: no control characters, no HTML comment openers or closers."""
    text = _CONTROL.sub(" ", text)
    # Repeat until stable so that nested tricks such as "<!<!---->--" cannot reassemble a marker.
    while True:
        cleaned = text.replace("<!--", "<!- -").replace("-->", "- ->")
        if cleaned == text:
            return cleaned
        text = cleaned


def template_text() -> str:
    """The program.md template shipped with pgolf."""
    return resources.files("pgolf.templates").joinpath("program.md").read_text(encoding="utf-8")


def _span(text: str, name: str) -> tuple[int, int] | None:
    """Character span of a section's body, or None when its markers are missing or out of order."""
    start = re.search(rf"<!--\s*{name}_START\s*-->", text)
    end = re.search(rf"<!--\s*{name}_END\s*-->", text)
    if not start or not end or end.start() < start.end():
        return None
    return start.end(), end.start()


def read_sections(text: str) -> dict[str, str]:
    """The body of every well-formed section in `text`."""
    found = {}
    for name in SECTIONS:
        span = _span(text, name)
        if span:
            found[name] = text[span[0]:span[1]].strip("\n")
    return found


def render(text: str, updates: dict[str, str]) -> str:
    """`text` with the named sections' bodies replaced by neutralized `updates`."""
    for name, body in updates.items():
        if name not in SECTIONS:
            raise ValueError(f"unknown program.md section {name!r}")
        span = _span(text, name)
        if span is None:
            raise ValueError(f"program.md has no well-formed {name} section")
        body = neutralize(body).strip("\n")
        text = text[: span[0]] + "\n" + (body + "\n" if body else "") + text[span[1]:]
    return text


def update_program(path: Path, updates: dict[str, str]) -> None:
    """Rewrite program.md once, atomically, with new section bodies.

    A program.md whose markers were damaged (by hand or by an agent) is rebuilt from the template,
    keeping the bodies of the sections that were still intact.
    """
    path = Path(path)
    with open(path.with_name(".program.md.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # pgolf regenerates this file: bytes that are not UTF-8 are replaced, not fatal; a folder is one line.
        current = (statefile.read_bytes(path, missing_ok=True) or b"").decode("utf-8", errors="replace")
        if any(_span(current, name) is None for name in SECTIONS):
            kept = read_sections(current)
            current = render(template_text(), kept)
        atomic_write_text(path, render(current, updates))
