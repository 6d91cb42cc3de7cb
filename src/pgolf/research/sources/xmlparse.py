"""Parsing fetched XML (arXiv Atom, RSS, Atom feeds) without trusting it.

defusedxml's parser accepts a DOCTYPE (old RSS 0.91 feeds declare one) but refuses any entity
declaration, internal or external, before anything is expanded: a billion-laughs or external-entity
document is an error, never a big string or a file read. The DTD's external subset is never fetched.
The HTML named entities (`&eacute;`, `&nbsp;`) that the RSS 0.91 DTD defines are resolved from a fixed
table, so such a feed reads without its DTD.
"""

from __future__ import annotations

import html.entities
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree

from pgolf.research.sources.base import SourceError

ATOM = "{http://www.w3.org/2005/Atom}"
_HTML_ENTITIES = {name: chr(code) for name, code in html.entities.name2codepoint.items()}


def parse_xml(text: str, what: str) -> ET.Element:
    """The document's root element; SourceError when it is not well-formed XML or declares entities."""
    parser = defusedxml.ElementTree.XMLParser(forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.entity.update(_HTML_ENTITIES)  # consulted only for entities the document did not declare
    try:
        parser.feed(text)
        return parser.close()
    except ET.ParseError as err:
        raise SourceError(f"malformed XML from {what}: {err}") from None
    except defusedxml.DefusedXmlException as err:
        name = getattr(err, "name", "") or ""
        raise SourceError(f"refused XML from {what}: it declares entity {name!r} "
                          "(entity declarations are never expanded)") from None


def text_of(element: ET.Element | None, path: str) -> str:
    """The stripped text at `path` under `element`, or ""."""
    if element is None:
        return ""
    found = element.find(path)
    return "".join(found.itertext()).strip() if found is not None else ""
