"""What every AI provider shares: one prompt asked with our retries and timeouts, the answer parsed and clamped.

A provider (gemini.py, openai_compat.py) only says how to ask its API once (`Provider._complete`): it turns its
SDK's errors into a `Failure` and adds what the call cost to the `Usage`. Everything else is decided here, once:
429, 5xx, timeouts, connection errors and answers that do not fit the `Triage` schema are retried with
exponential backoff and jitter, honouring the server's requested wait (capped); other errors are final; after
the last attempt `TriageFailed` says why, and what the failed calls cost. The SDKs' own retries are off.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import ClassVar, NotRequired, TypedDict

from pydantic import BaseModel, ValidationError

from helpgate.core.errors import HelpgateError
from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai import drafts
from helpgate.workflows.ai.drafts import Draft, DraftThread
from helpgate.workflows.ai.prompt import system_instruction, ticket_block
from helpgate.workflows.ai.triage import (
    DEFAULT_CATEGORIES,
    AiSource,
    SkillInfo,
    TicketText,
    Triage,
    TriageOutcome,
    clamp,
)

logger = logging.getLogger(__name__)

type Sleep = Callable[[float], Awaitable[None]]

MAX_REASON = 300


class TriageFailed(HelpgateError):
    """The AI gave no usable answer; `detail` says why, and what the failed calls cost."""

    http_status = 502

    def __init__(
        self, detail: str, *, kind: str, attempts: int, input_tokens: int | None, output_tokens: int | None
    ) -> None:
        super().__init__(detail)
        self.kind = kind  # the last failure's kind (see Failure), a metrics label
        self.attempts = attempts
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass
class Failure:
    """One failed call: why, whether another attempt may help, and how long the server asked us to wait."""

    reason: str
    retryable: bool
    wait: float | None = None  # what the server asked for, if anything
    # rate_limited, server_error, client_error, timeout, transport or bad_answer: a metrics label
    kind: str = "bad_answer"


@dataclass
class Usage:
    """Tokens billed over all the calls of one question; None while no call reported any."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    def add(self, input_tokens: int | None, output_tokens: int | None) -> None:
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + input_tokens
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + output_tokens


@dataclass(frozen=True)
class Prompt:
    """One question: the rules as the system instruction, the ticket (or thread) as delimited data in the user turn."""

    system: str
    user: str
    temperature: float
    schema: type[BaseModel] | None = None  # the JSON the answer must fit; None: plain text


def short(text: str) -> str:
    """`text` on one line, at most MAX_REASON characters: a reason fit for a log line and the ticket."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def seconds(value: str) -> float | None:
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


def status_failure(code: int, reason: str, wait: float | None) -> Failure:
    """An HTTP error answer: 429 and 5xx are worth another attempt (after `wait`, if the server named one)."""
    retryable = code == 429 or code >= 500
    kind = "rate_limited" if code == 429 else "server_error" if code >= 500 else "client_error"
    return Failure(short(reason), retryable, wait if retryable else None, kind)


def _unfenced(text: str) -> str:
    """The answer without a Markdown code fence around it, which models asked for JSON without a schema add."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and "\n" in text:
        return text.split("\n", 1)[1][:-3].strip()
    return text


def parse_triage(text: str) -> Triage | Failure:
    try:
        return Triage.model_validate_json(_unfenced(text))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        return Failure(short(f"answer did not fit the schema: {where}: {first['msg']}"), retryable=True)


class Calls(TypedDict):
    """How a provider calls its AI, as its subclasses take it (`**calls`) and pass it on to Provider.__init__."""

    timeout_seconds: float
    attempts: int
    backoff_base: NotRequired[float]
    max_wait: NotRequired[float]
    sleep: NotRequired[Sleep]


class Provider(ABC):
    """An AI that triages tickets and drafts replies; one instance holds one SDK client for its whole life."""

    source: ClassVar[AiSource]  # recorded on the ticket, and the start of a failure's reason

    def __init__(
        self,
        model: str,
        *,
        timeout_seconds: float,
        attempts: int,
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

    @abstractmethod
    async def _complete(self, prompt: Prompt, usage: Usage) -> str | Failure:
        """Ask once: the answer's text, or why there is none. Adds what the call cost to `usage`."""

    @abstractmethod
    async def aclose(self) -> None: ...

    def timed_out(self) -> Failure:
        return Failure(f"timeout after {self.timeout_seconds:g} s", retryable=True, kind="timeout")

    def backoff(self, attempt: int, requested: float | None) -> float:
        """The wait after failed attempt `attempt` (1-based): the server's wish, else exponential with jitter."""
        if requested is not None:
            return min(requested, self.max_wait)
        ceiling = min(self.backoff_base * 2.0 ** (attempt - 1), self.max_wait)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _attempt[T](self, prompt: Prompt, usage: Usage, parse: Callable[[str], T | Failure]) -> T | Failure:
        try:
            # The SDK's own timeout bounds each socket operation; this one bounds the whole call.
            async with asyncio.timeout(self.timeout_seconds):
                text = await self._complete(prompt, usage)
        except TimeoutError:
            return self.timed_out()
        return text if isinstance(text, Failure) else parse(text)

    async def _ask[T](self, number: int, prompt: Prompt, parse: Callable[[str], T | Failure]) -> tuple[T, Usage, int]:
        """The parsed answer, what it cost and the attempts it took; TriageFailed after the last attempt or a
        final error. Retries wait as `backoff` says."""
        usage = Usage()
        for attempt in range(1, self.attempts + 1):
            result = await self._attempt(prompt, usage, parse)
            if not isinstance(result, Failure):
                return result, usage, attempt
            if not result.retryable or attempt == self.attempts:
                plural = "s" if attempt > 1 else ""
                raise TriageFailed(
                    f"{self.source} failed after {attempt} attempt{plural}: {result.reason}",
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
        """The model's triage, clamped; raises TriageFailed after the last attempt or a final error."""
        prompt = Prompt(system_instruction(catalog, categories), ticket_block(ticket), temperature=0, schema=Triage)
        started = time.monotonic()
        result, usage, attempts = await self._ask(ticket.number, prompt, parse_triage)
        return TriageOutcome(
            triage=clamp(result, catalog, categories),
            source=self.source,
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=round((time.monotonic() - started) * 1000),
            attempts=attempts,
            fallback_reason=None,
        )

    async def draft(self, thread: DraftThread) -> Draft:
        """A reply for an agent to edit, in the customer's language; TriageFailed as for triage."""
        prompt = Prompt(drafts.DRAFT_RULES, drafts.draft_block(thread), temperature=0.3)
        text, usage, _ = await self._ask(thread.number, prompt, str)
        return Draft(
            text=drafts.clean(text),
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
