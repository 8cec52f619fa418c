"""Triage by Gemini (google-genai, structured output): how to ask it once; retries and fallback are provider.py's.

The SDK's retries are off (`HttpRetryOptions(attempts=1)`) so that one policy decides (provider.py). A wait the
server asks for comes from `Retry-After`, or the RetryInfo delay in Google's error body.
"""

from __future__ import annotations

import re
from typing import Unpack

import httpx2  # google-genai 3.x sends through httpx2 (pydantic's httpx fork); its errors are not httpx's
from google import genai
from google.genai import errors, types

from helpgate.workflows.ai.provider import Calls, Failure, Prompt, Provider, Usage, seconds, short, status_failure
from helpgate.workflows.ai.provider import TriageFailed as TriageFailed  # where tests and bench/ import it from
from helpgate.workflows.ai.triaging import triage_ticket as triage_ticket

_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")  # google.protobuf.Duration in JSON: "17s", "0.5s"


def requested_wait(error: errors.APIError) -> float | None:
    """How long the server asked us to wait: the Retry-After header, else google.rpc.RetryInfo's retryDelay."""
    headers = getattr(error.response, "headers", None)
    if headers is not None and (value := headers.get("retry-after")) is not None:
        return seconds(str(value))
    details = error.details.get("error", error.details) if isinstance(error.details, dict) else {}
    for detail in details.get("details", []) if isinstance(details, dict) else []:
        if isinstance(detail, dict) and (match := _RETRY_DELAY.match(str(detail.get("retryDelay", "")))):
            return float(match[1])
    return None


def _api_failure(error: errors.APIError) -> Failure:
    code = error.code or 0
    reason = f"{type(error).__name__} {code} {error.status or ''}: {error.message or ''}"
    return status_failure(code, reason, requested_wait(error))


class GeminiTriager(Provider):
    """Asks Gemini, with the `Triage` schema as its structured output."""

    source = "gemini"

    def __init__(self, api_key: str, model: str, *, base_url: str | None = None, **calls: Unpack[Calls]) -> None:
        super().__init__(model, **calls)
        http_options = types.HttpOptions(
            base_url=base_url,
            timeout=max(1, round(self.timeout_seconds * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def _complete(self, prompt: Prompt, usage: Usage) -> str | Failure:
        config = types.GenerateContentConfig(system_instruction=prompt.system, temperature=prompt.temperature)
        if prompt.schema is not None:
            config.response_mime_type = "application/json"
            config.response_schema = prompt.schema
        try:
            response = await self._client.aio.models.generate_content(
                model=self.model, contents=prompt.user, config=config
            )
        except errors.APIError as error:
            return _api_failure(error)
        except httpx2.TimeoutException:
            return self.timed_out()
        except httpx2.TransportError as error:
            return Failure(short(f"{type(error).__name__}: {error}"), retryable=True, kind="transport")
        if (metadata := response.usage_metadata) is not None:
            usage.add(metadata.prompt_token_count, metadata.candidates_token_count)
        text = response.text
        if not text or not text.strip():
            finish = response.candidates[0].finish_reason if response.candidates else None
            return Failure(f"empty answer (finish reason {finish})", retryable=True)
        return text
