"""Recording triage on the store: what an agent set meanwhile is kept, and the queue's counters follow. Choosing
the agent: ties on load go to whoever's newest open ticket was assigned longest ago, and nothing is written on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.accounts import users
from helpgate.models import Direction, Priority, Role, Ticket, TriageRecord, User
from helpgate.tickets import counters, routing, tickets
from helpgate.tickets.tickets import NewMessage

Store = AsyncMongoClient[dict[str, Any]]
TARGETS = routing.Targets(high=timedelta(hours=1), medium=timedelta(hours=8), low=timedelta(days=2))


async def _opened(key: str = "k") -> Ticket:
    customer = await users.get_or_create_customer(email="c@example.org")
    first = NewMessage(dedupe_key=key, direction=Direction.INBOUND, from_email="c@example.org", text="printer")
    return await tickets.open_ticket(requester=customer, subject="Printer", mailbox=None, first=first)


async def _agent(email: str) -> User:
    return await users.create(actor=None, email=email, role=Role.AGENT)


async def _assigned(agent: User, key: str, at: datetime | None) -> None:
    """An open ticket of `agent`'s, assigned at `at` (None: by a version that did not record the moment)."""
    ticket = await _opened(key)
    assignee = tickets.participant(agent).model_dump()
    await Ticket.get_pymongo_collection().update_one(
        {"_id": ticket.id}, {"$set": {"assignee": assignee, "assigned_at": at}}
    )


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


async def test_a_tie_on_load_goes_to_the_agent_whose_newest_open_ticket_was_assigned_longest_ago(store: Store) -> None:
    bob, ann = await _agent("bob@acme.test"), await _agent("ann@acme.test")  # bob listed first
    await _assigned(ann, "a1", datetime(2026, 12, 1, 9, tzinfo=UTC))
    await _assigned(bob, "b1", datetime(2026, 12, 1, 8, tzinfo=UTC))
    await _assigned(bob, "b2", datetime(2026, 12, 1, 10, tzinfo=UTC))  # bob's newest: after ann's
    await _assigned(ann, "a2", datetime(2026, 12, 1, 7, tzinfo=UTC))

    choice = await routing.choose([])

    assert choice.user is not None and choice.user.email == "ann@acme.test"
    assert choice.reason == "no skills needed; 2 open tickets"


async def test_a_tie_on_load_goes_first_to_an_agent_whose_open_tickets_record_no_assignment_moment(
    store: Store,
) -> None:
    ann, bob = await _agent("ann@acme.test"), await _agent("bob@acme.test")
    await _assigned(ann, "a1", datetime(2026, 12, 1, 9, tzinfo=UTC))
    await _assigned(bob, "b1", None)

    choice = await routing.choose([])

    assert choice.user is not None and choice.user.email == "bob@acme.test"


async def test_solved_tickets_count_neither_for_the_load_nor_for_the_tie(store: Store) -> None:
    bob, ann = await _agent("bob@acme.test"), await _agent("ann@acme.test")  # bob listed first
    await _assigned(ann, "a1", datetime(2026, 12, 1, 9, tzinfo=UTC))
    await _assigned(bob, "b1", datetime(2026, 12, 1, 8, tzinfo=UTC))
    await _assigned(bob, "b2", datetime(2026, 12, 1, 10, tzinfo=UTC))
    await Ticket.get_pymongo_collection().update_one({"origin_key": "b1"}, {"$set": {"status": "solved"}})

    choice = await routing.choose([])

    assert choice.user is not None and choice.user.email == "ann@acme.test"  # bob's open one is newer


async def test_automatic_assignment_writes_nothing_on_the_agent_and_takes_turns(store: Store) -> None:
    for email in ("ann@acme.test", "bob@acme.test"):
        await _agent(email)
    before = await User.get_pymongo_collection().find({"role": "agent"}).sort("email").to_list()
    chosen: list[str] = []
    for key in ("t1", "t2", "t3", "t4"):
        ticket = await _opened(key)
        assert ticket.id is not None
        assigned, _choice = await routing.assign_automatically(ticket.id, skills=[])
        assert assigned is not None and assigned.assignee is not None
        chosen.append(assigned.assignee.email)

    assert sorted(chosen[:2]) == sorted(chosen[2:]) == ["ann@acme.test", "bob@acme.test"]
    assert chosen[2] == chosen[0]  # both have one open ticket: whoever got theirs first
    after = await User.get_pymongo_collection().find({"role": "agent"}).sort("email").to_list()
    assert after == before
