"""Parsing fetched XML (arXiv Atom, RSS, Atom feeds) without trusting it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pgolf.research.sources.base import SourceError

ATOM = "{http://www.w3.org/2005/Atom}"


def parse_xml(text: str, what: str) -> ET.Element:
    """The document's root element; SourceError when it is not well-formed XML or declares entities."""
    # A DOCTYPE is the only way to declare entities (and so to expand them without bound): refuse it.
    if "<!DOCTYPE" in text[:2000].upper():
        raise SourceError(f"malformed XML from {what}: a DOCTYPE is not accepted")
    try:
        return ET.fromstring(text)
    except ET.ParseError as err:
        raise SourceError(f"malformed XML from {what}: {err}") from None


def text_of(element: ET.Element | None, path: str) -> str:
    """The stripped text at `path` under `element`, or ""."""
    if element is None:
        return ""
    found = element.find(path)
    return "".join(found.itertext()).strip() if found is not None else ""
