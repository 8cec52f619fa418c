"""Ticket numbering, idempotent opening, visibility."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from helpgate.accounts import users
from helpgate.core.errors import NotFound
from helpgate.models import Direction, MessageKind, Role, Ticket, TicketStatus
from helpgate.tickets import counters, tickets
from helpgate.tickets.tickets import NewMessage

Store = AsyncMongoClient[dict[str, Any]]


def _first(key: str) -> NewMessage:
    return NewMessage(dedupe_key=key, direction=Direction.INBOUND, from_email="c@example.org", text="hi")


async def test_concurrent_openings_get_distinct_sequential_numbers(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    opened = await asyncio.gather(
        *(
            tickets.open_ticket(requester=customer, subject=f"s{i}", mailbox=None, first=_first(f"k{i}"))
            for i in range(20)
        )
    )
    assert sorted(ticket.number for ticket in opened) == list(range(1, 21))
    assert await counters.current(counters.TICKETS_TOTAL) == 20


async def test_opening_twice_with_same_first_message_is_one_ticket(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    one = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("same"))
    two = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("same"))
    assert one.id == two.id
    assert await Ticket.find_all().count() == 1
    stored = await Ticket.get(one.id)
    assert stored is not None and stored.message_count == 1


async def test_opening_again_after_a_crash_counts_the_ticket_once(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    one = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("same"))
    two = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("same"))
    assert two.number == one.number == 1
    assert await counters.values([counters.TICKETS_TOTAL, counters.ticket_bucket("new", None)]) == {
        counters.TICKETS_TOTAL: 1,
        counters.ticket_bucket("new", None): 1,
    }
    three = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("other"))
    assert three.number == 3  # the retry's number is not used again


async def test_customer_cannot_read_others_ticket_or_notes(store: Store) -> None:
    alice = await users.get_or_create_customer(email="alice@example.org")
    bob = await users.get_or_create_customer(email="bob@example.org")
    agent = await users.create(actor=None, email="agent@example.com", role=Role.AGENT, password="agent-password")
    ticket = await tickets.open_ticket(requester=alice, subject="s", mailbox=None, first=_first("a"))
    note = NewMessage(dedupe_key="note-1", direction=Direction.OUTBOUND, kind=MessageKind.NOTE, from_email=agent.email)
    await tickets.add_message(ticket=ticket, message=note)

    with pytest.raises(NotFound):
        await tickets.get_ticket(viewer=bob, number=ticket.number)
    _, alice_sees = await tickets.get_ticket(viewer=alice, number=ticket.number)
    _, agent_sees = await tickets.get_ticket(viewer=agent, number=ticket.number)
    assert [m.kind for m in alice_sees] == [MessageKind.EMAIL]
    assert [m.kind for m in agent_sees] == [MessageKind.EMAIL, MessageKind.NOTE]


async def test_customer_from_mail_is_created_once(store: Store) -> None:
    created = await asyncio.gather(*(users.get_or_create_customer(email="Same@Example.org") for _ in range(5)))
    assert len({user.id for user in created}) == 1
    assert created[0].email == "same@example.org" and created[0].role is Role.CUSTOMER


async def test_customer_mail_reopens_pending_and_solved_tickets_only(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    ticket = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("first"))
    outcomes = []
    for index, status in enumerate((TicketStatus.PENDING, TicketStatus.SOLVED, TicketStatus.CLOSED, TicketStatus.NEW)):
        await Ticket.get_pymongo_collection().update_one({"_id": ticket.id}, {"$set": {"status": status}})
        ticket.status = status
        await tickets.add_message(ticket=ticket, message=_first(f"reply-{index}"))
        stored = await Ticket.get(ticket.id)
        assert stored is not None
        outcomes.append(stored.status)
    assert outcomes == [TicketStatus.OPEN, TicketStatus.OPEN, TicketStatus.CLOSED, TicketStatus.NEW]


async def test_notes_are_not_counted_as_messages(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    ticket = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=_first("first"))
    note = NewMessage(dedupe_key="n", direction=Direction.INTERNAL, kind=MessageKind.NOTE, from_email="a@x")
    await tickets.add_message(ticket=ticket, message=note)
    stored = await Ticket.get(ticket.id)
    assert stored is not None and stored.message_count == 1


async def test_counters_are_built_once_for_tickets_that_predate_them(store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    for index in range(3):
        await tickets.open_ticket(requester=customer, subject=f"s{index}", mailbox=None, first=_first(f"k{index}"))
    await counters.reset({counters.ticket_bucket("new", None): 0, counters.TICKETS_TOTAL: 0})  # an older store

    await tickets.ensure_counters()
    built = await counters.current(counters.ticket_bucket("new", None))
    await counters.reset({counters.ticket_bucket("new", None): 7})
    await tickets.ensure_counters()  # once only: a second start does not recount

    assert built == 3 and await counters.current(counters.TICKETS_TOTAL) == 3
    assert await counters.current(counters.ticket_bucket("new", None)) == 7
