"""The LLM client against a real HTTP server on 127.0.0.1: both APIs, retries, errors, spend."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_server import Scripted, anthropic_reply, openai_reply, serve
from pgolf.budget import BudgetManager
from pgolf.config import BudgetConfig, LlmConfig
from pgolf.errors import BudgetRefused
from pgolf.llm import LLMClient, LLMError, _retry_after_seconds


def _config(url: str, **kw) -> LlmConfig:
    return LlmConfig(base_url=url, model="test-model", api_key_env="PGOLF_TEST_LLM_KEY",
                     input_usd_per_mtok=1.0, output_usd_per_mtok=2.0, **kw)


def test_openai_compatible_call_sends_key_and_parses_usage(monkeypatch):
    monkeypatch.setenv("PGOLF_TEST_LLM_KEY", "sk-secret-123")
    with serve([openai_reply("hello there", 1000, 500)]) as server:
        reply = LLMClient(_config(server.url)).complete("be brief", "say hi", max_tokens=64)
    assert reply.text == "hello there"
    assert (reply.input_tokens, reply.output_tokens) == (1000, 500)
    assert reply.cost_usd == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    req = server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-secret-123"
    assert req.body["model"] == "test-model" and req.body["max_tokens"] == 64
    assert req.body["messages"] == [{"role": "system", "content": "be brief"},
                                    {"role": "user", "content": "say hi"}]


def test_anthropic_messages_call():
    with serve([anthropic_reply("bonjour", 10, 20)]) as server:
        client = LLMClient(_config(server.url, provider="anthropic"), api_key="ak-1")
        reply = client.complete("sys", "user text")
    assert reply.text == "bonjour" and reply.output_tokens == 20
    req = server.requests[0]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "ak-1"
    assert req.headers["anthropic-version"]
    assert req.body["system"] == "sys"
    assert req.body["messages"] == [{"role": "user", "content": "user text"}]


def test_retries_429_and_5xx_honouring_retry_after():
    waits: list[float] = []
    replies = [Scripted(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}),
               Scripted(503, {"error": "overloaded"}), openai_reply("finally")]
    with serve(replies) as server:
        client = LLMClient(_config(server.url), api_key="k", backoff_seconds=0.5, sleep=waits.append)
        assert client.complete("s", "u").text == "finally"
    assert len(server.requests) == 3
    assert waits == [7.0, 1.0]  # Retry-After first, then exponential backoff 0.5 * 2**1


def test_gives_up_after_max_retries_with_one_line():
    waits: list[float] = []
    with serve([Scripted(500, {"error": {"message": "boom"}})]) as server:
        client = LLMClient(_config(server.url, max_retries=2), api_key="k", sleep=waits.append)
        with pytest.raises(LLMError, match=r"gave up after 3 attempts \(HTTP 500: boom\)") as info:
            client.complete("s", "u")
    assert len(server.requests) == 3 and len(waits) == 2
    assert "\n" not in str(info.value)


def test_client_error_is_not_retried_and_never_shows_the_key():
    with serve([Scripted(401, {"error": {"message": "invalid api key"}})]) as server:
        client = LLMClient(_config(server.url), api_key="sk-very-secret", sleep=lambda s: None)
        with pytest.raises(LLMError, match="HTTP 401: invalid api key") as info:
            client.complete("s", "u")
    assert len(server.requests) == 1
    assert "sk-very-secret" not in str(info.value)


@pytest.mark.parametrize("scripted", [
    Scripted(raw="<html>not json</html>"),
    Scripted(body={"choices": []}),
    Scripted(body={"choices": [{"message": {"content": None}}]}),
])
def test_malformed_replies_raise_llm_error(scripted):
    with serve([scripted]) as server, pytest.raises(LLMError, match="malformed"):
        LLMClient(_config(server.url), api_key="k").complete("s", "u")


def test_missing_key_for_a_remote_endpoint_fails_before_any_request():
    client = LLMClient(_config("https://llm.invalid/v1"))
    with pytest.raises(LLMError, match="set the environment variable PGOLF_TEST_LLM_KEY"):
        client.complete("s", "u")


def test_key_from_workspace_dotenv(tmp_path: Path):
    (tmp_path / ".env").write_text("PGOLF_TEST_LLM_KEY=from-dotenv\n")
    with serve([openai_reply("ok")]) as server:
        LLMClient(_config(server.url), workspace_root=tmp_path).complete("s", "u")
    assert server.requests[0].headers["authorization"] == "Bearer from-dotenv"


def test_loopback_server_needs_no_key():
    with serve([openai_reply("local model")]) as server:
        assert LLMClient(_config(server.url)).complete("s", "u").text == "local model"
    assert "authorization" not in server.requests[0].headers


def test_spend_is_recorded_and_the_cap_refuses_before_sending(tmp_path: Path):
    budget = BudgetManager(tmp_path / "budget.json", BudgetConfig(llm_cap_usd=0.01))
    with serve([openai_reply("one", 2000, 1000)]) as server:
        client = LLMClient(_config(server.url, max_tokens=100), api_key="k", budget=budget)
        client.complete("s", "u", purpose="grading")
        assert budget.status().llm_spent_usd == pytest.approx(0.004)
        entry = budget.history()[-1]
        assert entry.description == "grading" and entry.extra["input_tokens"] == 2000
        client.complete("s", "u")
        client.complete("s", "u")  # 0.012 spent now: over the cap
        with pytest.raises(BudgetRefused, match="LLM cap"):
            client.complete("s", "u")
    assert len(server.requests) == 3


def test_retry_after_http_date_and_garbage():
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds(None) is None
