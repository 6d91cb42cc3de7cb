"""One small client for OpenAI-compatible chat completions and the Anthropic messages API.

Every call is checked against the budget's LLM cap before it is sent and recorded after it returns,
so research grading and the `llm` proposer share one spend limit. Keys come from the environment only
and never appear in an error message.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from pgolf.budget import BudgetManager
from pgolf.config import LlmConfig, secret
from pgolf.errors import BudgetRefused, PgolfError

_OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
_ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com/v1"
_ANTHROPIC_VERSION = "2023-06-01"
_MAX_RETRY_WAIT_SECONDS = 60.0
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class LLMError(PgolfError):
    """An LLM call failed: no key, a refused request, a malformed reply, or retries exhausted."""


@dataclass(frozen=True)
class LLMReply:
    """The text of one completion and what it cost."""

    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token), used only for the budget check."""
    return len(text) // 4 + 1


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_detail(response: httpx.Response) -> str:
    """The API's own error message when it sent one, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().replace("\n", " ")[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:200]
    if isinstance(error, str):
        return error[:200]
    return str(body)[:200]


class LLMClient:
    """Chat with one configured endpoint; spend is checked against and recorded in the budget."""

    def __init__(
        self,
        config: LlmConfig,
        *,
        budget: BudgetManager | None = None,
        api_key: str | None = None,
        workspace_root: Path | None = None,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.budget = budget
        self._api_key = api_key or secret(config.api_key_env, workspace_root)
        self._backoff = backoff_seconds
        self._sleep = sleep
        base = config.base_url.rstrip("/")
        if config.provider == "anthropic" and base == _OPENAI_DEFAULT_URL:
            base = _ANTHROPIC_DEFAULT_URL  # provider switched, URL left at the OpenAI default
        self.base_url = base

    # -- request shapes ----------------------------------------------------------------------------

    def _request(self, system: str, user: str, max_tokens: int) -> tuple[str, dict[str, str], dict]:
        """URL, headers and JSON body for the configured provider."""
        headers = {"content-type": "application/json"}
        if self.config.provider == "anthropic":
            if self._api_key:
                headers["x-api-key"] = self._api_key
            headers["anthropic-version"] = _ANTHROPIC_VERSION
            body = {
                "model": self.config.model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            }
            return f"{self.base_url}/messages", headers, body
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        body = {
            "model": self.config.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        return f"{self.base_url}/chat/completions", headers, body

    def _parse(self, payload: Any) -> tuple[str, int, int]:
        """Text, input tokens and output tokens from a provider's JSON reply."""
        where = f"{self.config.provider} reply from {self.base_url}"
        try:
            if self.config.provider == "anthropic":
                blocks = payload["content"]
                text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
                usage = payload.get("usage") or {}
                return text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
            text = payload["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
            usage = payload.get("usage") or {}
            return text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
            raise LLMError(f"malformed {where}: {type(err).__name__} {err}") from None

    # -- money -------------------------------------------------------------------------------------

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for a call at the configured per-million-token prices."""
        c = self.config
        return (input_tokens * c.input_usd_per_mtok + output_tokens * c.output_usd_per_mtok) / 1e6

    def _check_budget(self, system: str, user: str, max_tokens: int, purpose: str) -> None:
        if self.budget is None:
            return
        worst_case = self.cost(estimate_tokens(system) + estimate_tokens(user), max_tokens)
        verdict = self.budget.can_spend_llm(worst_case)
        if not verdict.ok:
            raise BudgetRefused(f"LLM call{f' for {purpose}' if purpose else ''} refused: {verdict.reason}")

    # -- the call ----------------------------------------------------------------------------------

    def _needs_key(self) -> bool:
        """Local servers (Ollama, vLLM on this machine) usually take no key; remote ones do."""
        return (urlparse(self.base_url).hostname or "") not in _LOOPBACK_HOSTS

    def complete(self, system: str, user: str, *, max_tokens: int | None = None,
                 purpose: str = "") -> LLMReply:
        """One completion; retries 429/5xx and connection errors with backoff, honouring Retry-After."""
        if not self._api_key and self._needs_key():
            raise LLMError(f"no API key: set the environment variable {self.config.api_key_env}")
        tokens = max_tokens or self.config.max_tokens
        self._check_budget(system, user, tokens, purpose)
        url, headers, body = self._request(system, user, tokens)
        payload = self._post_with_retries(url, headers, body)
        text, tokens_in, tokens_out = self._parse(payload)
        reply = LLMReply(text, tokens_in, tokens_out, self.cost(tokens_in, tokens_out))
        if self.budget is not None:
            self.budget.record_llm(reply.cost_usd, description=purpose or f"llm {self.config.model}",
                                   input_tokens=tokens_in, output_tokens=tokens_out)
        return reply

    def _post_with_retries(self, url: str, headers: dict[str, str], body: dict) -> Any:
        attempts = self.config.max_retries + 1
        last = ""
        with httpx.Client(timeout=self.config.timeout_seconds) as client:
            for attempt in range(attempts):
                wait = self._backoff * (2**attempt)
                try:
                    response = client.post(url, headers=headers, json=body)
                except httpx.HTTPError as err:
                    last = f"{type(err).__name__}: {err}"
                else:
                    status = response.status_code
                    if status < 300:
                        try:
                            return response.json()
                        except ValueError:
                            raise LLMError(f"malformed reply from {url}: not JSON") from None
                    last = f"HTTP {status}: {_error_detail(response)}"
                    if status != 429 and status < 500:
                        raise LLMError(f"{self.config.provider} {url}: {last}")
                    hinted = _retry_after_seconds(response.headers.get("retry-after"))
                    if hinted is not None:
                        wait = hinted
                if attempt + 1 < attempts:
                    self._sleep(min(wait, _MAX_RETRY_WAIT_SECONDS))
        raise LLMError(f"{self.config.provider} {url}: gave up after {attempts} attempts ({last})")
