"""Tickets and their messages: open, append, find by thread, list and read with visibility rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.core.errors import Forbidden, InvalidInput, NotFound
from helpgate.core.mail import compose
from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import TemplateKind
from helpgate.core.models import (
    AttachmentRef,
    Direction,
    Message,
    MessageKind,
    OutboundMail,
    Participant,
    Priority,
    Ticket,
    TicketStatus,
    User,
)
from helpgate.core.models.clock import utcnow
from helpgate.core.services import counters, events, outbound, users

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
    html: str = ""
    attachments: list[AttachmentRef] = field(default_factory=list)
    author_id: PydanticObjectId | None = None
    id: PydanticObjectId | None = None  # chosen by the caller when another document must name it first
    participants: list[str] = field(default_factory=list)  # addresses the ticket gains as participants
    thread_root: str | None = None  # Outlook conversation root carried by the message
    auto_reply_block: str | None = None
    authentication: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    items: list[Ticket]
    total: int
    page: int
    page_size: int


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
) -> Ticket:
    """Open a ticket with its first message. Safe to repeat: the same first message finds the same ticket."""
    existing = await Ticket.find_one({"origin_key": first.dedupe_key})
    if existing is None:
        ticket = Ticket(
            number=await counters.increment(counters.TICKET_NUMBER),
            subject=subject,
            requester=participant(requester),
            mailbox=mailbox,
            origin_key=first.dedupe_key,
            participants=_unique([requester.email, *first.participants]),
            subject_key=subject_key,
            thread_roots=[first.thread_root] if first.thread_root else [],
            auth_failed=auth_failed,
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
    await add_message(ticket=existing, message=first, announce=False)
    # Also when the ticket was found: a crash between the insert and this emit is healed by the retry.
    await events.emit(
        events.TICKET_CREATED,
        key=f"{events.TICKET_CREATED} {existing.id}",
        data={**ticket_ref(existing), "automatic": first.auto_reply_block is not None},
    )
    return existing


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
    assert ticket.id is not None
    now = utcnow()
    document = Message(
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
        html=message.html,
        attachments=message.attachments,
        author_id=message.author_id,
        dedupe_key=message.dedupe_key,
        created_at=now,
    )
    try:
        await document.insert()
    except DuplicateKeyError:
        log.info("message.duplicate ticket=%s key=%s", ticket.number, message.dedupe_key)
        return None
    counted = message.kind is not MessageKind.NOTE
    changes: dict[str, object] = {"updated_at": now}
    if status is not None:
        changes["status"] = status
    update: dict[str, object] = {"$inc": {"message_count": 1 if counted else 0}, "$set": changes}
    joined = [address for address in _unique(message.participants) if address not in ticket.participants]
    roots = [message.thread_root] if message.thread_root and message.thread_root not in ticket.thread_roots else []
    if joined or roots:
        update["$addToSet"] = {
            name: {"$each": values} for name, values in (("participants", joined), ("thread_roots", roots)) if values
        }
        ticket.participants += joined
        ticket.thread_roots += roots
    await Ticket.get_pymongo_collection().update_one({"_id": ticket.id}, update)
    ticket.message_count += 1 if counted else 0
    ticket.updated_at = now
    if status is not None:
        ticket.status = status
    log.info("message.added ticket=%s message_id=%s kind=%s", ticket.number, message.message_id, message.kind)
    if message.direction is Direction.INBOUND and ticket.status in REOPENED_BY_CUSTOMER:
        await _reopen(ticket, now=now)
    if announce and message.direction is Direction.INBOUND:
        await events.emit(
            events.TICKET_MESSAGE_RECEIVED,
            key=f"{events.TICKET_MESSAGE_RECEIVED} {document.id}",
            data={**ticket_ref(ticket), "message_id": str(document.id)},
        )
    return document


async def _reopen(ticket: Ticket, *, now: datetime) -> None:
    # Conditional, so an agent's change made meanwhile (say, closed) is not overwritten.
    result = await Ticket.get_pymongo_collection().update_one(
        {"_id": ticket.id, "status": {"$in": [str(status) for status in REOPENED_BY_CUSTOMER]}},
        {"$set": {"status": TicketStatus.OPEN, "updated_at": now}},
    )
    if result.modified_count:
        log.info("ticket.reopened number=%s was=%s reason=customer replied", ticket.number, ticket.status)
        ticket.status = TicketStatus.OPEN


async def message_exists(dedupe_key: str) -> bool:
    return await find_message(dedupe_key) is not None


async def find_message(dedupe_key: str) -> Message | None:
    return await Message.find_one({"dedupe_key": dedupe_key})


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


async def get_visible(*, viewer: User, number: int) -> Ticket:
    """The ticket, or NotFound also when the viewer may not see it (no existence leak)."""
    ticket = await Ticket.find_one({"number": number, **_visible_filter(viewer)})
    if ticket is None:
        raise NotFound(f"ticket {number} not found")
    return ticket


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
    messages = await Message.find({"ticket_number": number}).sort("created_at").to_list()
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


async def update(*, actor: User, number: int, changes: TicketChanges, outgoing: Outgoing) -> Ticket:
    """Change status, priority, assignee or category. A new assignee (not the actor) is told by mail,
    and so is the customer when the ticket becomes solved."""
    ticket = await get_for_staff(viewer=actor, number=number)
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
    if not values:
        return ticket
    now = utcnow()
    values["updated_at"] = ticket.updated_at = now
    if ticket.assignee is not None and ticket.assignee != before.assignee:
        values["assigned_at"] = ticket.assigned_at = now
    await Ticket.get_pymongo_collection().update_one({"_id": ticket.id}, {"$set": values})
    log.info("ticket.updated number=%s by=%s fields=%s", number, actor.email, ",".join(sorted(values)))
    if ticket.assignee is not None and ticket.assignee != before.assignee:
        await announce_assignment(ticket, by=actor, reason="assigned by staff", now=now)
    await _notify(ticket, before=before, actor=actor, outgoing=outgoing, now=now)
    return ticket


async def _assignee(email: str | None) -> Participant | None:
    if email is None:
        return None
    user = await users.get_by_email(email)
    if user is None or not user.is_staff or not user.active:
        raise InvalidInput(f"{email} is not an active agent or admin")
    return participant(user)


async def _notify(ticket: Ticket, *, before: Ticket, actor: User, outgoing: Outgoing, now: datetime) -> None:
    assignee = ticket.assignee
    if assignee is not None and assignee.user_id != actor.id and assignee != before.assignee:
        await outbound.queue_automatic(
            outgoing=outgoing,
            template=TemplateKind.TICKET_ASSIGNED,
            to=assignee.email,
            subject=compose.ticket_subject(ticket.subject, ticket.number, prefix="Assigned to you: "),
            context={
                "ticket": outbound.ticket_context(ticket),
                "agent_name": assignee.name,
                "assigned_by": actor.name or actor.email,
                "requester": ticket.requester.model_dump(include={"email", "name"}),
                "triage": None,
            },
            now=now,
            ticket=ticket,
            thread=False,
        )
    if ticket.status is TicketStatus.SOLVED and before.status is not TicketStatus.SOLVED:
        await outbound.queue_automatic(
            outgoing=outgoing,
            template=TemplateKind.TICKET_SOLVED,
            to=ticket.requester.email,
            subject=compose.ticket_subject(ticket.subject, ticket.number),
            context={"ticket": outbound.ticket_context(ticket), "customer_name": ticket.requester.name},
            now=now,
            ticket=ticket,
        )


async def announce_assignment(ticket: Ticket, *, by: User | None, reason: str, now: datetime) -> None:
    """`ticket/assigned`: `by` is None for automatic assignment (the assignee is then told by mail)."""
    assert ticket.assignee is not None
    await events.emit(
        events.TICKET_ASSIGNED,
        key=f"{events.TICKET_ASSIGNED} {ticket.id} {ticket.assignee.user_id} {now.isoformat()}",
        data={
            **ticket_ref(ticket),
            "assignee_id": str(ticket.assignee.user_id),
            "by": str(by.id) if by is not None else None,
            "reason": reason,
        },
    )
