"""Triage by Gemini (google-genai, structured output), with our own retries and the heuristic as fallback.

The SDK's retries are off (`HttpRetryOptions(attempts=1)`) so that one policy decides, here: 429, 5xx,
timeouts and connection errors are retried with exponential backoff and jitter, honouring the server's
`Retry-After` (or the RetryInfo delay in Google's error body), capped; other 4xx are final. An answer that does
not fit the `Triage` schema counts as a failed attempt. Whatever Gemini answers passes through `clamp`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2  # google-genai 3.x sends through httpx2 (pydantic's httpx fork); its errors are not httpx's
from google import genai
from google.genai import errors, types
from pydantic import ValidationError

from helpgate.core import metrics
from helpgate.core.errors import HelpgateError
from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai import drafts
from helpgate.workflows.ai.drafts import Draft, DraftThread
from helpgate.workflows.ai.heuristic import heuristic_triage
from helpgate.workflows.ai.prompt import system_instruction, ticket_block
from helpgate.workflows.ai.triage import (
    DEFAULT_CATEGORIES,
    SkillInfo,
    TicketText,
    Triage,
    TriageOutcome,
    clamp,
)

logger = logging.getLogger(__name__)

type Sleep = Callable[[float], Awaitable[None]]

NO_KEY_REASON = "no GEMINI_API_KEY"
NO_KEY_KIND = "no_key"
MAX_REASON = 300
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")  # google.protobuf.Duration in JSON: "17s", "0.5s"


class TriageFailed(HelpgateError):
    """Gemini gave no usable answer; `detail` says why, and what the failed calls cost."""

    http_status = 502

    def __init__(
        self, detail: str, *, kind: str, attempts: int, input_tokens: int | None, output_tokens: int | None
    ) -> None:
        super().__init__(detail)
        self.kind = kind  # the last failure's kind (see _Failure), a metrics label
        self.attempts = attempts
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass
class _Failure:
    reason: str
    retryable: bool
    wait: float | None = None  # what the server asked for, if anything
    # rate_limited, server_error, client_error, timeout, transport or bad_answer: a metrics label
    kind: str = "bad_answer"


@dataclass
class _Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None

    def add(self, metadata: types.GenerateContentResponseUsageMetadata | None) -> None:
        if metadata is None:
            return
        if metadata.prompt_token_count is not None:
            self.input_tokens = (self.input_tokens or 0) + metadata.prompt_token_count
        if metadata.candidates_token_count is not None:
            self.output_tokens = (self.output_tokens or 0) + metadata.candidates_token_count


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _seconds(value: str) -> float | None:
    """A Retry-After value (delta-seconds or HTTP-date, RFC 9110 §10.2.3) as seconds from now."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def requested_wait(error: errors.APIError) -> float | None:
    """How long the server asked us to wait: the Retry-After header, else google.rpc.RetryInfo's retryDelay."""
    headers = getattr(error.response, "headers", None)
    if headers is not None and (value := headers.get("retry-after")) is not None:
        return _seconds(str(value))
    details = error.details.get("error", error.details) if isinstance(error.details, dict) else {}
    for detail in details.get("details", []) if isinstance(details, dict) else []:
        if isinstance(detail, dict) and (match := _RETRY_DELAY.match(str(detail.get("retryDelay", "")))):
            return float(match[1])
    return None


def _api_failure(error: errors.APIError) -> _Failure:
    code = error.code or 0
    retryable = code == 429 or code >= 500
    reason = _short(f"{type(error).__name__} {code} {error.status or ''}: {error.message or ''}")
    kind = "rate_limited" if code == 429 else "server_error" if code >= 500 else "client_error"
    return _Failure(reason, retryable, requested_wait(error) if retryable else None, kind)


def _text(response: types.GenerateContentResponse) -> str | _Failure:
    text = response.text
    if not text or not text.strip():
        finish = response.candidates[0].finish_reason if response.candidates else None
        return _Failure(f"empty answer (finish reason {finish})", retryable=True)
    return text


def _parse(response: types.GenerateContentResponse) -> Triage | _Failure:
    if isinstance(response.parsed, Triage):
        return response.parsed
    text = response.text
    if not text:
        finish = response.candidates[0].finish_reason if response.candidates else None
        return _Failure(f"empty answer (finish reason {finish})", retryable=True)
    try:
        return Triage.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        return _Failure(_short(f"answer did not fit the schema: {where}: {first['msg']}"), retryable=True)


