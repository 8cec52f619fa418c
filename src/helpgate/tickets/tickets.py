"""Tickets and their messages: open, append, find by thread, change, with visibility rules; the one write path
that keeps the status x priority counters (the queue and its counts are in `queue`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from beanie import PydanticObjectId
from pydantic_core import to_jsonable_python
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from helpgate.accounts import skills as catalog
from helpgate.accounts import users
from helpgate.audit import audit
from helpgate.core import metrics
from helpgate.core.clock import stored, utcnow
from helpgate.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from helpgate.mail_out import outbound
from helpgate.models import (
    AttachmentRef,
    AuditAction,
    Direction,
    Message,
    MessageKind,
    OutboundMail,
    Participant,
    Priority,
    Ticket,
    TicketStatus,
    TriageReview,
    User,
)
from helpgate.outbox import events
from helpgate.tickets import counters
from helpgate.tickets.models.ticket import APPLIED_KEPT, PRIORITY_RANK, SEARCH_TEXT_CHARS
from helpgate.tickets.models.unfinished_change import UnfinishedChange

log = logging.getLogger(__name__)
REFERENCES_KEPT = 20  # of the opening mail's References, carried by `ticket/created`
OPENING_TEXT_CHARS = 8_000  # of the first message's text carried by `ticket/created`, for triage to read


@dataclass(frozen=True)
class NewMessage:
    """What a transport knows about one message before it belongs to a ticket."""

    dedupe_key: str
    direction: Direction
    from_email: str
    from_name: str = ""
    kind: MessageKind = MessageKind.EMAIL
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    raw_message_id: PydanticObjectId | None = None
    full_text: str = ""  # inbound mail: the whole text body, signature and quoted history included
    html: str = ""
    attachments: list[AttachmentRef] = field(default_factory=list)
    author_id: PydanticObjectId | None = None
    id: PydanticObjectId | None = None  # chosen by the caller when another document must name it first
    participants: list[str] = field(default_factory=list)  # addresses the ticket gains as participants
    thread_root: str | None = None  # Outlook conversation root carried by the message
    auto_reply_block: str | None = None
    authentication: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None  # inbound mail: what tells a copy of it from another mail with its Message-ID
    delivered_to: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def participant(user: User) -> Participant:
    assert user.id is not None
    return Participant(user_id=user.id, email=user.email, name=user.name)


async def open_ticket(
    *,
    requester: User,
    subject: str,
    mailbox: str | None,
    first: NewMessage,
    subject_key: str = "",
    auth_failed: bool = False,
    linked_tickets: list[int] | None = None,
) -> Ticket:
    """Open a ticket with its first message. Safe to repeat: the same first message finds the same ticket."""
    ticket = await insert_ticket(
        requester=requester,
        subject=subject,
        mailbox=mailbox,
        first=first,
        subject_key=subject_key,
        auth_failed=auth_failed,
        linked_tickets=linked_tickets,
    )
    await add_first_message(ticket=ticket, first=first)
    return ticket


async def insert_ticket(
    *,
    requester: User,
    subject: str,
    mailbox: str | None,
    first: NewMessage,
    subject_key: str = "",
    auth_failed: bool = False,
    linked_tickets: list[int] | None = None,
) -> Ticket:
    """The ticket `first` opens, written whole in one insert: counting its first message, with its participants
    and thread root, so adding that message changes nothing on it. When this first message opened a ticket
    already (a retry after a crash), that ticket.

    The ticket takes its number and is counted in the queue in one write, before the insert. A retry that finds
    its ticket inserted already takes that count back, so the counts stay right whenever a crash comes after
    the insert. A crash between the two writes (no ticket yet, the retry numbers it again) leaves the queue's
    counts one too high and a number unused, until `helpgate recount`."""
    ticket = Ticket(
        number=0,  # taken below, with the count of a ticket of this status and priority
        subject=subject,
        requester=participant(requester),
        mailbox=mailbox,
        message_count=0 if first.kind is MessageKind.NOTE else 1,
        origin_key=first.dedupe_key,
        participants=_unique([requester.email, *first.participants]),
        subject_key=subject_key,
        thread_roots=[first.thread_root] if first.thread_root else [],
        applied=[first.dedupe_key],
        auth_failed=auth_failed,
        flags=list(first.flags),
        linked_tickets=linked_tickets or [],
        search_text=f"{subject}\n{first.text}"[:SEARCH_TEXT_CHARS].lower(),
    )
    ticket.updated_at = ticket.created_at
    counted = [counters.TICKETS_TOTAL, counters.ticket_bucket(ticket.status, ticket.priority)]
    ticket.number = await counters.increment(counters.TICKET_NUMBER, also=counted)
    try:
        await ticket.insert()
    except DuplicateKeyError:
        await counters.increment_all(counted, by=-1)  # counted when it was inserted
        existing = await Ticket.find_one({"origin_key": first.dedupe_key})
        assert existing is not None
        return existing
    log.info("ticket.opened number=%s requester=%s", ticket.number, requester.email)
    metrics.TICKETS_CREATED.labels(channel="mail" if mailbox else "api").inc()
    return ticket


async def add_first_message(*, ticket: Ticket, first: NewMessage) -> Message:
    """The ticket's first message (inserted once: a retry finds it), then the announcement that starts triage,
    assignment and the acknowledgement, also stored once."""
    document = _document(ticket, first, now=ticket.created_at)
    try:
        await document.insert()
    except DuplicateKeyError:
        found = await find_message(first.dedupe_key)
        assert found is not None
        document = found
    else:
        log.info("message.added ticket=%s message_id=%s kind=%s", ticket.number, first.message_id, first.kind)
    if not ticket.applied and ticket.message_count == 0:  # inserted uncounted by an older version, cut off here
        await _update_ticket(ticket, first, status=None, now=ticket.created_at)
    await _announce_opened(ticket, first)
    return document


async def _announce_opened(ticket: Ticket, first: NewMessage | Message) -> None:
    """`ticket/created`, once per ticket: triage, assignment and the acknowledgement follow from it."""
    data: dict[str, object] = {
        **ticket_ref(ticket),
        "automatic": first.auto_reply_block is not None,
        events.OPENING: opening(ticket, first.text),
    }
    if first.message_id and first.direction is Direction.INBOUND and first.kind is MessageKind.EMAIL:
        # What the acknowledgement answers, so it need not look for it (never shown in the live feed).
        data["opened_by"] = {"message_id": first.message_id, "references": first.references[-REFERENCES_KEPT:]}
    await events.emit(events.TICKET_CREATED, key=f"{events.TICKET_CREATED} {ticket.id}", data=data)


def opening(ticket: Ticket, text: str) -> dict[str, object]:
    """What the workflows of a new ticket read of it, carried by `ticket/created` so that they need not read the
    ticket and its first message: the ticket as it opened, and the first message's text. Kept in this store:
    never shown in the live feed, never sent to Inngest (events.LOCAL_ONLY)."""
    return {
        "ticket": ticket.model_dump(mode="json", exclude={"search_text", "revision_id"}),
        "text": text[:OPENING_TEXT_CHARS],
    }


def as_opened(ticket_id: PydanticObjectId, data: dict[str, Any]) -> tuple[Ticket, str] | None:
    """The ticket as it opened and its first text, from `ticket/created`'s data (`opening`); None when the event
    does not carry them (an event of an older version, or one delivered by Inngest). For reading only: fields
    changed since are not in it, so a write decided from it must be conditional on what it read."""
    carried = data.get(events.OPENING)
    if not isinstance(carried, dict) or not isinstance(carried.get("ticket"), dict):
        return None
    ticket = Ticket.model_validate(carried["ticket"])
    return (ticket, str(carried.get("text", ""))) if ticket.id == ticket_id else None


def _api_key(purpose: str, author: User, idempotency_key: str | None) -> str:
    """The dedupe key of a message written over the API: a client's Idempotency-Key makes a retry find the
    first message (and its ticket) instead of adding another."""
    return f"api {purpose} {author.id} {idempotency_key}" if idempotency_key else f"api {uuid.uuid4().hex}"


async def open_from_api(
    *, author: User, subject: str, text: str, requester_email: str | None = None, idempotency_key: str | None = None
) -> Ticket:
    """A ticket opened over the API, exactly as a mail opens one (its first message inbound from the
    requester, `ticket/created` announced, so triage, assignment and acknowledgement follow). Staff may
    open one for a customer by email; a customer only for themself."""
    requester = author
    address = users.normalise_email(requester_email) if requester_email is not None else author.email
    if address != author.email:
        if not author.is_staff:
            raise Forbidden("only agents and admins can open a ticket for someone else")
        requester = await users.get_or_create_customer(email=address)
    first = NewMessage(
        dedupe_key=_api_key("open", author, idempotency_key),
        direction=Direction.INBOUND,
        kind=MessageKind.EMAIL,
        from_email=requester.email,
        from_name=requester.name,
        subject=subject,
        text=text,
        author_id=author.id if requester is not author else None,  # who typed it for the customer
        participants=[requester.email],
    )
    if idempotency_key is not None:  # a retry: the ticket the first request opened (and no number spent)
        sent = await find_message(first.dedupe_key)
        found = await Ticket.get(sent.ticket_id) if sent is not None else None
        if found is not None:
            return found
    ticket = await open_ticket(requester=requester, subject=subject, mailbox=None, first=first)
    log.info("ticket.opened_over_api number=%s by=%s requester=%s", ticket.number, author.email, requester.email)
    return ticket


async def reply_as_requester(*, author: User, number: int, text: str, idempotency_key: str | None = None) -> Message:
    """The requester's answer on their ticket over the API: an inbound message like their mail, so it
    reopens a pending or solved ticket and is announced. Others' tickets are NotFound; staff who can see
    the ticket but did not open it answer with a reply instead (Forbidden)."""
    ticket = await get_visible(viewer=author, number=number)
    if ticket.requester.user_id != author.id:
        raise Forbidden("only the ticket's requester writes here; agents and admins reply through /replies")
    key = _api_key(f"reply {number}", author, idempotency_key)
    ticket = await remaining(ticket)  # an answer on a merged ticket goes where it was merged, as mail does
    message = await add_message(
        ticket=ticket,
        message=NewMessage(
            dedupe_key=key,
            direction=Direction.INBOUND,
            kind=MessageKind.EMAIL,
            from_email=author.email,
            from_name=author.name,
            subject=f"Re: {ticket.subject}",
            text=text,
            participants=[author.email],
        ),
    )
    if message is None:  # the same Idempotency-Key again: the message it stored
        message = await find_message(key)
        assert message is not None
    log.info("ticket.requester_replied number=%s by=%s", number, author.email)
    return message


def ticket_ref(ticket: Ticket) -> dict[str, object]:
    """How events name a ticket."""
    return {"ticket_id": str(ticket.id), "ticket_number": ticket.number}


REOPENED_BY_CUSTOMER = (TicketStatus.PENDING, TicketStatus.SOLVED)


def _unique(addresses: list[str]) -> list[str]:
    return list(dict.fromkeys(address.strip().lower() for address in addresses if address.strip()))


async def add_message(
    *, ticket: Ticket, message: NewMessage, status: TicketStatus | None = None, announce: bool = True
) -> Message | None:
    """Append a message; None when a message with the same dedupe key is already stored.

    `status` moves the ticket along (an agent's reply: pending). A customer's mail to a pending or solved
    ticket reopens it. Notes are not counted in `message_count`, which customers see. A new inbound message
    is announced as `ticket/message.received` (the first one is announced by `open_ticket` instead).
    """
    now = utcnow()
    document = _document(ticket, message, now=now)
    try:
        await document.insert()
    except DuplicateKeyError:
        log.info("message.duplicate ticket=%s key=%s", ticket.number, message.dedupe_key)
        return None
    await _update_ticket(ticket, message, status=status, now=now)
    if announce:
        await _announce(ticket, document)
    return document


def _document(ticket: Ticket, message: NewMessage, *, now: datetime) -> Message:
    assert ticket.id is not None
    return Message(
        id=message.id,
        ticket_id=ticket.id,
        ticket_number=ticket.number,
        direction=message.direction,
        kind=message.kind,
        from_email=message.from_email,
        from_name=message.from_name,
        to=message.to,
        cc=message.cc,
        subject=message.subject,
        text=message.text,
        message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        references=message.references,
        raw_message_id=message.raw_message_id,
        auto_reply_block=message.auto_reply_block,
        authentication=message.authentication,
        full_text=message.full_text,
        html=message.html,
        attachments=message.attachments,
        author_id=message.author_id,
        dedupe_key=message.dedupe_key,
        fingerprint=message.fingerprint,
        delivered_to=message.delivered_to,
        flags=message.flags,
        created_at=now,
    )


async def finish_message(*, ticket: Ticket, stored: Message, message: NewMessage) -> None:
    """Finish a delivery cut off after its message was stored (the instance stopped): the same steps as a
    delivery, each of which does its part once: the ticket update (applied once per message key, recorded on
    the ticket) and the announcement (stored once per key). Without this the retry would find its own message
    and call the mail a duplicate, and no workflow would ever hear of it: no triage, no acknowledgement."""
    first = ticket.origin_key == stored.dedupe_key
    if not ticket.applied and (ticket.message_count > 0 if first else ticket.updated_at >= stored.created_at):
        applied = False  # a ticket of the previous version, which recorded no keys: it counted the message
    else:
        applied = await _update_ticket(ticket, message, status=None, now=stored.created_at)
    log.info("message.finished ticket=%s key=%s ticket_updated=%s", ticket.number, stored.dedupe_key, applied)
    if first:
        await _announce_opened(ticket, stored)
    else:
        await _announce(ticket, stored)


async def _update_ticket(ticket: Ticket, message: NewMessage, *, status: TicketStatus | None, now: datetime) -> bool:
    """What a new message changes on its ticket: the count customers see, participants, thread roots, the
    status (an agent's reply: pending; a customer's mail to a pending or solved ticket reopens it). Applied once
    per message: the write records the message's key on the ticket and is conditional on its absence, so a
    resumed delivery neither counts the message twice nor guesses. False when it was applied before."""
    assert ticket.id is not None
    counted = message.kind is not MessageKind.NOTE
    changes: dict[str, object] = {"updated_at": now}
    if status is not None:
        changes["status"] = status
    update: dict[str, object] = {
        "$inc": {"message_count": 1 if counted else 0},
        "$set": changes,
        "$push": {"applied": {"$each": [message.dedupe_key], "$slice": -APPLIED_KEPT}},
    }
    joined = [address for address in _unique(message.participants) if address not in ticket.participants]
    roots = [message.thread_root] if message.thread_root and message.thread_root not in ticket.thread_roots else []
    if joined or roots:
        update["$addToSet"] = {
            name: {"$each": values} for name, values in (("participants", joined), ("thread_roots", roots)) if values
        }
    unapplied = {"applied": {"$ne": message.dedupe_key}}
    if status is not None:
        applied = await apply_update(ticket.id, update, where=unapplied)  # keeps the per-status counters
    else:
        applied = (
            await Ticket.get_pymongo_collection().update_one({"_id": ticket.id, **unapplied}, update)
        ).matched_count > 0
    if not applied:
        return False
    ticket.participants += joined
    ticket.thread_roots += roots
    ticket.applied = [*ticket.applied, message.dedupe_key][-APPLIED_KEPT:]
    ticket.message_count += 1 if counted else 0
    ticket.updated_at = now
    if status is not None:
        ticket.status = status
    log.info("message.added ticket=%s message_id=%s kind=%s", ticket.number, message.message_id, message.kind)
    if message.direction is Direction.INBOUND and ticket.status in REOPENED_BY_CUSTOMER:
        await _reopen(ticket, now=now)
    return True


async def _announce(ticket: Ticket, document: Message) -> None:
    """A new inbound message is announced as `ticket/message.received`, once per message."""
    if document.direction is Direction.INBOUND:
        await events.emit(
            events.TICKET_MESSAGE_RECEIVED,
            key=f"{events.TICKET_MESSAGE_RECEIVED} {document.id}",
            data={**ticket_ref(ticket), "message_id": str(document.id)},
        )


async def _reopen(ticket: Ticket, *, now: datetime) -> None:
    # Conditional, so an agent's change made meanwhile (say, closed) is not overwritten.
    assert ticket.id is not None
    reopened = await apply_update(
        ticket.id,
        {"$set": {"status": TicketStatus.OPEN, "updated_at": now}},
        where={"status": {"$in": [str(status) for status in REOPENED_BY_CUSTOMER]}},
    )
    if reopened:
        log.info("ticket.reopened number=%s was=%s reason=customer replied", ticket.number, ticket.status)
        ticket.status = TicketStatus.OPEN


async def find_message(dedupe_key: str) -> Message | None:
    return await Message.find_one({"dedupe_key": dedupe_key})


async def inbound_with_message_id(message_id: str) -> list[Message]:
    """The inbound messages that came with this Message-ID, oldest first (more than one: the ID was reused)."""
    return await Message.find({"message_id": message_id, "direction": Direction.INBOUND}).sort("created_at").to_list()


async def delivered(*, message_id: str, address: str) -> bool:
    """Whether a mail with this Message-ID reached this support address (stored before 2026-12: by its key)."""
    return any(
        address in message.delivered_to or message.dedupe_key == f"{address} {message_id}"
        for message in await inbound_with_message_id(message_id)
    )


async def record_fingerprint(message: Message, fingerprint: str) -> None:
    """Keep the fingerprint worked out for a message stored before messages had one."""
    message.fingerprint = fingerprint
    await Message.get_pymongo_collection().update_one({"_id": message.id}, {"$set": {"fingerprint": fingerprint}})


async def record_delivery(message: Message, *, address: str) -> None:
    """Another copy of this message reached `address` (one of ours): the ticket keeps its first address, the
    message lists them all."""
    await Message.get_pymongo_collection().update_one({"_id": message.id}, {"$addToSet": {"delivered_to": address}})


#: How many tickets a lookup by Message-ID weighs at the most (a reused ID can sit on several).
MESSAGE_ID_TICKETS = 20


async def find_by_message_ids(message_ids: list[str]) -> list[Ticket]:
    """The tickets holding any of these Message-IDs, the one with the newest such message first."""
    if not message_ids:
        return []
    cursor = Message.get_pymongo_collection().find({"message_id": {"$in": message_ids}}, {"ticket_id": 1})
    ticket_ids = list(dict.fromkeys([document["ticket_id"] async for document in cursor.sort("created_at", -1)]))
    chosen = ticket_ids[:MESSAGE_ID_TICKETS]
    found = {ticket.id: ticket for ticket in await Ticket.find({"_id": {"$in": chosen}}).to_list()}
    return [found[ticket_id] for ticket_id in ticket_ids if ticket_id in found]


def visible_filter(viewer: User) -> dict[str, object]:
    if viewer.is_staff:
        return {}
    return {"requester.user_id": viewer.id}


# --- derived data: the priority rank and the status x priority counters ----------------------------------

OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)  # as services.routing counts load
PRIORITIES: tuple[Priority | None, ...] = (*Priority, None)


async def apply_update(
    ticket_id: PydanticObjectId, update: Mapping[str, Any], *, where: Mapping[str, object] | None = None
) -> bool:
    """Apply one update to one ticket (`where` narrows the match: a conditional write) and keep in step what
    is derived from its fields: `priority_rank` from `priority`, and the status x priority counters. False
    when no ticket matched. Every write of a ticket's `status` or `priority` must go through here; one that
    does not leaves the counters wrong until `recount`."""
    values = dict(update.get("$set", {}))
    changes_bucket = "status" in values or "priority" in values
    if "priority" in values:
        priority = values["priority"]
        values["priority_rank"] = PRIORITY_RANK[Priority(priority) if priority is not None else None]
    update = {**update, "$set": values} if values else dict(update)
    collection = Ticket.get_pymongo_collection()
    match = {"_id": ticket_id, **(where or {})}
    if not changes_bucket:
        return (await collection.update_one(match, update)).matched_count > 0
    before = await collection.find_one_and_update(
        match, update, projection={"status": True, "priority": True}, return_document=ReturnDocument.BEFORE
    )
    if before is None:
        return False
    after = {"status": before.get("status"), "priority": before.get("priority"), **values}
    await counters.move(
        counters.ticket_bucket(str(before.get("status")), before.get("priority")),
        counters.ticket_bucket(str(after["status"]), after["priority"]),
    )
    return True


def bucket_names() -> list[str]:
    """The counter of every status x priority pair."""
    return [counters.ticket_bucket(status, priority) for status in TicketStatus for priority in PRIORITIES]


async def recount() -> dict[str, int]:
    """Count every ticket per status and priority afresh and overwrite the counters (and the total) with the
    result: a repair after writes that bypassed apply_update, or for a store that predates the counters.
    Slow on the embedded store (one pass over the collection)."""
    counts = dict.fromkeys(bucket_names(), 0)
    cursor = await Ticket.get_pymongo_collection().aggregate(
        [{"$group": {"_id": {"status": "$status", "priority": "$priority"}, "n": {"$sum": 1}}}]
    )
    async for group in cursor:
        name = counters.ticket_bucket(str(group["_id"]["status"]), group["_id"].get("priority"))
        counts[name] = counts.get(name, 0) + int(group["n"])
    counts[counters.TICKETS_TOTAL] = sum(counts.values())
    await counters.reset(counts)
    log.info("tickets.recounted total=%s", counts[counters.TICKETS_TOTAL])
    return counts


COUNTERS_VERSION = "ticket_counters_version"


async def ensure_counters() -> None:
    """Build the queue's counters once for a store whose tickets predate them (at start-up)."""
    if await counters.current(COUNTERS_VERSION) >= 1:
        return
    if await Ticket.find_one({}) is not None:
        await recount()
    await counters.increment(COUNTERS_VERSION)


# Numbers are BSON int64s from a counter: a larger one cannot exist, and the driver would refuse to send it.
MAX_NUMBER = 2**63 - 1


async def get_visible(*, viewer: User, number: int) -> Ticket:
    """The ticket, or NotFound also when the viewer may not see it (no existence leak)."""
    ticket = await Ticket.find_one({"number": number, **visible_filter(viewer)}) if number <= MAX_NUMBER else None
    if ticket is None:
        raise NotFound(f"ticket {number} not found")
    return ticket


MAX_MERGE_HOPS = 20  # merged_into chains are followed at most this far


async def remaining(ticket: Ticket) -> Ticket:
    """The ticket mail to `ticket` goes to: itself, or the one it was merged into (followed along a chain)."""
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into is None:
            return ticket
        following = await get_by_number(ticket.merged_into)
        if following is None:
            return ticket
        ticket = following
    return ticket


def refuse_merged(ticket: Ticket) -> None:
    """Conflict for a change to a merged ticket: it is closed for good; the change belongs on the one it was
    merged into (tickets/merging.py)."""
    if ticket.merged_into is not None:
        raise Conflict(f"ticket {ticket.number} was merged into ticket {ticket.merged_into}; work on that one")


async def get_for_staff(*, viewer: User, number: int) -> Ticket:
    """The ticket for an agent or admin to work on: NotFound when the viewer cannot see it, else Forbidden."""
    ticket = await get_visible(viewer=viewer, number=number)
    if not viewer.is_staff:
        raise Forbidden("only agents and admins can do this")
    return ticket


async def find_by_thread_root(root: str) -> Ticket | None:
    return await Ticket.find_one({"thread_roots": root})


async def find_recent_by_subject(*, subject_key: str, requester_email: str, since: datetime) -> Ticket | None:
    """The newest open ticket of this requester with this normalised subject, updated since `since`."""
    found = (
        await Ticket.find(
            {
                "subject_key": subject_key,
                "requester.email": requester_email.lower(),
                "updated_at": {"$gte": since},
                "status": {"$ne": TicketStatus.CLOSED},
            }
        )
        .sort("-updated_at")
        .limit(1)
        .to_list()
    )
    return found[0] if found else None


async def get_by_number(number: int) -> Ticket | None:
    return await Ticket.find_one({"number": number})


async def get_by_id(ticket_id: PydanticObjectId) -> Ticket | None:
    return await Ticket.get(ticket_id)


async def opening_message(ticket: Ticket) -> Message | None:
    """The message that opened the ticket (its origin)."""
    return await Message.find_one({"dedupe_key": ticket.origin_key})


async def get_ticket(*, viewer: User, number: int) -> tuple[Ticket, list[Message]]:
    """One ticket and its messages; NotFound also when the viewer may not see it (no existence leak)."""
    ticket = await get_visible(viewer=viewer, number=number)
    messages = await Message.find({"ticket_id": ticket.id}).sort("created_at").to_list()
    if not viewer.is_staff:
        messages = [message for message in messages if message.kind is not MessageKind.NOTE]
    return ticket, messages


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[Message]
    deliveries: dict[PydanticObjectId, OutboundMail]  # by message id; staff only (empty for customers)


async def get_detail(*, viewer: User, number: int) -> TicketDetail:
    """A ticket as its viewer may see it; staff also see how each outbound message was delivered."""
    ticket, messages = await get_ticket(viewer=viewer, number=number)
    deliveries = await outbound.for_ticket(number) if viewer.is_staff else {}
    return TicketDetail(ticket=ticket, messages=messages, deliveries=deliveries)


@dataclass(frozen=True)
class TicketChanges:
    """What an agent asks to change; `given` names the fields sent (an assignee of None unassigns)."""

    given: frozenset[str]
    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee: str | None = None  # the email of an active agent or admin
    category: str | None = None
    skills: tuple[str, ...] | None = None  # from the catalog

    def asked(self) -> dict[str, object]:
        """The fields sent with their values, as the audit log records them."""
        values = {
            "status": self.status,
            "priority": self.priority,
            "assignee": self.assignee,
            "category": self.category,
            "skills": list(self.skills) if self.skills is not None else None,
        }
        return {name: value for name, value in values.items() if name in self.given}


async def update(*, actor: User, number: int, changes: TicketChanges) -> Ticket:
    """Change status, priority, assignee or category, audited as `actor`. The change is announced
    (`ticket/updated`, and `ticket/assigned` for a new assignee, `ticket/solved` when it becomes solved): the
    workflows tell the new assignee and the customer by mail, as they do for automatic changes.

    The ticket is the unit's record: an assignment and a solving are stored with their moment (`assigned_at`,
    `solved_at`), and their events are keyed by it. A request cut off after the write is retried by its client:
    the retry finds no transition, but announces the ones stored (once: by their keys)."""
    ticket = await get_for_staff(viewer=actor, number=number)
    refuse_merged(ticket)
    before = ticket.model_copy()
    values: dict[str, object] = {}
    if "status" in changes.given and changes.status is not None:
        values["status"] = ticket.status = changes.status
    if "priority" in changes.given:
        values["priority"] = ticket.priority = changes.priority
    if "category" in changes.given:
        values["category"] = ticket.category = changes.category or None
    if "assignee" in changes.given:
        ticket.assignee = await _assignee(changes.assignee)
        values["assignee"] = ticket.assignee.model_dump() if ticket.assignee else None
    if "skills" in changes.given and changes.skills is not None:
        values["skills"] = ticket.skills = await catalog.check_known(changes.skills)
    if not values:
        return ticket
    asked = changes.asked()
    now = stored(utcnow())  # as the store keeps it, so keys made of it now and on a retry agree
    values["updated_at"] = ticket.updated_at = now
    if ticket.assignee is not None and ticket.assignee != before.assignee:
        values["assigned_at"] = ticket.assigned_at = now
    if ticket.status is TicketStatus.SOLVED and before.status is not TicketStatus.SOLVED:
        values["solved_at"] = ticket.solved_at = now
    review = triage_review(before, ticket, actor=actor, now=now)
    if review is not None:
        ticket.triage_review = review
        values["triage_review"] = review.model_dump()
    assert ticket.id is not None
    # The unit: a record of what follows the write, the write (which marks the ticket with the record's key), then
    # the audit entry and the announcements, and the record goes. Cut off anywhere, it is finished (unfinished.py).
    record = UnfinishedChange(
        id=PydanticObjectId(),
        ticket_id=ticket.id,
        number=number,
        at=now,
        actor_id=actor.id,
        actor_email=actor.email,
        asked=to_jsonable_python(asked),
        values=values,
        fields=[name for name in _CHANGEABLE if name in values],
        assigned="assignee" in changes.given and ticket.assignee is not None,
        solved="status" in changes.given and ticket.status is TicketStatus.SOLVED and ticket.solved_at is not None,
    )
    await record.insert()
    await apply_update(ticket.id, record.write)
    log.info("ticket.updated number=%s by=%s fields=%s", number, actor.email, ",".join(sorted(values)))
    await finish_change(record, ticket, actor=actor)
    return ticket


async def finish_change(record: UnfinishedChange, ticket: Ticket, *, actor: User | str) -> None:
    """What follows a staff change's write, each part stored once however often this runs: its audit entry (under
    the record's id), `ticket/updated`, `ticket/assigned` and `ticket/solved` (by their keys); then the record goes.
    `ticket` holds the change's values."""
    await audit.record(
        actor=actor,
        action=AuditAction.TICKET_UPDATED,
        target_type="ticket",
        target_id=str(record.number),
        target_label=ticket.subject,
        changes=record.asked,
        entry_id=record.id,
    )
    await announce_update(ticket, fields=record.fields, by=record.actor_id, now=record.at)
    if record.assigned:
        await announce_assignment(ticket, by=record.actor_id, reason="assigned by staff")
    if record.solved and ticket.solved_at is not None:
        await events.emit(
            events.TICKET_SOLVED,
            key=f"{events.TICKET_SOLVED} {ticket.id} {moment_key(ticket.solved_at)}",
            data={**ticket_ref(ticket), "by": str(record.actor_id)},
        )
    await record.delete()


_CHANGEABLE = ("status", "priority", "category", "assignee", "skills")
TRIAGED = ("category", "priority", "skills")
CORRECTED, CONFIRMED = "corrected", "confirmed"


def _as_triaged(ticket: Ticket) -> tuple[str | None, str | None, list[str]]:
    return ticket.category, str(ticket.priority) if ticket.priority else None, list(ticket.skills)


def triage_review(before: Ticket, after: Ticket, *, actor: User, now: datetime) -> TriageReview | None:
    """Staff's verdict on a triaged ticket from one change: `corrected` when its category, priority or skills now
    differ (what triage said is kept from the first correction on), `confirmed` when it is solved without any
    correction; None when there is nothing new to record (no triage, or nothing that tells)."""
    if before.triage is None:
        return None
    corrected = any(getattr(before, name) != getattr(after, name) for name in TRIAGED)
    solved_now = after.status is TicketStatus.SOLVED and before.status is not TicketStatus.SOLVED
    if not corrected and not (solved_now and before.triage_review is None):
        return None
    earlier = before.triage_review if before.triage_review and before.triage_review.outcome == CORRECTED else None
    said = (earlier.said_category, earlier.said_priority, earlier.said_skills) if earlier else _as_triaged(before)
    category, priority, skills = _as_triaged(after)
    return TriageReview(
        outcome=CORRECTED if corrected else CONFIRMED,
        source=before.triage.source,
        model=before.triage.model,
        said_category=said[0],
        said_priority=said[1],
        said_skills=said[2],
        category=category,
        priority=priority,
        skills=skills,
        by=actor.id,
        by_email=actor.email,
        at=now,
    )


async def announce_update(ticket: Ticket, *, fields: list[str], by: PydanticObjectId | None, now: datetime) -> None:
    """`ticket/updated`: the fields that changed with their new values (`by`, who changed them, is None for an
    automatic change, such as an escalation). No workflow reacts to it; the live feed (GET /api/events) shows it."""
    values: dict[str, object] = {
        "status": str(ticket.status),
        "priority": str(ticket.priority) if ticket.priority else None,
        "category": ticket.category,
        "assignee": str(ticket.assignee.user_id) if ticket.assignee else None,
        "skills": list(ticket.skills),
    }
    await events.emit(
        events.TICKET_UPDATED,
        key=f"{events.TICKET_UPDATED} {ticket.id} {now.isoformat()}",
        data={
            **ticket_ref(ticket),
            "fields": fields,
            **{name: values[name] for name in fields},
            "by": None if by is None else str(by),
        },
    )


async def _assignee(email: str | None) -> Participant | None:
    if email is None:
        return None
    user = await users.get_by_email(email)
    if user is None or not user.is_staff or not user.active:
        raise InvalidInput(f"{email} is not an active agent or admin")
    return participant(user)


def moment_key(moment: datetime) -> str:
    """A stored moment in an event key: UTC to the millisecond, the same whether read back from the store (which
    may give it without its time zone) or just written."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return stored(utc).isoformat(timespec="milliseconds")


async def announce_assignment(ticket: Ticket, *, by: PydanticObjectId | None, reason: str) -> None:
    """`ticket/assigned`, once per assignment (keyed by its assignee and `assigned_at`): `by` is None for automatic
    assignment. The workflows tell the assignee by mail (unless they assigned themselves)."""
    assert ticket.assignee is not None and ticket.assigned_at is not None
    await events.emit(
        events.TICKET_ASSIGNED,
        key=f"{events.TICKET_ASSIGNED} {ticket.id} {ticket.assignee.user_id} {moment_key(ticket.assigned_at)}",
        data={
            **ticket_ref(ticket),
            "assignee_id": str(ticket.assignee.user_id),
            "by": None if by is None else str(by),
            "reason": reason,
        },
    )
