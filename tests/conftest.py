"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The challenge's real material beside the project; skip (or fail in CI) when absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("PGOLF_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"PGOLF_REQUIRE_SHARED_DATA=1 but {SHARED_DATA} is missing")
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory):
    """The offline demo corpus (shards + tokenizer), built once per test session."""
    from pgolf.data.demo import build_demo_dataset

    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's workspace or secrets, and git never prompts."""
    monkeypatch.delenv("PGOLF_WORKSPACE", raising=False)
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "RUNPOD_API_KEY", "GITHUB_TOKEN",
                "TAVILY_API_KEY", "S2_API_KEY", "OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