class GeminiTriager:
    """Asks Gemini to triage a ticket; one instance holds one SDK client for its whole life."""

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        timeout_seconds: float,
        attempts: int,
        base_url: str | None = None,
        backoff_base: float = 1.0,
        max_wait: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1 or timeout_seconds <= 0:
            raise ValueError("attempts must be at least 1 and timeout_seconds positive")
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self._sleep = sleep
        http_options = types.HttpOptions(
            base_url=base_url,
            timeout=max(1, round(timeout_seconds * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    def backoff(self, attempt: int, requested: float | None) -> float:
        """The wait after failed attempt `attempt` (1-based): the server's wish, else exponential with jitter."""
        if requested is not None:
            return min(requested, self.max_wait)
        ceiling = min(self.backoff_base * 2.0 ** (attempt - 1), self.max_wait)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _attempt[T](
        self,
        contents: str,
        config: types.GenerateContentConfig,
        usage: _Usage,
        parse: Callable[[types.GenerateContentResponse], T | _Failure],
    ) -> T | _Failure:
        try:
            # The SDK's own timeout bounds each socket operation; this one bounds the whole call.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
        except errors.APIError as error:
            return _api_failure(error)
        except (TimeoutError, httpx2.TimeoutException):
            return _Failure(f"timeout after {self.timeout_seconds:g} s", retryable=True, kind="timeout")
        except httpx2.TransportError as error:
            return _Failure(_short(f"{type(error).__name__}: {error}"), retryable=True, kind="transport")
        usage.add(response.usage_metadata)
        return parse(response)

    async def _ask[T](
        self,
        number: int,
        contents: str,
        config: types.GenerateContentConfig,
        parse: Callable[[types.GenerateContentResponse], T | _Failure],
    ) -> tuple[T, _Usage, int]:
        """The parsed answer, what it cost and the attempts it took; TriageFailed after the last attempt or a
        final error. Retries wait as `backoff` says."""
        usage = _Usage()
        for attempt in range(1, self.attempts + 1):
            result = await self._attempt(contents, config, usage, parse)
            if not isinstance(result, _Failure):
                return result, usage, attempt
            if not result.retryable or attempt == self.attempts:
                plural = "s" if attempt > 1 else ""
                raise TriageFailed(
                    f"gemini failed after {attempt} attempt{plural}: {result.reason}",
                    kind=result.kind,
                    attempts=attempt,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                )
            wait = self.backoff(attempt, result.wait)
            logger.info("triage.retry ticket=%s attempt=%s wait_s=%.2f reason=%s", number, attempt, wait, result.reason)
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def triage(
        self, ticket: TicketText, catalog: Sequence[SkillInfo], categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
    ) -> TriageOutcome:
        """Gemini's triage, clamped; raises TriageFailed after the last attempt or a final error."""
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=Triage,
            system_instruction=system_instruction(catalog, categories),
            temperature=0,
        )
        started = time.monotonic()
        result, usage, attempts = await self._ask(ticket.number, ticket_block(ticket), config, _parse)
        return TriageOutcome(
            triage=clamp(result, catalog, categories),
            source="gemini",
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=round((time.monotonic() - started) * 1000),
            attempts=attempts,
            fallback_reason=None,
        )

    async def draft(self, thread: DraftThread) -> Draft:
        """A reply for an agent to edit, in the customer's language; TriageFailed as for triage."""
        config = types.GenerateContentConfig(system_instruction=drafts.DRAFT_RULES, temperature=0.3)
        text, usage, _ = await self._ask(thread.number, drafts.draft_block(thread), config, _text)
        return Draft(
            text=drafts.clean(text),
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )


async def triage_ticket(
    ticket: TicketText,
    catalog: Sequence[SkillInfo],
    triager: GeminiTriager | None,
    categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES,
) -> TriageOutcome:
    """Gemini's triage when a triager is configured and answers; otherwise the heuristic's, saying why. Both
    choose from `categories` (the store's catalog; the defaults when not given)."""
    started = time.monotonic()
    if triager is not None:
        try:
            outcome = await triager.triage(ticket, catalog, categories)
        except TriageFailed as failure:
            return _fallback(ticket, catalog, categories, failure.detail, started, failure, triager.model)
        logger.info(
            "triage.done ticket=%s source=gemini latency_ms=%s attempts=%s category=%s priority=%s",
            ticket.number,
            outcome.latency_ms,
            outcome.attempts,
            outcome.triage.category,
            outcome.triage.priority,
        )
        metrics.observe_triage(source="gemini", fallback_reason=None, seconds=time.monotonic() - started)
        return outcome
    return _fallback(ticket, catalog, categories, NO_KEY_REASON, started, None, None)


def _fallback(
    ticket: TicketText,
    catalog: Sequence[SkillInfo],
    categories: Sequence[CategoryEntry],
    reason: str,
    started: float,
    failure: TriageFailed | None,
    model: str | None,
) -> TriageOutcome:
    triage = heuristic_triage(ticket, catalog, categories)
    outcome = TriageOutcome(
        triage=triage,
        source="heuristic",
        model=model,  # the Gemini model that was asked, if any: its failed calls may have cost tokens
        input_tokens=failure.input_tokens if failure else None,
        output_tokens=failure.output_tokens if failure else None,
        latency_ms=round((time.monotonic() - started) * 1000),
        attempts=failure.attempts if failure else 0,
        fallback_reason=reason,
    )
    logger.info(
        "triage.fallback ticket=%s source=heuristic latency_ms=%s attempts=%s category=%s priority=%s reason=%s",
        ticket.number,
        outcome.latency_ms,
        outcome.attempts,
        triage.category,
        triage.priority,
        reason,
    )
    kind = failure.kind if failure else NO_KEY_KIND
    metrics.observe_triage(source="heuristic", fallback_reason=kind, seconds=time.monotonic() - started)
    return outcome
