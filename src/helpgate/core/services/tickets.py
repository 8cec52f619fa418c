"""Tickets and their messages: open, append, find by thread, list and read with visibility rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.core.errors import NotFound
from helpgate.core.models import Direction, Message, MessageKind, Participant, Ticket, User
from helpgate.core.models.clock import utcnow
from helpgate.core.services import counters

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


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


@dataclass(frozen=True)
class Page:
    items: list[Ticket]
    total: int
    page: int
    page_size: int


def participant(user: User) -> Participant:
    assert user.id is not None
    return Participant(user_id=user.id, email=user.email, name=user.name)


async def open_ticket(*, requester: User, subject: str, mailbox: str | None, first: NewMessage) -> Ticket:
    """Open a ticket with its first message. Safe to repeat: the same first message finds the same ticket."""
    existing = await Ticket.find_one({"origin_key": first.dedupe_key})
    if existing is None:
        ticket = Ticket(
            number=await counters.increment(counters.TICKET_NUMBER),
            subject=subject,
            requester=participant(requester),
            mailbox=mailbox,
            origin_key=first.dedupe_key,
        )
        try:
            await ticket.insert()
        except DuplicateKeyError:
            existing = await Ticket.find_one({"origin_key": first.dedupe_key})
            assert existing is not None
        else:
            await counters.increment(counters.TICKETS_TOTAL)
            log.info("ticket.opened number=%s requester=%s", ticket.number, requester.email)
            existing = ticket
    await add_message(ticket=existing, message=first)
    return existing


async def add_message(*, ticket: Ticket, message: NewMessage) -> Message | None:
    """Append a message; None when a message with the same dedupe key is already stored."""
    assert ticket.id is not None
    now = utcnow()
    document = Message(
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
        dedupe_key=message.dedupe_key,
        created_at=now,
    )
    try:
        await document.insert()
    except DuplicateKeyError:
        log.info("message.duplicate ticket=%s key=%s", ticket.number, message.dedupe_key)
        return None
    await Ticket.get_pymongo_collection().update_one(
        {"_id": ticket.id}, {"$inc": {"message_count": 1}, "$set": {"updated_at": now}}
    )
    ticket.message_count += 1
    ticket.updated_at = now
    log.info("message.added ticket=%s message_id=%s", ticket.number, message.message_id)
    return document


async def message_exists(dedupe_key: str) -> bool:
    return await Message.find_one({"dedupe_key": dedupe_key}) is not None


async def find_by_message_ids(message_ids: list[str]) -> Ticket | None:
    """The ticket holding the newest of these Message-IDs, if any."""
    if not message_ids:
        return None
    found = await Message.find({"message_id": {"$in": message_ids}}).sort("-created_at").limit(1).to_list()
    if not found:
        return None
    return await Ticket.get(found[0].ticket_id)


def _visible_filter(viewer: User) -> dict[str, object]:
    if viewer.is_staff:
        return {}
    return {"requester.user_id": viewer.id}


async def list_tickets(*, viewer: User, page: int = 1, page_size: int = 25) -> Page:
    """Newest first. Staff see every ticket, customers their own."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(1, page)
    query = _visible_filter(viewer)
    if viewer.is_staff:
        total = await counters.current(counters.TICKETS_TOTAL)
    else:
        total = await Ticket.find(query).count()
    items = await Ticket.find(query).sort("-number").skip((page - 1) * page_size).limit(page_size).to_list()
    return Page(items=items, total=total, page=page, page_size=page_size)


async def get_ticket(*, viewer: User, number: int) -> tuple[Ticket, list[Message]]:
    """One ticket and its messages; NotFound also when the viewer may not see it (no existence leak)."""
    ticket = await Ticket.find_one({"number": number, **_visible_filter(viewer)})
    if ticket is None:
        raise NotFound(f"ticket {number} not found")
    messages = await Message.find({"ticket_number": number}).sort("created_at").to_list()
    if not viewer.is_staff:
        messages = [message for message in messages if message.kind is not MessageKind.NOTE]
    return ticket, messages
