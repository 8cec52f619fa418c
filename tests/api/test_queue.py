"""The ticket queue over real HTTP: filters, orders, pages, sidebar counts, tickets opened and answered by customers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.models import Direction, Message, OutboundMail, OutboxEvent, Priority, Role, Ticket, TicketStatus
from helpgate.tickets import counters, tickets
from tests.cli import run_cli
from tests.conftest import login, make_user

AGENT, OTHER_AGENT = "agent@example.com", "agent2@example.com"
ALICE, BOB = "alice@example.org", "bob@example.org"
Headers = dict[str, str]


async def _people(api: httpx.AsyncClient) -> tuple[Headers, Headers, Headers]:
    """An agent, and two customers with accounts: (agent, alice, bob) headers."""
    await make_user(AGENT, Role.AGENT)
    await make_user(ALICE, Role.CUSTOMER)
    await make_user(BOB, Role.CUSTOMER)
    return await login(api, AGENT), await login(api, ALICE), await login(api, BOB)


async def _open(api: httpx.AsyncClient, headers: Headers, subject: str, text: str = "Please help.") -> dict[str, Any]:
    response = await api.post("/api/tickets", json={"subject": subject, "text": text}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _list(api: httpx.AsyncClient, headers: Headers, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/tickets", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _numbers(api: httpx.AsyncClient, headers: Headers, **params: Any) -> list[int]:
    return [item["number"] for item in (await _list(api, headers, **params))["items"]]


async def _patch(api: httpx.AsyncClient, headers: Headers, number: int, **changes: Any) -> None:
    response = await api.patch(f"/api/tickets/{number}", json=changes, headers=headers)
    assert response.status_code == 200, response.text


async def _stats(api: httpx.AsyncClient, headers: Headers) -> dict[str, Any]:
    response = await api.get("/api/tickets/stats", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- filters ---------------------------------------------------------------------------------------------


async def test_status_filter_repeats_and_its_total_comes_from_counters(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    agent, alice, _bob = await _people(api)
    for index in range(4):
        await _open(api, alice, f"Ticket {index + 1}")
    await _patch(api, agent, 1, status="pending")
    await _patch(api, agent, 2, status="solved")
    await _patch(api, agent, 3, status="open")

    assert await _numbers(api, agent, status="new") == [4]
    both = await _list(api, agent, status=["pending", "solved"])
    assert [item["number"] for item in both["items"]] == [2, 1] and both["total"] == 2
    assert (await _list(api, agent, status=["closed"]))["total"] == 0


async def test_priority_assignee_and_category_filters(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    other = await make_user(OTHER_AGENT, Role.AGENT)
    for index in range(4):
        await _open(api, alice, f"Ticket {index + 1}")
    await _patch(api, agent, 1, priority="high", assignee=AGENT, category="billing")
    await _patch(api, agent, 2, priority="low", assignee=OTHER_AGENT, category="hardware")
    await _patch(api, agent, 3, priority="high")

    assert await _numbers(api, agent, priority="high") == [3, 1]
    assert await _numbers(api, agent, priority=["high", "low"]) == [3, 2, 1]
    assert await _numbers(api, agent, assignee="me") == [1]
    assert await _numbers(api, agent, assignee=str(other.id)) == [2]
    assert await _numbers(api, agent, assignee="none") == [4, 3]
    assert await _numbers(api, agent, category="billing") == [1]
    combined = await _list(api, agent, priority="high", assignee="none")
    assert [item["number"] for item in combined["items"]] == [3] and combined["total"] == 1


async def test_requester_filter_takes_an_email_in_any_case(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, bob = await _people(api)
    await _open(api, alice, "From Alice")
    await _open(api, bob, "From Bob")

    assert await _numbers(api, agent, requester="Bob@Example.org") == [2]
    assert await _numbers(api, agent, requester="nobody@example.org") == []


async def test_q_searches_subject_and_opening_message_in_any_case(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "Printer on FIRE", "Room 4.")
    await _open(api, alice, "Invoice", "The printer ate my invoice.")
    await _open(api, alice, "Login", "Cannot log in.")

    assert await _numbers(api, agent, q="printer") == [2, 1]
    assert await _numbers(api, agent, q="fire") == [1]
    assert await _numbers(api, agent, q="ATE MY") == [2]
    found = await _list(api, agent, q="printer")
    assert found["total"] == 2


async def test_q_matches_regex_metacharacters_literally(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "Price (USD) is wrong", "Charged twice.")
    await _open(api, alice, "Anything goes", "Nothing special here.")
    await _open(api, alice, "Glob", "The pattern a.*b is in my config [x]")

    assert await _numbers(api, agent, q="(") == [1]
    assert await _numbers(api, agent, q="(USD)") == [1]
    assert await _numbers(api, agent, q=".*") == [3]
    assert await _numbers(api, agent, q="[x]") == [3]
    assert await _numbers(api, agent, q="a.*b") == [3]
    assert await _numbers(api, agent, q="^Anything") == []
    assert await _numbers(api, agent, q="\\") == []


async def test_q_sees_only_the_opening_message_never_notes(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "Help", "First words.")
    note = await api.post("/api/tickets/1/notes", json={"text": "secret codeword"}, headers=agent)
    assert note.status_code == 201

    assert await _numbers(api, agent, q="codeword") == []
    assert await _numbers(api, alice, q="codeword") == []
    assert await _numbers(api, alice, q="first words") == [1]


async def test_created_after_and_before(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    for index in range(3):
        await _open(api, alice, f"Ticket {index + 1}")
    # As stored (milliseconds), not as the POST answered (microseconds, before the store rounded them).
    created = [item["created_at"] for item in (await _list(api, agent, sort="created_at"))["items"]]

    assert await _numbers(api, agent, created_after=created[1]) == [3, 2]
    assert await _numbers(api, agent, created_before=created[1]) == [1]
    assert await _numbers(api, agent, created_after=created[1], created_before=created[2]) == [2]
    assert await _numbers(api, agent, created_after="2000-01-01T00:00:00") == [3, 2, 1]  # no offset: UTC


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "status=",
        "priority=urgent",
        "assignee=someone",
        "assignee=%7B%22%24ne%22%3A+null%7D",  # {"$ne": null}
        "assignee=0123456789abcdef0123456Z",
        "requester=not-an-email",
        "requester=%7B%22%24ne%22%3A+null%7D",
        "sort=number",
        "sort=-priority",
        "created_after=yesterday",
        "created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z",
        "page=0",
        "page_size=101",
        f"q={'x' * 201}",
        f"category={'x' * 65}",
    ],
)
async def test_invalid_filters_are_422_json(gateway: Gateway, api: httpx.AsyncClient, query: str) -> None:
    await make_user(AGENT, Role.AGENT)
    response = await api.get(f"/api/tickets?{query}", headers=await login(api, AGENT))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json") and "detail" in response.json()


async def test_blank_q_does_not_filter(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "One")
    assert await _numbers(api, agent, q="  ") == [1]


# --- orders and pages ------------------------------------------------------------------------------------


async def test_sort_orders(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    for index in range(5):
        await _open(api, alice, f"Ticket {index + 1}")
    await _patch(api, agent, 2, priority="low")
    await _patch(api, agent, 4, priority="high")
    await _patch(api, agent, 1, priority="high")
    await _patch(api, agent, 3, priority="medium")
    await _patch(api, agent, 2, category="billing")  # the most recently updated

    assert await _numbers(api, agent) == [5, 4, 3, 2, 1]
    assert await _numbers(api, agent, sort="-created_at") == [5, 4, 3, 2, 1]
    assert await _numbers(api, agent, sort="created_at") == [1, 2, 3, 4, 5]
    assert await _numbers(api, agent, sort="-updated_at") == [2, 3, 1, 4, 5]
    assert await _numbers(api, agent, sort="updated_at") == [5, 4, 1, 3, 2]
    assert await _numbers(api, agent, sort="priority") == [4, 1, 3, 2, 5]  # high (newest first), medium, low, none
    await _patch(api, agent, 4, priority=None)
    assert await _numbers(api, agent, sort="priority") == [1, 3, 2, 5, 4]


async def test_page_bounds(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    for index in range(3):
        await _open(api, alice, f"Ticket {index + 1}")

    widest = await _list(api, agent, page_size=100)
    beyond = await _list(api, agent, page=5, page_size=2)
    last = await _list(api, agent, page=2, page_size=2, sort="created_at")

    assert len(widest["items"]) == 3 and widest["page_size"] == 100 and widest["total"] == 3
    assert beyond["items"] == [] and beyond["total"] == 3 and beyond["page"] == 5
    assert [item["number"] for item in last["items"]] == [3]


# --- customers -------------------------------------------------------------------------------------------


async def test_customer_sees_only_own_tickets_with_filters(gateway: Gateway, api: httpx.AsyncClient) -> None:
    _agent, alice, bob = await _people(api)
    await _open(api, alice, "Alice printer")
    await _open(api, bob, "Bob printer")
    await _open(api, alice, "Alice login")

    mine = await _list(api, alice)
    searched = await _list(api, alice, q="printer")
    assert [item["number"] for item in mine["items"]] == [3, 1] and mine["total"] == 2
    assert [item["number"] for item in searched["items"]] == [1] and searched["total"] == 1
    assert await _numbers(api, alice, requester=BOB) == []
    assert await _numbers(api, bob, status="new", sort="created_at") == [2]
    assert (await api.get("/api/tickets/1", headers=bob)).status_code == 404


async def test_customer_opens_ticket_like_mail_does(gateway: Gateway, api: httpx.AsyncClient) -> None:
    _agent, alice, _bob = await _people(api)

    ticket = await _open(api, alice, "Printer\r\nBcc: victim@example.net", "It is on fire.")

    assert ticket["number"] == 1 and ticket["status"] == "new" and ticket["message_count"] == 1
    assert ticket["subject"] == "Printer Bcc: victim@example.net"  # one line: never a header of its own
    assert ticket["requester"] == {"email": ALICE, "name": ""}
    [message] = await Message.find({"ticket_number": 1}).to_list()
    assert message.direction is Direction.INBOUND and message.from_email == ALICE and message.text == "It is on fire."
    [created] = await OutboxEvent.find({"name": "ticket/created"}).to_list()
    assert created.data["ticket_number"] == 1 and created.data["automatic"] is False
    detail = (await api.get("/api/tickets/1", headers=alice)).json()
    assert [m["text"] for m in detail["messages"]] == ["It is on fire."]


async def test_staff_open_a_ticket_for_a_customer(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)

    response = await api.post(
        "/api/tickets",
        json={"subject": "Phoned in", "text": "Caller says the VPN is down.", "requester": "New.Caller@Example.org"},
        headers=agent,
    )
    refused = await api.post("/api/tickets", json={"subject": "Spoof", "text": "x", "requester": BOB}, headers=alice)
    own = await api.post("/api/tickets", json={"subject": "Me", "text": "x", "requester": ALICE}, headers=alice)

    assert response.status_code == 201
    assert response.json()["requester"]["email"] == "new.caller@example.org"
    [message] = await Message.find({"ticket_number": 1}).to_list()
    assert message.from_email == "new.caller@example.org" and message.author_id is not None
    assert refused.status_code == 403 and refused.json()["detail"]
    assert own.status_code == 201 and own.json()["requester"]["email"] == ALICE


async def test_idempotency_key_opens_one_ticket(gateway: Gateway, api: httpx.AsyncClient) -> None:
    _agent, alice, bob = await _people(api)
    body = {"subject": "Once", "text": "Only once."}

    first = await api.post("/api/tickets", json=body, headers={**alice, "Idempotency-Key": "k-1"})
    again = await api.post("/api/tickets", json=body, headers={**alice, "Idempotency-Key": "k-1"})
    other = await api.post("/api/tickets", json=body, headers={**bob, "Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == other.status_code == 201
    assert first.json()["number"] == again.json()["number"] == 1 and other.json()["number"] == 2
    assert await Ticket.find_all().count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "", "text": "x"},
        {"subject": "  ", "text": "x"},
        {"subject": "ok", "text": ""},
        {"subject": "bell\x07", "text": "x"},
        {"subject": "ok", "text": "x", "requester": "not an email"},
        {"subject": {"$ne": None}, "text": "x"},
        {"subject": "ok", "text": "x", "status": "solved"},
    ],
)
async def test_bad_new_tickets_are_422(gateway: Gateway, api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await make_user(ALICE, Role.CUSTOMER)
    response = await api.post("/api/tickets", json=body, headers=await login(api, ALICE))
    assert response.status_code == 422, response.text
    assert await Ticket.find_all().count() == 0


@pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}])
async def test_customer_ticket_is_triaged_assigned_and_acknowledged(gateway: Gateway, api: httpx.AsyncClient) -> None:
    assert gateway.workflows is not None
    await make_user(AGENT, Role.AGENT)
    await make_user(ALICE, Role.CUSTOMER)

    await _open(api, await login(api, ALICE), "Printer jam", "The printer has a paper jam. Urgent please.")
    await gateway.workflows.wait_idle(30)

    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.triage is not None and ticket.triage.source == "heuristic"
    assert ticket.priority is not None and ticket.assignee is not None and ticket.assignee.email == AGENT
    acknowledgements = await OutboundMail.find({"template": "ticket_acknowledgement", "to": ALICE}).to_list()
    assert len(acknowledgements) == 1 and acknowledgements[0].ticket_number == 1


async def test_requester_answers_and_reopens_their_ticket(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, bob = await _people(api)
    await _open(api, alice, "Help")
    reply = await api.post("/api/tickets/1/replies", json={"text": "Try turning it off."}, headers=agent)
    assert reply.status_code == 201

    answer = await api.post("/api/tickets/1/messages", json={"text": "Still broken."}, headers=alice)

    assert answer.status_code == 201
    assert answer.json()["direction"] == "inbound" and answer.json()["from"]["email"] == ALICE
    detail = (await api.get("/api/tickets/1", headers=alice)).json()
    assert detail["status"] == "open" and detail["message_count"] == 3
    assert [m["text"] for m in detail["messages"]][-1] == "Still broken."
    received = await OutboxEvent.find({"name": "ticket/message.received"}).to_list()
    assert [event.data["ticket_number"] for event in received] == [1]
    assert (await api.post("/api/tickets/1/messages", json={"text": "x"}, headers=bob)).status_code == 404
    assert (await api.post("/api/tickets/1/messages", json={"text": "x"}, headers=agent)).status_code == 403
    assert (await api.post("/api/tickets/9/messages", json={"text": "x"}, headers=alice)).status_code == 404


async def test_requester_answer_with_idempotency_key_is_stored_once(gateway: Gateway, api: httpx.AsyncClient) -> None:
    _agent, alice, _bob = await _people(api)
    await _open(api, alice, "Help")
    headers = {**alice, "Idempotency-Key": "answer-1"}

    first = await api.post("/api/tickets/1/messages", json={"text": "More."}, headers=headers)
    again = await api.post("/api/tickets/1/messages", json={"text": "More."}, headers=headers)

    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert await Message.find({"ticket_number": 1}).count() == 2


# --- the sidebar -----------------------------------------------------------------------------------------


async def test_stats_count_statuses_priorities_and_mine(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await make_user(OTHER_AGENT, Role.AGENT)
    for index in range(6):
        await _open(api, alice, f"Ticket {index + 1}")
    await _patch(api, agent, 1, priority="high", assignee=AGENT, status="open")
    await _patch(api, agent, 2, priority="high", assignee=AGENT, status="solved")
    await _patch(api, agent, 3, priority="low", assignee=OTHER_AGENT)
    await _patch(api, agent, 4, status="closed", priority="medium")
    await api.post("/api/tickets/5/replies", json={"text": "Waiting for you."}, headers=agent)  # pending

    stats = await _stats(api, agent)

    assert stats["by_status"] == {"new": 2, "open": 1, "pending": 1, "solved": 1, "closed": 1}
    assert stats["open_by_priority"] == {"high": 1, "medium": 0, "low": 1, "none": 2}
    assert stats["open"] == 4 and stats["mine"] == 1
    assert (await _list(api, agent, status=["new", "pending"]))["total"] == 3


async def test_stats_follow_reopening_and_match_a_recount(gateway: Gateway, api: httpx.AsyncClient) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "One")
    await _open(api, alice, "Two")
    await _patch(api, agent, 1, status="solved", priority="medium")
    await api.post("/api/tickets/2/replies", json={"text": "Answer."}, headers=agent)  # pending
    await api.post("/api/tickets/1/messages", json={"text": "Not solved."}, headers=alice)  # reopens
    await api.post("/api/tickets/2/messages", json={"text": "Thanks, but no."}, headers=alice)  # reopens

    stats = await _stats(api, agent)

    assert stats["by_status"] == {"new": 0, "open": 2, "pending": 0, "solved": 0, "closed": 0}
    assert stats["open_by_priority"] == {"high": 0, "medium": 1, "low": 0, "none": 1}
    names = [counters.ticket_bucket(status, priority) for status in TicketStatus for priority in (*Priority, None)]
    kept = await counters.values([*names, counters.TICKETS_TOTAL])
    recounted = await tickets.recount()  # from the tickets themselves
    assert kept == {name: recounted[name] for name in kept}


async def test_helpgate_recount_repairs_counters_after_a_write_around_them(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    agent, alice, _bob = await _people(api)
    await _open(api, alice, "One")
    await Ticket.get_pymongo_collection().update_many({}, {"$set": {"status": "closed"}})  # bypasses the service

    stale = await _stats(api, agent)
    recount = await asyncio.to_thread(run_cli, "recount", settings=gateway.settings)
    assert recount.returncode == 0, recount.stderr
    assert "tickets:new:none: 1 -> 0" in recount.stdout and "tickets:closed:none: 0 -> 1" in recount.stdout
    assert "1 ticket(s) counted; 2 count(s) corrected" in recount.stdout
    fresh = await _stats(api, agent)

    assert stale["by_status"]["new"] == 1 and stale["by_status"]["closed"] == 0
    assert fresh["by_status"]["new"] == 0 and fresh["by_status"]["closed"] == 1 and fresh["open"] == 0


async def test_stats_are_for_staff(gateway: Gateway, api: httpx.AsyncClient) -> None:
    _agent, alice, _bob = await _people(api)
    response = await api.get("/api/tickets/stats", headers=alice)
    assert response.status_code == 403 and response.json()["detail"]
