"""Recording triage on the store: what an agent set meanwhile is kept, and the queue's counters follow. Choosing
the agent: ties on load go to whoever's newest open ticket was assigned longest ago, and nothing is written on them;
the staff are read at most every 10 s, but a change made through the services counts for the very next ticket."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from helpgate.accounts import availability, skills, users
from helpgate.accounts.users import UserChanges
from helpgate.core.recent import Recent
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


async def test_agents_who_keep_no_ticket_open_share_the_new_ones(store: Store) -> None:
    for email in ("ann@acme.test", "bob@acme.test", "cid@acme.test"):
        await _agent(email)
    ticket_ids = [PydanticObjectId(f"{n:024x}") for n in range(30)]  # each solved before the next comes

    chosen = [await routing.choose([], ticket_id=ticket_id) for ticket_id in ticket_ids]
    again = await routing.choose([], ticket_id=ticket_ids[0])

    counts = Counter(choice.user.email for choice in chosen if choice.user is not None)
    assert sorted(counts) == ["ann@acme.test", "bob@acme.test", "cid@acme.test"] and min(counts.values()) >= 5
    assert again.user == chosen[0].user  # the same pick when the step runs again


def _deactivated(agent: User) -> Awaitable[object]:  # PATCH /api/users/{id} {"active": false}
    return users.update(actor="admin@acme.test", user_id=str(agent.id), changes=UserChanges(active=False))


def _away_over_the_api(agent: User) -> Awaitable[object]:  # PATCH /api/users/{id} {"away": true}
    return users.update(actor="admin@acme.test", user_id=str(agent.id), changes=UserChanges(away=True))


def _away_by_the_staff_service(agent: User) -> Awaitable[object]:  # what `helpgate staff EMAIL --away on` calls
    return users.update_staff(agent.email, actor="cli", away=True)


def _demoted(agent: User) -> Awaitable[object]:  # PATCH /api/users/{id} {"role": "customer"}
    return users.update(actor="admin@acme.test", user_id=str(agent.id), changes=UserChanges(role=Role.CUSTOMER))


def _skill_taken_away(agent: User) -> Awaitable[object]:  # what `helpgate staff EMAIL --skills ""` calls
    return users.update_staff(agent.email, actor="cli", skills=[])


def _skill_out_of_the_catalog(agent: User) -> Awaitable[object]:  # PUT /api/skills without printers
    return skills.replace([skills.SkillEntry("billing")], actor="cli")


@pytest.mark.parametrize(
    "change",
    [
        _deactivated,
        _away_over_the_api,
        _away_by_the_staff_service,
        _demoted,
        _skill_taken_away,
        _skill_out_of_the_catalog,
    ],
)
async def test_a_change_to_the_chosen_agent_counts_for_the_very_next_ticket(
    store: Store, change: Callable[[User], Awaitable[object]]
) -> None:
    await skills.replace([skills.SkillEntry("printers"), skills.SkillEntry("billing")], actor=None)
    ann = await users.create(actor=None, email="ann@acme.test", role=Role.AGENT, skills=["printers"])
    await users.create(actor=None, email="boss@acme.test", role=Role.ADMIN)
    first = await routing.choose(["printers"])
    assert first.user is not None and first.user.email == "ann@acme.test"

    await change(ann)

    after = await routing.choose(["printers"])
    assert after.user is not None and after.user.email == "boss@acme.test", after.reason


async def test_a_new_agent_counts_for_the_very_next_ticket(store: Store) -> None:
    await skills.replace([skills.SkillEntry("printers")], actor=None)
    await users.create(actor=None, email="boss@acme.test", role=Role.ADMIN)
    assert (await routing.choose(["printers"])).reason.startswith("fallback to an admin")

    await users.create(actor=None, email="ann@acme.test", role=Role.AGENT, skills=["printers"])

    after = await routing.choose(["printers"])
    assert after.user is not None and after.user.email == "ann@acme.test"


async def test_a_change_made_through_another_instance_counts_within_ten_seconds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(availability, "_RECENT", Recent(availability._load, seconds=10.0, clock=lambda: now[0]))
    ann = await _agent("ann@acme.test")
    await _agent("bob@acme.test")
    await _assigned(ann, "a1", datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert (await routing.choose([])).reason == "no skills needed; 0 open tickets"  # bob, read from the store
    # Another instance marks bob away, and a ticket is assigned to ann: the loads are never kept.
    await User.get_pymongo_collection().update_one({"email": "bob@acme.test"}, {"$set": {"away": True}})
    await _assigned(ann, "a2", datetime(2026, 12, 1, 10, tzinfo=UTC))

    kept = await routing.choose([])
    now[0] += 10.0
    read_again = await routing.choose([])

    assert kept.user is not None and kept.user.email == "bob@acme.test"
    assert read_again.user is not None and read_again.user.email == "ann@acme.test"
    assert read_again.reason == "no skills needed; 2 open tickets"
