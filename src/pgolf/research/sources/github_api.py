"""What the two GitHub sources share: headers and `Link` pagination."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


def github_headers(token: str | None, accept: str = "application/vnd.github+json") -> dict[str, str]:
    """The REST API's headers, with the token when one is set."""
    headers = {"Accept": accept, "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def next_page(response: httpx.Response) -> str | None:
    """The URL of the next page from the `Link` header, or None on the last page."""
    match = _NEXT.search(response.headers.get("link", ""))
    return match.group(1) if match else None
