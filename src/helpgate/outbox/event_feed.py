"""The live feed of changes: outbox events read in store order, and what each viewer may see of them.

Every change a service makes is announced by an OutboxEvent written in the same call (services/events.py), so
the outbox is the feed, read after a cursor: its `_id`. An ObjectId starts with the second it was minted in,
but two instances minting ids in the same second order them by their random middle part, not by time, and
two inserts may land out of id order. So the cursor alone is never trusted: `Tail` reads the last `SETTLE`
again on each pass and skips what it has seen, and `read_since` (a resumed stream) orders that window by
creation time. An event stored more than SETTLE after its id was minted, or by an instance whose clock is
more than SETTLE behind, can be missed.

What a viewer sees is the table RULES: per event name, the data fields each audience gets. Any other field,
and any event not in the table (a workflow's own events), is never shown.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from helpgate.core import paging
from helpgate.core.clock import utcnow
from helpgate.core.errors import InvalidInput
from helpgate.models import OutboxEvent, Role, Ticket, User
from helpgate.outbox import events

SETTLE = timedelta(seconds=3)
PAGE = 200
MAX_TEXT = 200  # characters of one string value
MAX_ITEMS = 50  # values of one list


@dataclass(frozen=True)
class Rule:
    """The data fields each audience gets; None: that audience never sees the event."""

    staff: tuple[str, ...] | None  # agents and admins
    customer: tuple[str, ...] | None = None  # the ticket's requester only
    admin: tuple[str, ...] | None = None  # admins, when they get more than agents (or agents get nothing)
    customer_needs: str | None = None  # the requester sees the event only when its data has this field


RULES: dict[str, Rule] = {
    events.TICKET_CREATED: Rule(staff=("automatic",), customer=()),
    events.TICKET_MESSAGE_RECEIVED: Rule(staff=("message_id",), customer=("message_id",)),
    events.TICKET_REPLIED: Rule(staff=("message_id", "author_id"), customer=("message_id",)),
    events.TICKET_TRIAGED: Rule(staff=("priority", "skills", "response_due_at")),
    events.TICKET_ASSIGNED: Rule(staff=("assignee_id", "by", "reason")),
    events.TICKET_UPDATED: Rule(
        staff=("fields", "status", "priority", "category", "assignee", "skills", "by"),
        customer=("status",),
        customer_needs="status",
    ),
    events.TICKET_SOLVED: Rule(staff=("by",)),
    events.TICKET_NOTE_ADDED: Rule(staff=("message_id", "author_id")),
    events.TICKET_MERGED: Rule(staff=("merged_from", "by"), customer=("merged_from",)),
    events.USER_CREATED: Rule(staff=None, admin=("user_id", "role", "source")),
}


@dataclass(frozen=True)
class FeedEvent:
    """One stored event as read, with the ticket's requester looked up (None for events of no ticket)."""

    id: ObjectId
    name: str
    data: dict[str, Any]
    created_at: datetime
    ticket_number: int | None
    requester_id: ObjectId | None


@dataclass(frozen=True)
class Visible:
    """What one viewer is shown of one event."""

    id: str
    name: str
    ticket_number: int | None
    data: dict[str, object]
    at: datetime


_EVENT_ID = re.compile(r"[0-9a-f]{24}")


def parse_event_id(value: str) -> ObjectId:
    """The event id a client sends back (SSE Last-Event-ID): 24 lower-case hex digits, as this feed gave it."""
    if not _EVENT_ID.fullmatch(value):
        raise InvalidInput("Last-Event-ID must be the id of an event from this stream (24 hex digits)")
    return ObjectId(value)


def _fields(rule: Rule, event: FeedEvent, viewer: User) -> tuple[str, ...] | None:
    if viewer.role is Role.ADMIN:
        return rule.admin if rule.admin is not None else rule.staff
    if viewer.role is Role.AGENT:
        return rule.staff
    if event.requester_id is None or event.requester_id != viewer.id:
        return None
    if rule.customer_needs is not None and rule.customer_needs not in event.data:
        return None
    return rule.customer


