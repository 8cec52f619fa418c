"""The live feed's rules: what each viewer sees of an event, and reading the outbox after a cursor when ids
were minted out of order (the ordering and resume behaviour behind GET /api/events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from helpgate.core.errors import InvalidInput
from helpgate.models import OutboxEvent, Participant, Role, Ticket, User
from helpgate.outbox import event_feed, events
from helpgate.outbox.event_feed import FeedEvent

Store = AsyncMongoClient[dict[str, Any]]
T0 = datetime(2026, 11, 27, 9, 30, 0, tzinfo=UTC)
JANE, BOB = ObjectId(), ObjectId()


def _viewer(role: Role, user_id: ObjectId | None = None) -> User:
    viewer: User = User.model_construct(id=user_id or ObjectId(), email=f"{role}@example.org", role=role)
    return viewer  # the rules read only the id and the role: no store needed


def _event(name: str, data: dict[str, Any], requester: ObjectId | None = JANE) -> FeedEvent:
    return FeedEvent(
        id=ObjectId(),
        name=name,
        data=data,
        created_at=T0,
        ticket_number=data.get("ticket_number"),
        requester_id=requester,
    )


def test_staff_see_ticket_events_with_the_fields_the_table_names() -> None:
    event = _event(events.TICKET_REPLIED, {"ticket_number": 7, "message_id": "m1", "author_id": "a1", "raw": "x"})

    for role in (Role.AGENT, Role.ADMIN):
        shown = event_feed.view(event, _viewer(role))
        assert shown is not None and shown.data == {"message_id": "m1", "author_id": "a1"} and shown.ticket_number == 7


def test_a_customer_sees_their_own_ticket_only_and_fewer_fields() -> None:
    event = _event(events.TICKET_REPLIED, {"ticket_number": 7, "message_id": "m1", "author_id": "a1"})

    mine = event_feed.view(event, _viewer(Role.CUSTOMER, JANE))
    theirs = event_feed.view(event, _viewer(Role.CUSTOMER, BOB))

    assert mine is not None and mine.data == {"message_id": "m1"}
    assert theirs is None


@pytest.mark.parametrize(
    "name", [events.TICKET_NOTE_ADDED, events.TICKET_TRIAGED, events.TICKET_ASSIGNED, events.USER_CREATED, "x/y"]
)
def test_customers_never_see_staff_events(name: str) -> None:
    assert event_feed.view(_event(name, {"ticket_number": 7}), _viewer(Role.CUSTOMER, JANE)) is None


def test_a_customer_sees_an_update_only_when_the_status_changed() -> None:
    jane = _viewer(Role.CUSTOMER, JANE)
    priority = _event(events.TICKET_UPDATED, {"fields": ["priority"], "priority": "high", "by": "a1"})
    status = _event(events.TICKET_UPDATED, {"fields": ["status", "priority"], "status": "solved", "priority": "low"})

    shown = event_feed.view(status, jane)

    assert event_feed.view(priority, jane) is None
    assert shown is not None and shown.data == {"status": "solved"}


def test_user_created_goes_to_admins_only() -> None:
    event = _event(events.USER_CREATED, {"user_id": "u1", "role": "agent", "source": "admin"}, requester=None)

    shown = event_feed.view(event, _viewer(Role.ADMIN))

    assert event_feed.view(event, _viewer(Role.AGENT)) is None
    assert shown is not None and shown.data == {"user_id": "u1", "role": "agent", "source": "admin"}


def test_values_are_cut_to_plain_short_ones() -> None:
    data = {"ticket_number": 7, "skills": ["a" * 500] * 80, "priority": {"nested": "object"}}

    shown = event_feed.view(_event(events.TICKET_TRIAGED, data), _viewer(Role.AGENT))

    assert shown is not None
    assert len(shown.data["skills"]) == event_feed.MAX_ITEMS  # type: ignore[arg-type]
    assert {len(skill) for skill in shown.data["skills"]} == {event_feed.MAX_TEXT}  # type: ignore[attr-defined]
    assert shown.data["priority"] == "{'nested': 'object'}"


@pytest.mark.parametrize("value", ["", "xyz", "0" * 23, "0" * 25, "G" * 24, "6960A1C0E4B0C1A2B3C4D5E6"])
def test_a_last_event_id_must_be_one_of_ours(value: str) -> None:
    with pytest.raises(InvalidInput):
        event_feed.parse_event_id(value)


def _id(at: datetime, tail: int) -> ObjectId:
    """An id minted in `at`'s second, ordered within it by `tail` (as another instance's random part does)."""
    return ObjectId(ObjectId.from_datetime(at).binary[:4] + tail.to_bytes(8, "big"))


async def _store(event_id: ObjectId, created_at: datetime, number: int) -> None:
    await OutboxEvent(
        id=event_id,
        name=events.TICKET_CREATED,
        key=f"test {number}",
        data={"ticket_number": number},
        created_at=created_at,
    ).insert()


async def _resumed(last: ObjectId) -> list[int | None]:
    return [event.ticket_number async for batch in event_feed.read_since(last) for event in batch]


async def test_resuming_orders_the_recent_window_by_creation_time(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    last = _id(now, 500)
    await _store(_id(now - timedelta(seconds=10), 1), now - timedelta(seconds=10), 1)  # long before: not again
    await _store(_id(now, 100), now + timedelta(milliseconds=100), 2)  # smaller id, created before last: not again
    await _store(last, now + timedelta(milliseconds=200), 3)  # the last one the client got
    await _store(_id(now, 50), now + timedelta(milliseconds=300), 4)  # smaller id, created after last: missed
    await _store(_id(now + timedelta(seconds=1), 1), now + timedelta(seconds=1), 5)  # later: missed

    assert await _resumed(last) == [4, 5]


async def test_resuming_from_an_unknown_id_starts_at_its_second(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await _store(_id(now - timedelta(seconds=2), 1), now - timedelta(seconds=2), 1)
    await _store(_id(now, 1), now + timedelta(milliseconds=10), 2)

    assert await _resumed(_id(now, 9)) == [2]


async def test_the_tail_reads_history_once_then_each_new_event_once_in_any_id_order(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await _store(_id(now, 10), now, 1)
    tail = event_feed.Tail(clock=lambda: now)

    history = await tail.read()
    await _store(_id(now, 30), now, 2)
    first = await tail.read()
    await _store(_id(now, 20), now, 3)  # a smaller id, stored later
    second = await tail.read()
    third = await tail.read()

    assert (history, third) == ([], [])
    assert [event.ticket_number for event in first] == [2]
    assert [event.ticket_number for event in second] == [3]


async def test_the_tail_finds_the_requester_of_each_ticket(store: Store) -> None:
    ticket = await Ticket(
        number=1, subject="s", requester=Participant(user_id=JANE, email="jane@example.org"), origin_key="k"
    ).insert()
    tail = event_feed.Tail()
    await tail.read()
    await events.emit(
        events.TICKET_CREATED, key="t", data={"ticket_id": str(ticket.id), "ticket_number": 1, "automatic": False}
    )
    await events.emit(events.TICKET_CREATED, key="u", data={"ticket_id": "not-an-id", "ticket_number": 2})

    found = await tail.read()

    assert [(event.ticket_number, event.requester_id) for event in found] == [(1, JANE), (2, None)]
