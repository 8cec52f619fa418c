"""Workflows under Inngest: /api/inngest served on a real uvicorn and driven the way the Inngest server drives it
(docs/inngest-protocol.md), with a fake Inngest API on 127.0.0.1 for event sends and sync. No gateway here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from inngest._internal import net

from helpgate.core.errors import ConfigurationError
from helpgate.workflows.inngest_app import SERVE_PATH, EventNotSent, InngestSender, make_client, serve, to_inngest
from helpgate.workflows.step import Cancel, Context, Event, Json, PermanentError, Step, Workflow
from tests.fake_inngest import FakeInngest, execute, memoise, request_body, serving

SIGNING_KEY = "signkey-prod-" + "5f" * 32
EVENT_KEY = "test-event-key"
TICKET_CREATED = {"name": "ticket/created", "data": {"ticket_id": "T-1"}, "id": "outbox-1", "ts": 0}


@dataclass
class Recorder:
    runs: Counter[str] = field(default_factory=Counter)  # step bodies that actually ran
    contexts: list[Context] = field(default_factory=list)
    failures: list[tuple[Context, str]] = field(default_factory=list)


def workflows(record: Recorder) -> list[Workflow]:
    def body(name: str, value: Json) -> Any:
        async def run() -> Json:
            record.runs[name] += 1
            return value

        return run

    async def three_steps(ctx: Context, step: Step) -> Json:
        record.contexts.append(ctx)
        first = await step.run("first", body("first", 1))
        second = await step.run("second", body("second", first + 1))
        third = await step.run("third", body("third", {"sum": first + second}))
        return {"result": third, "ticket": ctx.event.data["ticket_id"]}

    async def nap(ctx: Context, step: Step) -> Json:
        await step.run("before", body("before", "ok"))
        await step.sleep("wait", timedelta(hours=2))
        return await step.run("after", body("after", "woke"))

    async def notify(ctx: Context, step: Step) -> Json:
        for n in range(2):
            await step.send_event("emit", "ticket/notified", {"n": n})
        return "sent"

    async def doomed(ctx: Context, step: Step) -> Json:
        async def check() -> Json:
            raise PermanentError("ticket vanished")

        return await step.run("check", check)

    async def refuses(ctx: Context, step: Step) -> Json:
        raise PermanentError("not for us")

    async def flaky(ctx: Context, step: Step) -> Json:
        async def check() -> Json:
            raise ValueError("try again")

        return await step.run("check", check)

    async def on_failure(ctx: Context, text: str) -> None:
        record.failures.append((ctx, text))

    return [
        Workflow(
            id="three-steps",
            trigger="ticket/created",
            handler=three_steps,
            name="Three steps",
            retries=5,
            cancel=(Cancel(event="ticket/closed", match="ticket_id"),),
            concurrency=2,
        ),
        Workflow(id="nap", trigger="ticket/created", handler=nap),
        Workflow(id="notify", trigger="ticket/created", handler=notify),
        Workflow(id="doomed", trigger="ticket/created", handler=doomed, on_failure=on_failure),
        Workflow(id="refuses", trigger="ticket/created", handler=refuses),
        Workflow(id="flaky", trigger="ticket/created", handler=flaky),
    ]


@dataclass
class Served:
    api: httpx.AsyncClient
    record: Recorder


@contextlib.asynccontextmanager
async def served_app(*, production: bool, base_url: str) -> AsyncIterator[Served]:
    client = make_client(
        is_production=production,
        signing_key=SIGNING_KEY if production else None,
        event_key=EVENT_KEY,
        base_url=base_url,
    )
    record = Recorder()
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    serve(app, client, workflows(record))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as api:
        yield Served(api, record)


@pytest.fixture
async def dev(fake_inngest: FakeInngest) -> AsyncIterator[Served]:
    async with served_app(production=False, base_url=fake_inngest.base_url) as served:
        yield served


@pytest.fixture
async def prod(fake_inngest: FakeInngest) -> AsyncIterator[Served]:
    async with served_app(production=True, base_url=fake_inngest.base_url) as served:
        yield served


def signed(body: bytes, *, at: float | None = None, key: str = SIGNING_KEY) -> dict[str, str]:
    signature = net.sign_request(body, key, round(time.time() if at is None else at))
    assert isinstance(signature, str)
    return {"X-Inngest-Signature": signature}


async def test_introspection_counts_functions_and_names_the_mode(dev: Served) -> None:
    response = await dev.api.get(SERVE_PATH)

    assert response.status_code == 200
    assert response.json()["function_count"] == 6
    assert response.json()["mode"] == "dev"


async def test_each_step_runs_once_and_the_next_call_gets_its_memoised_result(dev: Served) -> None:
    steps: dict[str, Any] = {}
    answers = []
    for _ in range(4):
        response = await execute(
            dev.api, "helpgate-three-steps", request_body(TICKET_CREATED, run_id="run-1", steps=steps)
        )
        answers.append((response.status_code, response.json()))
        if response.status_code != 206:
            break
        memoise(steps, response.json())

    assert [(status, [(op["op"], op["name"], op["data"]) for op in ops]) for status, ops in answers[:3]] == [
        (206, [("StepRun", "first", 1)]),
        (206, [("StepRun", "second", 2)]),
        (206, [("StepRun", "third", {"sum": 3})]),
    ]
    assert answers[3] == (200, {"result": {"sum": 3}, "ticket": "T-1"})
    assert dev.record.runs == {"first": 1, "second": 1, "third": 1}
    assert dev.record.contexts[0] == Context(
        event=Event(id="outbox-1", name="ticket/created", data={"ticket_id": "T-1"}), run_id="run-1", attempt=0
    )


async def test_sleep_answers_with_its_wake_time_and_resumes_once_memoised(dev: Served) -> None:
    steps: dict[str, Any] = {}
    response = await execute(dev.api, "helpgate-nap", request_body(TICKET_CREATED, run_id="run-2"))
    memoise(steps, response.json())
    response = await execute(dev.api, "helpgate-nap", request_body(TICKET_CREATED, run_id="run-2", steps=steps))

    assert response.status_code == 206
    [sleep] = response.json()
    assert sleep["op"] == "Sleep"
    wake = datetime.fromisoformat(sleep["name"])
    assert abs(wake - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(seconds=30)

    memoise(steps, [sleep])
    response = await execute(dev.api, "helpgate-nap", request_body(TICKET_CREATED, run_id="run-2", steps=steps))
    assert response.status_code == 206
    assert [(op["op"], op["name"], op["data"]) for op in response.json()] == [("StepRun", "after", "woke")]
    assert dev.record.runs == {"before": 1, "after": 1}


async def test_sent_events_carry_ids_stable_for_the_run_and_step(dev: Served, fake_inngest: FakeInngest) -> None:
    steps: dict[str, Any] = {}
    for _ in range(3):
        response = await execute(dev.api, "helpgate-notify", request_body(TICKET_CREATED, run_id="run-3", steps=steps))
        if response.status_code != 206:
            break
        memoise(steps, response.json())

    assert (response.status_code, response.json()) == (200, "sent")
    sent = [(key, event["id"], event["name"], event["data"]) for key, body in fake_inngest.events for event in body]
    assert sent == [
        (EVENT_KEY, "run-3:emit", "ticket/notified", {"n": 0}),
        (EVENT_KEY, "run-3:emit:1", "ticket/notified", {"n": 1}),
    ]


@pytest.mark.parametrize(("fn_id", "message"), [("doomed", "ticket vanished"), ("refuses", "not for us")])
async def test_permanent_error_gets_the_sdk_non_retriable_answer(dev: Served, fn_id: str, message: str) -> None:
    response = await execute(dev.api, f"helpgate-{fn_id}", request_body(TICKET_CREATED, run_id="run-4"))

    assert response.status_code == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert response.json()["code"] == "non_retriable_error"
    assert (response.json()["name"], response.json()["message"]) == ("PermanentError", message)


async def test_an_ordinary_step_error_is_left_to_inngest_to_retry(dev: Served) -> None:
    response = await execute(dev.api, "helpgate-flaky", request_body(TICKET_CREATED, run_id="run-5"))

    assert response.status_code == 206
    [op] = response.json()
    assert (op["op"], op["error"]["name"], op["error"]["message"]) == ("StepError", "ValueError", "try again")
    assert "x-inngest-no-retry" not in response.headers


async def test_failure_function_gets_the_original_event_and_the_error(dev: Served) -> None:
    failed = await execute(dev.api, "helpgate-doomed", request_body(TICKET_CREATED, run_id="run-6"))
    event = {
        "name": "inngest/function.failed",
        "id": "failure-1",
        "ts": 0,
        "data": {"error": failed.json(), "event": TICKET_CREATED, "function_id": "helpgate-doomed", "run_id": "run-6"},
    }

    response = await execute(dev.api, "helpgate-doomed-failure", request_body(event, run_id="run-7"))

    assert response.status_code == 200
    original = Event(id="outbox-1", name="ticket/created", data={"ticket_id": "T-1"})
    assert dev.record.failures == [(Context(event=original, run_id="run-6"), "PermanentError: ticket vanished")]


async def test_sync_registers_trigger_retries_cancel_and_concurrency(dev: Served, fake_inngest: FakeInngest) -> None:
    response = await dev.api.put(SERVE_PATH)

    assert response.status_code == 200, response.text
    [registration] = fake_inngest.registrations
    functions = {function["id"]: function for function in registration["functions"]}
    main = functions["helpgate-three-steps"]
    assert main["name"] == "Three steps"
    assert main["triggers"] == [{"event": "ticket/created"}]
    assert main["steps"]["step"]["retries"] == {"attempts": 5}
    assert main["cancel"] == [{"event": "ticket/closed", "if": "event.data.ticket_id == async.data.ticket_id"}]
    assert main["concurrency"] == [{"limit": 2}]
    assert main["steps"]["step"]["runtime"]["url"].endswith(f"{SERVE_PATH}?fnId=helpgate-three-steps&stepId=step")
    failure = functions["helpgate-doomed-failure"]
    assert failure["triggers"] == [
        {"event": "inngest/function.failed", "expression": "event.data.function_id == 'helpgate-doomed'"}
    ]
    assert "helpgate-nap-failure" not in functions


async def test_production_runs_a_correctly_signed_request(prod: Served) -> None:
    body = request_body(TICKET_CREATED, run_id="run-8")

    response = await execute(prod.api, "helpgate-refuses", body, signed(body))

    assert response.status_code == 500
    assert response.json()["code"] == "non_retriable_error"
    assert "x-inngest-signature" in response.headers  # the SDK signs its answer for the server


@pytest.mark.parametrize("signature", ["none", "wrong"])
async def test_production_refuses_unsigned_or_wrongly_signed_requests(prod: Served, signature: str) -> None:
    # The timestamp is taken now, not when the module is collected (a long run would make it stale).
    headers = {"X-Inngest-Signature": f"t={int(time.time())}&s={'0' * 64}"} if signature == "wrong" else {}
    response = await execute(prod.api, "helpgate-three-steps", request_body(TICKET_CREATED, run_id="run-9"), headers)

    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert prod.record.contexts == []


@pytest.mark.parametrize("age", [timedelta(days=30), timedelta(minutes=6), -timedelta(minutes=6)])
async def test_production_refuses_a_signature_too_old_or_from_the_future(prod: Served, age: timedelta) -> None:
    body = request_body(TICKET_CREATED, run_id="run-10")

    response = await execute(prod.api, "helpgate-three-steps", body, signed(body, at=time.time() - age.total_seconds()))

    assert (response.status_code, response.json()) == (401, {"detail": "stale signature"})
    assert prod.record.contexts == []


async def test_production_refuses_a_signature_without_timestamp(prod: Served) -> None:
    body = request_body(TICKET_CREATED, run_id="run-11")
    signature = signed(body)["X-Inngest-Signature"].split("&")[1]  # the SDK would accept `s=` alone

    response = await execute(prod.api, "helpgate-three-steps", body, {"X-Inngest-Signature": signature})

    assert (response.status_code, response.json()) == (401, {"detail": "stale signature"})


async def test_production_refuses_a_stale_signed_sync_and_an_unsigned_one(
    prod: Served, fake_inngest: FakeInngest
) -> None:
    stale = await prod.api.put(SERVE_PATH, headers=signed(b"", at=time.time() - 86400))
    unsigned = await prod.api.put(SERVE_PATH)

    assert (stale.status_code, stale.json()) == (401, {"detail": "stale signature"})
    assert unsigned.status_code == 401
    assert fake_inngest.registrations == []


async def test_signature_check_leaves_other_routes_alone(prod: Served) -> None:
    body = b"\x00raw bytes, not JSON" * 1000

    response = await prod.api.post("/echo", content=body, headers=signed(b"{}", at=time.time() - 86400 * 30))

    assert response.status_code == 200
    assert response.content == body


def test_production_client_needs_its_keys() -> None:
    with pytest.raises(ConfigurationError, match="INNGEST_SIGNING_KEY"):
        make_client(is_production=True, signing_key=None, event_key=EVENT_KEY, base_url=None)


def test_cancel_match_must_be_a_field_path() -> None:
    client = make_client(is_production=False, signing_key=None, event_key=None, base_url="http://127.0.0.1:1")

    async def handler(ctx: Context, step: Step) -> Json:
        return None

    workflow = Workflow(id="w", trigger="t", handler=handler, cancel=(Cancel("x", "id || true"),))
    with pytest.raises(ConfigurationError, match="cancel match"):
        to_inngest(client, workflow)


def test_serve_refuses_two_workflows_with_one_id() -> None:
    client = make_client(is_production=False, signing_key=None, event_key=None, base_url="http://127.0.0.1:1")
    twice = workflows(Recorder())[:1] * 2

    with pytest.raises(ConfigurationError, match="three-steps"):
        serve(FastAPI(), client, twice)


async def test_sender_sends_the_outbox_id_as_the_event_id(fake_inngest: FakeInngest) -> None:
    client = make_client(is_production=False, signing_key=None, event_key=EVENT_KEY, base_url=fake_inngest.base_url)

    await InngestSender(client).send(Event(id="665f1c2e9b1e8a0001a1b2c3", name="ticket/created", data={"n": 1}))

    [(key, [event])] = fake_inngest.events
    assert key == EVENT_KEY
    assert (event["id"], event["name"], event["data"]) == ("665f1c2e9b1e8a0001a1b2c3", "ticket/created", {"n": 1})


async def test_sender_raises_when_inngest_refuses(fake_inngest: FakeInngest) -> None:
    fake_inngest.event_status = 401
    client = make_client(is_production=False, signing_key=None, event_key=EVENT_KEY, base_url=fake_inngest.base_url)

    with pytest.raises(EventNotSent, match="refused"):
        await InngestSender(client).send(Event(id="e-1", name="ticket/created"))


async def test_sender_gives_up_within_its_timeout_when_inngest_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_client(
        is_production=False, signing_key=None, event_key=EVENT_KEY, base_url=f"http://127.0.0.1:{port}"
    )
    try:
        started = time.monotonic()
        with pytest.raises(EventNotSent, match=r"within 0\.5s"):
            await InngestSender(client, timeout=0.5).send(Event(id="e-2", name="ticket/created"))
        assert time.monotonic() - started < 3
    finally:
        server.close()
        server.close_clients()
        await server.wait_closed()
