"""Recording triage on the store: what an agent set meanwhile is kept, and the queue's counters follow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.accounts import users
from helpgate.models import Direction, Priority, Ticket, TriageRecord
from helpgate.tickets import counters, routing, tickets
from helpgate.tickets.tickets import NewMessage

Store = AsyncMongoClient[dict[str, Any]]
TARGETS = routing.Targets(high=timedelta(hours=1), medium=timedelta(hours=8), low=timedelta(days=2))


async def _opened() -> Ticket:
    customer = await users.get_or_create_customer(email="c@example.org")
    first = NewMessage(dedupe_key="k", direction=Direction.INBOUND, from_email="c@example.org", text="printer")
    return await tickets.open_ticket(requester=customer, subject="Printer", mailbox=None, first=first)


async def _record(ticket: Ticket, seen: routing.Seen | None) -> routing.Seen | None:
    assert ticket.id is not None
    return await routing.record_triage(
        ticket.id,
        priority=Priority.LOW,
        category="hardware",
        skills=["printers"],
        record=TriageRecord(source="heuristic"),
        targets=TARGETS,
        seen=seen,
    )


async def test_triage_read_before_an_agent_set_the_priority_keeps_the_agents_priority(store: Store) -> None:
    ticket = await _opened()
    seen = routing.Seen.from_json(routing.Seen.of(ticket).as_json())  # as the classify step memoised it
    assert ticket.id is not None
    await tickets.apply_update(ticket.id, {"$set": {"priority": Priority.HIGH}})  # the agent, meanwhile

    triaged = await _record(ticket, seen)

    stored = await Ticket.get(ticket.id)
    assert triaged is not None and stored is not None
    assert stored.priority is Priority.HIGH and triaged.priority is Priority.HIGH
    assert stored.category == "hardware" and stored.skills == ["printers"]
    assert stored.response_due_at == stored.created_at + TARGETS.high
    assert await counters.current(counters.ticket_bucket("new", "high")) == 1
    assert await counters.current(counters.ticket_bucket("new", "low")) == 0


async def test_triage_of_an_untouched_ticket_sets_priority_category_and_target(store: Store) -> None:
    ticket = await _opened()

    triaged = await _record(ticket, routing.Seen.of(ticket))

    assert ticket.id is not None
    stored = await Ticket.get(ticket.id)
    assert triaged is not None and stored is not None
    assert stored.priority is Priority.LOW and stored.category == "hardware"
    assert stored.response_due_at == stored.created_at + TARGETS.low
    assert await counters.current(counters.ticket_bucket("new", "low")) == 1
