"""Fetching a submission from a GitHub pull request at its head commit (REST API, read-only)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pgolf.errors import DataError
from pgolf.submission.folder import MAX_FILE_BYTES, TRACK_DIRS, Submission

if TYPE_CHECKING:
    import httpx

DEFAULT_REPO = "openai/parameter-golf"
API_URL = "https://api.github.com"
_TIMEOUT_S = 30.0


def _get(client: httpx.Client, url: str, **params: object) -> httpx.Response:
    import httpx  # only a PR check needs it: `pgolf check DIR` starts without it
    try:
        response = client.get(url, params=params or None)
    except httpx.HTTPError as err:
        raise DataError(f"GitHub: {url}: {err}") from None
    if response.status_code == 404:
        raise DataError(f"GitHub: {url} not found")
    if response.status_code in (401, 403):
        hint = " (rate limited: set GITHUB_TOKEN)" if "rate limit" in response.text.lower() else ""
        raise DataError(f"GitHub: {url}: HTTP {response.status_code}{hint}")
    if response.status_code >= 400:
        raise DataError(f"GitHub: {url}: HTTP {response.status_code}")
    return response


def _records_folder(paths: list[str]) -> str | None:
    """The records/<track>/<name> folder holding most of the PR's files."""
    folders = Counter("/".join(p.split("/")[:3]) for p in paths
                      if p.startswith("records/") and p.count("/") >= 3 and p.split("/")[1] in TRACK_DIRS)
    return folders.most_common(1)[0][0] if folders else None


def fetch_pr(number: int, repo: str = DEFAULT_REPO, token: str | None = None,
             api_url: str = API_URL) -> Submission:
    """The records folder a PR adds, with every file's content at the PR's head commit."""
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "pgolf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    import httpx

    with httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(_TIMEOUT_S),
                      follow_redirects=True) as client:
        pr = _get(client, f"/repos/{repo}/pulls/{number}").json()
        try:
            sha, head_repo = pr["head"]["sha"], pr["head"]["repo"]["full_name"]
        except (KeyError, TypeError):
            raise DataError(f"GitHub: PR {repo}#{number} has no head commit (its fork was deleted?)") from None
        changed: list[dict] = []
        for page in range(1, 31):  # GitHub lists at most 3000 files, 100 per page
            batch = _get(client, f"/repos/{repo}/pulls/{number}/files", per_page=100, page=page).json()
            changed += batch
            if len(batch) < 100:
                break
        paths = [f["filename"] for f in changed if f.get("status") != "removed"]
        folder = _records_folder(paths)
        if folder is None:
            raise DataError(f"GitHub: PR {repo}#{number} adds no records/<track>/<name>/ folder")
        files: dict[str, bytes] = {}
        sizes: dict[str, int] = {}
        raw = {**headers, "Accept": "application/vnd.github.raw"}
        for path in (p for p in paths if p.startswith(folder + "/")):
            rel = path[len(folder) + 1:]
            try:
                response = client.get(f"/repos/{head_repo}/contents/{path}", params={"ref": sha}, headers=raw)
            except httpx.HTTPError as err:
                raise DataError(f"GitHub: {path}: {err}") from None
            if response.status_code >= 400:
                raise DataError(f"GitHub: {path} at {sha[:8]}: HTTP {response.status_code}")
            sizes[rel] = len(response.content)
            if sizes[rel] <= MAX_FILE_BYTES:
                files[rel] = response.content
    track = folder.split("/")[1]
    return Submission(name=folder.rsplit("/", 1)[-1], where=f"{repo}#{number}@{sha[:8]}:{folder}", files=files,
                      sizes=sizes, track=track, parent=f"records/{track}",
                      outside=sorted(p for p in paths if not p.startswith(folder + "/")))
