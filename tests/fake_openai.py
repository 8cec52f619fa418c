"""A fake OpenAI-compatible API on 127.0.0.1: fake_gemini's scripted server, answering as chat completions do.

The real `openai` client calls `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`; the server
does not look at the path, so `base_url` may end in `/v1` as Ollama's and OpenAI's do. Errors come in OpenAI's
shape, `{"error": {"message", "type", "param", "code"}}`, which local servers copy.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fake_gemini import FakeGemini as FakeOpenAI
from tests.fake_gemini import Reply
from tests.fake_gemini import running_fake_gemini as running_fake_openai

__all__ = ["FakeOpenAI", "answer", "error", "refusal", "running_fake_openai"]

JSON = {"content-type": "application/json"}


def _completion(message: dict[str, Any], *, input_tokens: int, output_tokens: int, finish_reason: str) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }
    return json.dumps(body).encode()


def answer(
    payload: object,
    *,
    input_tokens: int = 120,
    output_tokens: int = 40,
    finish_reason: str = "stop",
    delay: float = 0.0,
) -> Reply:
    """A 200 whose message content is `payload` (JSON-encoded unless it is already a string)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    body = _completion(
        {"content": text}, input_tokens=input_tokens, output_tokens=output_tokens, finish_reason=finish_reason
    )
    return Reply(200, body, JSON, delay)


def refusal(text: str) -> Reply:
    """A 200 in which the model declines to answer (structured outputs' `refusal`)."""
    return Reply(
        200,
        _completion({"content": None, "refusal": text}, input_tokens=50, output_tokens=5, finish_reason="stop"),
        JSON,
    )


def error(
    status: int,
    message: str = "fake failure",
    *,
    param: str | None = None,
    retry_after: str | None = None,
    retry_after_ms: str | None = None,
) -> Reply:
    """An error in OpenAI's JSON shape, with the wait headers OpenAI sends when given."""
    kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    headers = dict(JSON)
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return Reply(status, json.dumps(body).encode(), headers)
