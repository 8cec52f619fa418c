"""Emit outbox events, and the relay's side of them: claim, mark sent, put back after an error.

`emit` is called by services in the same call as the change it announces. Listeners registered with
`on_emit` (the relay and the live feed, in the same process) are woken at once (the relay only for an event
stored pending); other instances find the event by polling.

With the local workflow back end, an event needs no relay: `dispatch_on_emit` installs the runner's dispatch, and
`emit` starts the event's workflow runs first (stored in one write, once per event: the outbox key is their event
id), then stores the event as delivered. A crash in between leaves the runs, whose event a retry stores.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from helpgate.core.clock import utcnow
from helpgate.outbox.models.event import EventStatus, OutboxEvent

log = logging.getLogger(__name__)

TICKET_CREATED = "ticket/created"
TICKET_MESSAGE_RECEIVED = "ticket/message.received"
TICKET_REPLIED = "ticket/replied"
TICKET_TRIAGED = "ticket/triaged"
TICKET_ASSIGNED = "ticket/assigned"
TICKET_UPDATED = "ticket/updated"  # status, priority, category or assignee changed by staff or by escalation
TICKET_SOLVED = "ticket/solved"  # staff marked it solved (the customer is told by mail)
TICKET_MERGED = "ticket/merged"  # another ticket was merged into it (`merged_from`); the live feed shows it
TICKET_NOTE_ADDED = "ticket/note.added"  # an internal note; no workflow reacts, the live feed shows it to staff
USER_CREATED = "user/created"
TRIAGE_RETRAIN = "triage/retrain"  # the learned triage's retraining chain: each run sends the next one

# A field of event data kept in this store: the local runner's functions read it, Inngest never receives it.
OPENING = "opening"  # ticket/created: what triage reads of the new ticket, customer text included
LOCAL_ONLY = frozenset((OPENING,))


def for_inngest(data: dict[str, Any]) -> dict[str, Any]:
    """The event data sent to Inngest: without the LOCAL_ONLY fields (functions read those from the store)."""
    return {name: value for name, value in data.items() if name not in LOCAL_ONLY}


_listeners: list[tuple[Callable[[], None], bool]] = []  # (listener, pending events only)

#: (event id, name, data) -> the event's workflow runs started. See the module's docstring.
type Dispatch = Callable[[str, str, dict[str, Any]], Awaitable[None]]
_dispatch: list[Dispatch] = []  # at most one: the local runner of this process


def dispatch_on_emit(dispatch: Dispatch) -> Callable[[], None]:
    """Start each emitted event's runs with `dispatch` as it is emitted; returns a function that stops it."""
    _dispatch[:] = [dispatch]
    return lambda: _dispatch.remove(dispatch) if dispatch in _dispatch else None


def on_emit(listener: Callable[[], None], *, pending_only: bool = False) -> Callable[[], None]:
    """Call `listener` after each emit in this process (`pending_only`: of an event stored pending, not one
    delivered as it was stored); returns a function that removes it."""
    entry = (listener, pending_only)
    _listeners.append(entry)
    return lambda: _listeners.remove(entry) if entry in _listeners else None


async def emit(name: str, *, key: str, data: dict[str, Any]) -> OutboxEvent:
    """Store the event once per key (a repeated emit returns the first) and wake the relay; with a local back
    end, start its runs first and store it delivered."""
    event = OutboxEvent(name=name, key=key, data=data)
    for dispatch in list(_dispatch):
        await dispatch(key, name, data)
        event.status, event.sent_at = EventStatus.SENT, utcnow()
    try:
        await event.insert()
    except DuplicateKeyError:
        existing = await OutboxEvent.find_one({"key": key})
        assert existing is not None
        return existing
    log.info("event.emitted id=%s name=%s key=%s", event.id, name, key)
    for listener, pending_only in list(_listeners):
        if event.status is EventStatus.PENDING or not pending_only:
            listener()
    return event


async def claim(*, lease: timedelta, now: datetime | None = None, limit: int = 50) -> list[OutboxEvent]:
    """Take due pending events (and ones whose claimer's lease lapsed), oldest first, for this relay."""
    now = now or utcnow()
    collection = OutboxEvent.get_pymongo_collection()
    due = {
        "$or": [
            {"status": EventStatus.PENDING, "next_attempt_at": {"$lte": now}},
            {"status": EventStatus.DELIVERING, "lease_until": {"$lte": now}},
        ]
    }
    candidates = await collection.find(due, {"_id": 1}).sort("next_attempt_at", 1).limit(limit).to_list()
    token = uuid.uuid4().hex
    claimed: list[OutboxEvent] = []
    for candidate in candidates:
        document = await collection.find_one_and_update(
            {"_id": candidate["_id"], **due},
            {"$set": {"status": EventStatus.DELIVERING, "claim": token, "lease_until": now + lease}},
            return_document=ReturnDocument.AFTER,
        )
        if document is not None:
            claimed.append(OutboxEvent.model_validate(document))
    return claimed


async def mark_sent(event: OutboxEvent) -> bool:
    """Record delivery; False when this claim was lost meanwhile (the event is someone else's now)."""
    now = utcnow()
    result = await OutboxEvent.get_pymongo_collection().update_one(
        {"_id": event.id, "claim": event.claim, "status": EventStatus.DELIVERING},
        {"$set": {"status": EventStatus.SENT, "sent_at": now, "claim": None, "lease_until": None, "last_error": None}},
    )
    return bool(result.modified_count)


async def release(claimed: list[OutboxEvent]) -> None:
    """Hand back claimed events not yet tried: pending and due at once, their attempts and errors untouched."""
    if not claimed:
        return
    await OutboxEvent.get_pymongo_collection().update_many(
        {"_id": {"$in": [event.id for event in claimed]}, "claim": claimed[0].claim, "status": EventStatus.DELIVERING},
        {"$set": {"status": EventStatus.PENDING, "claim": None, "lease_until": None}},
    )


async def put_back(event: OutboxEvent, *, error: str, delay: timedelta, now: datetime | None = None) -> None:
    """Delivery failed: pending again after `delay`, the error kept."""
    await OutboxEvent.get_pymongo_collection().update_one(
        {"_id": event.id, "claim": event.claim},
        {
            "$set": {
                "status": EventStatus.PENDING,
                "next_attempt_at": (now or utcnow()) + delay,
                "claim": None,
                "lease_until": None,
                "last_error": error[:1000],
            },
            "$inc": {"attempts": 1},
        },
    )
    log.warning("event.delivery_failed id=%s name=%s error=%s retry_in=%ss", event.id, event.name, error, delay)
