"""A real HTTP server on 127.0.0.1 that answers LLM API calls with scripted replies, for tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """One reply: status, JSON (or raw text) body, extra headers."""

    status: int = 200
    body: Any = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


class LlmServer:
    """Serves the scripted replies in order (the last one repeats) and records every request."""

    def __init__(self, replies: list[Scripted]) -> None:
        self.replies = list(replies)
        self.requests: list[Recorded] = []
        self.url = ""

    def _next(self) -> Scripted:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def openai_reply(text: str, prompt_tokens: int = 100, completion_tokens: int = 50) -> Scripted:
    """A chat-completions reply carrying `text`."""
    return Scripted(body={
        "id": "cmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    })


def anthropic_reply(text: str, input_tokens: int = 100, output_tokens: int = 50) -> Scripted:
    """A messages-API reply carrying `text`."""
    return Scripted(body={
        "id": "msg_1", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    })


@contextmanager
def serve(replies: list[Scripted]) -> Iterator[LlmServer]:
    """Start the server on a free port of 127.0.0.1; `server.url` is its base URL (…/v1)."""
    state = LlmServer(replies)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length).decode()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            state.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = state._next()
            data = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
