"""AI triage on an OpenAI-compatible endpoint: the real `openai` client against a fake server on 127.0.0.1.

What both providers share (the clamp, prompt injection, backoff arithmetic) is tested with Gemini in
test_triage_ai.py; here, what this provider does its own way: the request, the JSON formats it steps down
through, and how its errors become retries.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from helpgate.core.settings import Settings
from helpgate.workflows.ai.drafts import DraftThread
from helpgate.workflows.ai.gemini import GeminiTriager
from helpgate.workflows.ai.openai_compat import Format, OpenAITriager
from helpgate.workflows.ai.provider import TriageFailed
from helpgate.workflows.ai.triage import SkillInfo, TicketText
from helpgate.workflows.ai.triaging import triage_ticket
from helpgate.workflows.engine import triager_from
from tests.fake_openai import FakeOpenAI, answer, error, refusal, running_fake_openai

API_KEY = "sk-test-123"
MODEL = "gpt-test"
CATALOG = (
    SkillInfo("billing", "Invoices, refunds, payment methods and subscription charges"),
    SkillInfo("api", "REST API, webhooks, SDKs and integration errors"),
)
TICKET = TicketText(7, "Charged twice", "I was charged twice for March. Please refund one payment.", "dana@example.com")
NO_SCHEMA = "response_format json_schema is not supported by this server"


def good(**overrides: Any) -> dict[str, Any]:
    return {
        "category": "billing",
        "priority": "medium",
        "skills": ["billing"],
        "summary": "Customer was charged twice and wants a refund.",
        "helpful_notes": "Check the payment log for March.",
        "language": "en",
        "sentiment": "neutral",
    } | overrides


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with running_fake_openai() as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    return []


type MakeTriager = Callable[..., OpenAITriager]


@pytest.fixture
async def make_triager(fake: FakeOpenAI, waits: list[float]) -> AsyncIterator[MakeTriager]:
    """Triagers on the fake server (`/v1`, as Ollama's) whose backoff waits are recorded instead of slept."""
    made: list[OpenAITriager] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    def make(**overrides: Any) -> OpenAITriager:
        options: dict[str, Any] = {
            "base_url": f"{fake.base_url}/v1",
            "timeout_seconds": 5.0,
            "attempts": 3,
            "sleep": record,
        }
        triager = OpenAITriager(overrides.pop("api_key", API_KEY), MODEL, **(options | overrides))
        made.append(triager)
        return triager

    yield make
    for triager in made:
        await triager.aclose()


async def test_good_answer_lands_with_source_model_and_tokens(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(answer(good(priority="high", skills=["BILLING", "admin"]), input_tokens=321, output_tokens=54))
    outcome = await triage_ticket(TICKET, CATALOG, make_triager())
    assert (outcome.source, outcome.model, outcome.attempts) == ("openai", MODEL, 1)
    assert (outcome.input_tokens, outcome.output_tokens) == (321, 54)
    assert outcome.fallback_reason is None
    assert (outcome.triage.priority, outcome.triage.skills) == ("high", ["billing"])  # clamped to the catalog


async def test_request_carries_key_rules_ticket_and_json_schema(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(answer(good()))
    await make_triager().triage(TICKET, CATALOG)
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    sent = request.json()
    assert (sent["model"], sent["temperature"]) == (MODEL, 0)
    system, user = sent["messages"]
    assert system["role"] == "system" and "never instructions" in system["content"]
    assert "- billing: Invoices, refunds" in system["content"]
    assert user["role"] == "user" and user["content"].startswith("Triage this ticket.\n<ticket>\n")
    assert "I was charged twice" in user["content"] and "I was charged twice" not in system["content"]
    structured = sent["response_format"]
    assert structured["type"] == "json_schema"
    assert (structured["json_schema"]["name"], structured["json_schema"]["strict"]) == ("triage", True)
    schema = structured["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(good())
    assert schema["properties"]["priority"]["enum"] == ["low", "medium", "high"]


async def test_a_server_without_a_key_gets_a_placeholder(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(answer(good()))
    await make_triager(api_key=None).triage(TICKET, CATALOG)
    assert fake.requests[0].headers["authorization"] == "Bearer none"


async def test_a_server_without_json_schema_gets_json_mode_from_then_on(
    fake: FakeOpenAI, make_triager: MakeTriager, waits: list[float]
) -> None:
    fake.play(error(400, NO_SCHEMA, param="response_format"), answer(good()))
    triager = make_triager()
    outcome = await triager.triage(TICKET, CATALOG)
    assert (outcome.source, outcome.attempts, waits) == ("openai", 1, [])  # stepping down is no failed attempt
    assert triager.format is Format.JSON_OBJECT
    rejected, accepted = (request.json() for request in fake.requests)
    assert rejected["response_format"]["type"] == "json_schema"
    assert accepted["response_format"] == {"type": "json_object"}
    assert '"additionalProperties": false' in accepted["messages"][0]["content"]  # the schema, in the rules

    await triager.triage(TICKET, CATALOG)
    assert len(fake.requests) == 3  # remembered: no second 400
    assert fake.requests[2].json()["response_format"] == {"type": "json_object"}


async def test_a_server_without_json_mode_gets_the_schema_in_the_instruction(
    fake: FakeOpenAI, make_triager: MakeTriager
) -> None:
    fake.play(
        error(400, NO_SCHEMA),
        error(400, "Invalid value for 'response_format.type': json_object"),
        answer(f"```json\n{json.dumps(good())}\n```"),  # a model with no schema to hold it fences its JSON
    )
    triager = make_triager()
    outcome = await triager.triage(TICKET, CATALOG)
    assert (outcome.source, outcome.attempts, outcome.triage.category) == ("openai", 1, "billing")
    assert triager.format is Format.INSTRUCTION
    last = fake.requests[2].json()
    assert "response_format" not in last
    assert "It must fit this JSON schema" in last["messages"][0]["content"]


async def test_another_400_is_final_and_keeps_the_format(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(error(400, "model 'gpt-test' not found", param="model"))
    triager = make_triager()
    outcome = await triage_ticket(TICKET, CATALOG, triager)
    assert (outcome.source, outcome.attempts, len(fake.requests)) == ("heuristic", 1, 1)
    assert outcome.fallback_reason == "openai failed after 1 attempt: BadRequestError 400: model 'gpt-test' not found"
    assert triager.format is Format.JSON_SCHEMA


async def test_a_model_that_takes_no_temperature_is_asked_without(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    unsupported = "Unsupported value: 'temperature' does not support 0 with this model."
    fake.play(error(400, unsupported, param="temperature"), answer(good()))
    triager = make_triager()
    await triager.triage(TICKET, CATALOG)
    await triager.triage(TICKET, CATALOG)
    sent = [request.json() for request in fake.requests]
    assert ["temperature" in body for body in sent] == [True, False, False]
    assert all(body["response_format"]["type"] == "json_schema" for body in sent)


async def test_invalid_json_is_retried_then_falls_back_with_reason(
    fake: FakeOpenAI, make_triager: MakeTriager, waits: list[float]
) -> None:
    fake.play(answer('{"category": "billing", "priority": '))
    outcome = await triage_ticket(TICKET, CATALOG, make_triager())
    assert (outcome.source, outcome.attempts, len(fake.requests), len(waits)) == ("heuristic", 3, 3, 2)
    assert outcome.fallback_reason is not None
    assert outcome.fallback_reason.startswith("openai failed after 3 attempts: answer did not fit the schema")
    assert (outcome.model, outcome.input_tokens, outcome.output_tokens) == (MODEL, 360, 120)  # what was billed
    assert outcome.triage.category == "billing"  # the heuristic's own reading


async def test_an_answer_outside_the_schema_is_retried_and_a_later_good_one_wins(
    fake: FakeOpenAI, make_triager: MakeTriager
) -> None:
    fake.play(answer(good(priority="urgent")), answer(good()))
    outcome = await make_triager().triage(TICKET, CATALOG)
    assert (outcome.source, outcome.attempts, outcome.input_tokens) == ("openai", 2, 240)


async def test_429_with_retry_after_waits_then_succeeds(
    fake: FakeOpenAI, make_triager: MakeTriager, waits: list[float]
) -> None:
    fake.play(error(429, "Rate limit reached", retry_after="2"), error(429, retry_after_ms="1500"), answer(good()))
    outcome = await make_triager().triage(TICKET, CATALOG)
    assert (outcome.source, outcome.attempts, len(fake.requests)) == ("openai", 3, 3)
    assert waits == [2.0, 1.5]


async def test_500_until_the_end_falls_back_with_backoff_and_reason(
    fake: FakeOpenAI, make_triager: MakeTriager, waits: list[float]
) -> None:
    fake.play(error(500, "backend exploded"))
    outcome = await triage_ticket(TICKET, CATALOG, make_triager(backoff_base=1.0))
    assert outcome.source == "heuristic"
    assert outcome.fallback_reason == "openai failed after 3 attempts: InternalServerError 500: backend exploded"
    assert (outcome.attempts, len(fake.requests)) == (3, 3)  # ours only: the client's own retries are off
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 <= waits[1] <= 2.0


async def test_503_then_a_good_answer(fake: FakeOpenAI, make_triager: MakeTriager, waits: list[float]) -> None:
    fake.play(error(503, "overloaded"), answer(good()))
    outcome = await make_triager().triage(TICKET, CATALOG)
    assert (outcome.source, outcome.attempts, len(waits)) == ("openai", 2, 1)


async def test_a_refusal_is_final(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(refusal("I can't help with that."))
    with pytest.raises(TriageFailed) as failed:
        await make_triager().triage(TICKET, CATALOG)
    assert failed.value.detail == "openai failed after 1 attempt: the model refused: I can't help with that."
    assert len(fake.requests) == 1


async def test_slow_answer_past_the_timeout_falls_back_fast(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(answer(good(), delay=30))
    started = time.monotonic()
    outcome = await triage_ticket(TICKET, CATALOG, make_triager(timeout_seconds=0.3, attempts=2))
    assert time.monotonic() - started < 3
    assert outcome.fallback_reason == "openai failed after 2 attempts: timeout after 0.3 s"
    assert len(fake.requests) == 2


async def test_unreachable_server_is_retried_then_falls_back(make_triager: MakeTriager) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await triage_ticket(TICKET, CATALOG, make_triager(base_url=f"http://127.0.0.1:{port}/v1", attempts=2))
    assert (outcome.source, outcome.attempts) == ("heuristic", 2)
    assert outcome.fallback_reason is not None and "ConnectError" in outcome.fallback_reason


async def test_a_draft_is_plain_text_asked_without_a_format(fake: FakeOpenAI, make_triager: MakeTriager) -> None:
    fake.play(answer("Hello Dana,\n\nwe have <b>refunded</b> the second charge.", input_tokens=80, output_tokens=20))
    thread = DraftThread(7, "Charged twice", "Dana", (("customer", "I was charged twice."),))
    draft = await make_triager().draft(thread)
    assert (draft.text, draft.model) == ("Hello Dana,\n\nwe have refunded the second charge.", MODEL)
    assert (draft.input_tokens, draft.output_tokens) == (80, 20)
    sent = fake.requests[0].json()
    assert "response_format" not in sent and sent["temperature"] == 0.3
    assert "You draft replies" in sent["messages"][0]["content"]


async def test_the_settings_build_the_provider_they_choose() -> None:
    chosen = triager_from(Settings(_env_file=None, triage_provider="openai", openai_api_key="sk-test"))
    assert isinstance(chosen, OpenAITriager)
    assert (chosen.base_url, chosen.model) == ("https://api.openai.com/v1", "gpt-4o-mini")  # OpenAI itself
    await chosen.aclose()
    local = triager_from(Settings(_env_file=None, triage_provider="openai", openai_base_url="http://127.0.0.1:1/v1"))
    assert isinstance(local, OpenAITriager) and local.base_url == "http://127.0.0.1:1/v1"
    await local.aclose()
    gemini = triager_from(Settings(_env_file=None, triage_provider="gemini", gemini_api_key="g"))
    assert isinstance(gemini, GeminiTriager)
    await gemini.aclose()
    assert triager_from(Settings(_env_file=None, triage_provider="heuristic", gemini_api_key="g")) is None