def _safe(value: object) -> object:
    """A value as the feed shows it: a number, a flag, short text or a short list of text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, list):
        return [str(item)[:MAX_TEXT] for item in value[:MAX_ITEMS]]
    return str(value)[:MAX_TEXT]


def view(event: FeedEvent, viewer: User) -> Visible | None:
    """What `viewer` may see of `event`, or None: staff see every ticket event, customers the events of
    their own tickets that RULES gives them (never notes, triage or assignment), admins also user events."""
    rule = RULES.get(event.name)
    fields = _fields(rule, event, viewer) if rule is not None else None
    if fields is None:
        return None
    data = {name: _safe(event.data[name]) for name in fields if name in event.data}
    return Visible(id=str(event.id), name=event.name, ticket_number=event.ticket_number, data=data, at=event.created_at)


# --- reading the outbox ---------------------------------------------------------------------------------

_SHOWN = {"name": {"$in": list(RULES)}}
_PROJECTION = {"name": True, "data": True, "created_at": True}


async def _page(after: ObjectId, *, inclusive: bool = False) -> list[dict[str, Any]]:
    collection = OutboxEvent.get_pymongo_collection()
    query = {"_id": {"$gte" if inclusive else "$gt": after}, **_SHOWN}
    return await collection.find(query, _PROJECTION).sort("_id", 1).limit(PAGE).to_list()


async def _read_from(floor: ObjectId) -> list[dict[str, Any]]:
    """Every shown event from `floor` on, page by page."""
    found = await _page(floor, inclusive=True)
    documents = list(found)
    while len(found) == PAGE:
        found = await _page(found[-1]["_id"])
        documents += found
    return documents


def _ticket_number(data: dict[str, Any]) -> int | None:
    number = data.get("ticket_number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


async def _resolve(documents: list[dict[str, Any]]) -> list[FeedEvent]:
    """FeedEvents, each ticket event with its ticket's requester (one query for the batch)."""
    datas: list[dict[str, Any]] = [doc.get("data") or {} for doc in documents]
    ticket_ids = [paging.object_id(str(data.get("ticket_id"))) for data in datas]
    wanted = list({ticket_id for ticket_id in ticket_ids if ticket_id is not None})
    requesters: dict[ObjectId, ObjectId] = {}
    if wanted:
        found = Ticket.get_pymongo_collection().find({"_id": {"$in": wanted}}, {"requester.user_id": True})
        requesters = {ticket["_id"]: ticket["requester"]["user_id"] async for ticket in found}
    return [
        FeedEvent(
            id=doc["_id"],
            name=doc["name"],
            data=data,
            created_at=_created_at(doc),
            ticket_number=_ticket_number(data),
            requester_id=requesters.get(ticket_id) if ticket_id is not None else None,
        )
        for doc, data, ticket_id in zip(documents, datas, ticket_ids, strict=True)
    ]


def _created_at(doc: dict[str, Any]) -> datetime:
    created: datetime | None = doc.get("created_at")
    return created or doc["_id"].generation_time


class Tail:
    """New events as they are stored, each once, also those stored out of id order within SETTLE.

    The first read only takes note of what is there: events stored before it are history, not news."""

    def __init__(self, *, settle: timedelta = SETTLE, clock: Callable[[], datetime] = utcnow) -> None:
        self._settle = settle
        self._clock = clock
        self._seen: set[ObjectId] | None = None

    async def read(self) -> list[FeedEvent]:
        documents = await _read_from(ObjectId.from_datetime(self._clock() - self._settle))
        seen, self._seen = self._seen, {doc["_id"] for doc in documents}
        if seen is None:
            return []
        return await _resolve([doc for doc in documents if doc["_id"] not in seen])


async def read_since(last: ObjectId) -> AsyncIterator[list[FeedEvent]]:
    """The events stored after the event `last` (a resumed stream's Last-Event-ID), in pages.

    Events from SETTLE before `last` on are read again and ordered by creation time, then id: one created
    after `last` (by another instance, in the same second, with a smaller id) is sent, one created before
    it is not. An unknown id counts as created at its own second."""
    anchor = await OutboxEvent.get_pymongo_collection().find_one({"_id": last}, {"created_at": True})
    anchor_at: datetime = (anchor or {}).get("created_at") or last.generation_time
    found = await _page(ObjectId.from_datetime(last.generation_time - SETTLE), inclusive=True)
    while found:
        later = [doc for doc in found if (_created_at(doc), doc["_id"]) > (anchor_at, last)]
        if later:
            yield await _resolve(later)
        if len(found) < PAGE:
            return
        found = await _page(found[-1]["_id"])
