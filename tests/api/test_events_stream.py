"""GET /api/events over real HTTP against a running gateway: who sees which event, resuming with
Last-Event-ID, events stored by another instance, the per-account bound, and the ways a stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId

from helpgate.accounts import users
from helpgate.core import db
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import OutboxEvent, Role
from helpgate.outbox import events
from tests.conftest import login, make_user
from tests.mail import make_mail, send

FAST = {"events_poll_seconds": 0.3, "events_heartbeat_seconds": 0.5, "events_recheck_seconds": 0.3}
AGENT, ADMIN, CUSTOMER, OTHER = "agent@example.com", "admin@example.com", "jane@example.org", "bob@example.org"
EVENT_ID = r"^[0-9a-f]{24}$"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return FAST


@dataclass(frozen=True)
class Sse:
    event: str | None
    data: Any
    id: str | None


class EventReader:
    """A server-sent events client on one streaming response: events as they come, comments and `retry:`."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.comments: list[str] = []
        self.retry: int | None = None
        self._queue: asyncio.Queue[Sse | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if not line:
                    if fields:
                        data = json.loads(fields["data"]) if "data" in fields else None
                        await self._queue.put(Sse(fields.get("event"), data, fields.get("id")))
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "retry":
                        self.retry = int(value)
                    else:
                        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        finally:
            await self._queue.put(None)

    async def next(self, timeout: float = 10.0) -> Sse:
        item = await asyncio.wait_for(self._queue.get(), timeout)
        assert item is not None, "the stream ended"
        return item

    async def until(self, name: str, timeout: float = 10.0) -> tuple[Sse, list[Sse]]:
        """The next `name` event, and those that came before it."""
        before: list[Sse] = []
        deadline = time.monotonic() + timeout
        while (item := await self.next(deadline - time.monotonic())).event != name:
            before.append(item)
        return item, before

    async def rest(self, timeout: float = 10.0) -> list[Sse]:
        """Every event until the server ends the stream."""
        items: list[Sse] = []
        deadline = time.monotonic() + timeout
        while (item := await asyncio.wait_for(self._queue.get(), deadline - time.monotonic())) is not None:
            items.append(item)
        return items

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task


@contextlib.asynccontextmanager
async def stream(api: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[EventReader]:
    """An open stream; by the time it is yielded, every event stored afterwards reaches it."""
    async with api.stream("GET", "/api/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        try:
            yield reader
        finally:
            await reader.close()


async def _open(api: httpx.AsyncClient, headers: dict[str, str], subject: str = "Printer on fire") -> int:
    response = await api.post("/api/tickets", json={"subject": subject, "text": "Help."}, headers=headers)
    assert response.status_code == 201, response.text
    number: int = response.json()["number"]
    return number


ROLES = {AGENT: Role.AGENT, ADMIN: Role.ADMIN, CUSTOMER: Role.CUSTOMER, OTHER: Role.CUSTOMER}


async def _people(*emails: str) -> None:
    for email in emails:
        await make_user(email, ROLES[email])


async def test_agent_gets_ticket_created_when_mail_arrives(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, CUSTOMER)
    async with stream(api, await login(api, AGENT)) as agent:
        assert gateway.smtp is not None
        await send(gateway.smtp.port, make_mail(sender=CUSTOMER, subject="Printer on fire"), sender=CUSTOMER)

        created = await agent.next()

    assert created.event == "ticket/created"
    assert created.id is not None and len(created.id) == 24 and int(created.id, 16) >= 0
    assert created.data["name"] == "ticket/created" and created.data["ticket_number"] == 1
    assert created.data["data"] == {"automatic": False}
    assert set(created.data) == {"name", "ticket_number", "data", "at"}
    assert agent.retry == 3000 and agent.comments[0] == "helpgate events"


async def test_agent_gets_ticket_opened_over_the_api(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, CUSTOMER)
    async with stream(api, await login(api, AGENT)) as agent:
        number = await _open(api, await login(api, CUSTOMER))

        created = await agent.next()

    assert (created.event, created.data["ticket_number"]) == ("ticket/created", number)


async def test_customer_sees_only_their_tickets_and_no_notes(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, CUSTOMER, OTHER)
    staff, jane, bob = await login(api, AGENT), await login(api, CUSTOMER), await login(api, OTHER)
    async with stream(api, staff) as agent, stream(api, jane) as customer:
        theirs = await _open(api, bob, "Bob's problem")
        mine = await _open(api, jane, "Jane's problem")
        note = await api.post(f"/api/tickets/{mine}/notes", json={"text": "Customer is grumpy."}, headers=staff)
        assert note.status_code == 201
        patch = await api.patch(f"/api/tickets/{mine}", json={"priority": "high"}, headers=staff)
        assert patch.status_code == 200
        reply = await api.post(f"/api/tickets/{mine}/replies", json={"text": "On it."}, headers=staff)
        assert reply.status_code == 201

        replied, before = await customer.until("ticket/replied")
        seen_by_agent = [await agent.next() for _ in range(5)]

    assert [(item.event, item.data["ticket_number"]) for item in before] == [("ticket/created", mine)]
    assert replied.data["ticket_number"] == mine and replied.data["data"] == {"message_id": reply.json()["id"]}
    assert [(item.event, item.data["ticket_number"]) for item in seen_by_agent] == [
        ("ticket/created", theirs),
        ("ticket/created", mine),
        ("ticket/note.added", mine),
        ("ticket/updated", mine),
        ("ticket/replied", mine),
    ]
    assert set(seen_by_agent[2].data["data"]) == {"message_id", "author_id"}
    assert seen_by_agent[3].data["data"]["fields"] == ["priority"]
    assert "author_id" in seen_by_agent[4].data["data"]


async def test_status_change_reaches_the_customer_without_staff_fields(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    await _people(AGENT, CUSTOMER)
    staff, jane = await login(api, AGENT), await login(api, CUSTOMER)
    number = await _open(api, jane)
    async with stream(api, staff) as agent, stream(api, jane) as customer:
        body = {"status": "solved", "priority": "low", "category": "hardware"}
        assert (await api.patch(f"/api/tickets/{number}", json=body, headers=staff)).status_code == 200

        for_customer, for_agent = await customer.next(), await agent.next()

    assert for_customer.event == for_agent.event == "ticket/updated"
    assert for_customer.data["data"] == {"status": "solved"}
    agent_user = await users.get_by_email(AGENT)
    assert agent_user is not None
    assert for_agent.data["data"] == {
        "fields": ["status", "priority", "category"],
        "status": "solved",
        "priority": "low",
        "category": "hardware",
        "by": str(agent_user.id),
    }


async def test_user_created_goes_to_admins_only(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, ADMIN, CUSTOMER)
    admin_headers = await login(api, ADMIN)
    async with stream(api, admin_headers) as admin, stream(api, await login(api, AGENT)) as agent:
        body = {"email": "new-agent@example.com", "role": "agent"}
        assert (await api.post("/api/users", json=body, headers=admin_headers)).status_code == 201
        number = await _open(api, await login(api, CUSTOMER))

        for_admin = [await admin.next(), await admin.next()]
        for_agent = await agent.next()

    assert [item.event for item in for_admin] == ["user/created", "ticket/created"]
    assert for_admin[0].data["ticket_number"] is None
    assert set(for_admin[0].data["data"]) == {"user_id", "role", "source"}
    assert (for_agent.event, for_agent.data["ticket_number"]) == ("ticket/created", number)


async def test_only_known_events_and_fields_are_streamed(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(ADMIN)
    async with stream(api, await login(api, ADMIN)) as admin:
        await events.emit("sla/internal-step", key="workflow 1", data={"ticket_id": "x", "secret": "s3cret"})
        data = {"ticket_id": str(ObjectId()), "ticket_number": 9, "automatic": True, "raw": "To: someone"}
        await events.emit(events.TICKET_CREATED, key="forged 1", data=data)

        item = await admin.next()

    assert item.event == "ticket/created" and item.data["data"] == {"automatic": True}


async def test_last_event_id_resumes_with_what_was_missed(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, CUSTOMER)
    staff, jane = await login(api, AGENT), await login(api, CUSTOMER)
    async with stream(api, staff) as agent:
        first = await _open(api, jane, "First")
        seen = await agent.next()
    assert seen.data["ticket_number"] == first and seen.id is not None
    missed = [await _open(api, jane, "Second"), await _open(api, jane, "Third")]

    async with stream(api, {**staff, "Last-Event-ID": seen.id}) as resumed:
        caught_up = [await resumed.next(), await resumed.next()]
        later = await _open(api, jane, "Fourth")
        live = await resumed.next()

    assert [item.data["ticket_number"] for item in caught_up] == missed
    assert live.data["ticket_number"] == later


async def test_a_bad_last_event_id_is_422(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT)
    headers = {**await login(api, AGENT), "Last-Event-ID": "not-an-id"}

    response = await api.get("/api/events", headers=headers)

    assert response.status_code == 422 and "Last-Event-ID" in response.json()["detail"]


async def test_events_stored_by_another_instance_arrive_also_out_of_id_order(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    """Stored without this process's wake-up (as another instance would), and with an id smaller than one
    already sent (another instance minting ids in the same second): the poll and the re-read window find both."""
    await _people(AGENT)
    async with stream(api, await login(api, AGENT)) as agent:
        newer = await OutboxEvent(
            name=events.TICKET_CREATED, key="elsewhere 1", data={"ticket_number": 101, "automatic": False}
        ).insert()
        assert (await agent.next(timeout=5)).id == str(newer.id)
        assert newer.id is not None
        older_id = ObjectId.from_datetime(newer.id.generation_time - timedelta(seconds=1))
        await OutboxEvent(
            id=older_id, name=events.TICKET_CREATED, key="elsewhere 2", data={"ticket_number": 102, "automatic": False}
        ).insert()

        late = await agent.next(timeout=5)

    assert (late.id, late.data["ticket_number"]) == (str(older_id), 102)


async def test_no_token_is_401(gateway: Gateway, api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await api.get("/api/events", headers=headers)

        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("change", [{"active": False}, {"role": "customer"}])
async def test_deactivated_or_demoted_user_loses_the_stream(
    gateway: Gateway, api: httpx.AsyncClient, change: dict[str, object]
) -> None:
    await _people(AGENT, ADMIN)
    admin = await login(api, ADMIN)
    agent = await users.get_by_email(AGENT)
    assert agent is not None
    async with stream(api, await login(api, AGENT)) as reader:
        assert (await api.patch(f"/api/users/{agent.id}", json=change, headers=admin)).status_code == 200

        rest = await reader.rest(timeout=5)

    assert [item.event for item in rest] == ["stream/closed"]
    assert "reconnect" in rest[0].data["reason"]


async def test_heartbeats_keep_a_quiet_stream_open(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT)
    async with stream(api, await login(api, AGENT)) as agent:
        await asyncio.sleep(1.3)

    assert agent.comments.count("heartbeat") >= 2


@pytest.mark.parametrize("settings_overrides", [{**FAST, "events_streams_per_user": 2}])
async def test_streams_per_account_are_bounded(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _people(AGENT, ADMIN)
    headers = await login(api, AGENT)
    async with stream(api, headers), stream(api, headers):
        refused = await api.get("/api/events", headers=headers)
        async with stream(api, await login(api, ADMIN)):  # another account has its own bound
            pass

    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("at most 2 event streams per account")
    async with stream(api, headers):  # the places were given back when the streams closed
        pass


async def test_stopping_the_gateway_ends_streams_at_once(settings: Settings) -> None:
    running = Gateway(settings.model_copy(update={"shutdown_grace_seconds": 10.0}))
    await running.start()
    stopped = False
    try:
        await make_user(AGENT, Role.AGENT)
        base_url = f"http://127.0.0.1:{running.http_port}"
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as api,
            stream(api, await login(api, AGENT)) as agent,
        ):
            started = time.monotonic()
            await running.stop()
            took, stopped = time.monotonic() - started, True
            rest = await agent.rest(timeout=5)
    finally:
        if not stopped:
            await running.stop()
        client = db.make_client(settings.mongodb_uri or "")
        await client.drop_database(settings.mongodb_database)
        await client.close()

    assert [(item.event, item.data) for item in rest] == [("stream/closed", {"reason": "the server is stopping"})]
    assert took < 3, f"stop took {took:.1f}s with a stream open"


async def test_openapi_documents_the_stream(gateway: Gateway, api: httpx.AsyncClient) -> None:
    operation = (await api.get("/openapi.json")).json()["paths"]["/api/events"]["get"]

    assert {"200", "401", "429"} <= operation["responses"].keys()
    example = operation["responses"]["200"]["content"]["text/event-stream"]["example"]
    assert "event: ticket/created" in example and "id: " in example and "retry: 3000" in example
    assert operation["security"] == [{"OAuth2PasswordBearer": []}]
    assert any(parameter["name"] == "Last-Event-ID" for parameter in operation["parameters"])
