"""What agents write on a ticket: replies, mailed to the customer, and internal notes, never mailed.

A reply is one use case: its OutboundMail is queued first, then the message is stored and the ticket moves
to `pending`. A crash in between leaves a queued mail whose message is missing; the worker never sends
such a mail and cancels it after a minute, so the customer never gets what the ticket does not show.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId

from helpgate.accounts import users
from helpgate.core.clock import utcnow
from helpgate.core.errors import PayloadTooLarge
from helpgate.mail_out import compose, outbound
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import TemplateKind, clean_html, paragraphs
from helpgate.models import Attachment, Direction, Message, MessageKind, OutboundMail, Ticket, TicketStatus, User
from helpgate.outbox import events
from helpgate.tickets import attachments, ratings, tickets
from helpgate.tickets.attachments import NewAttachment
from helpgate.tickets.tickets import NewMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewFile:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


async def reply(
    *,
    author: User,
    number: int,
    text: str,
    outgoing: Outgoing,
    html: str | None = None,
    cc: Sequence[str] = (),
    files: Sequence[NewFile] = (),
    status: TicketStatus | None = TicketStatus.PENDING,
) -> tuple[Message, OutboundMail]:
    """Answer the customer: the message on the ticket and the mail that delivers it (queued)."""
    ticket = await tickets.get_for_staff(viewer=author, number=number)
    tickets.refuse_merged(ticket)
    copies = list(dict.fromkeys(users.normalise_email(address) for address in cc))
    size = sum(len(file.data) for file in files)
    if size > outgoing.max_attachment_bytes:
        raise PayloadTooLarge(f"attachments total {size} bytes; at most {outgoing.max_attachment_bytes} are allowed")
    now = utcnow()
    message_ref = PydanticObjectId()
    mail = await outbound.prepare(
        outgoing=outgoing,
        template=TemplateKind.AGENT_REPLY,
        to=[ticket.requester.email],
        cc=copies,
        subject=compose.ticket_subject(ticket.subject, ticket.number),
        context={
            "ticket": outbound.ticket_context(ticket),
            "customer_name": ticket.requester.name,
            "agent_name": author.name,
            "body_text": text,
            "body_html": clean_html(html) if html else paragraphs(text),
        },
        now=now,
        automatic=False,
        ticket=ticket,
        message_ref=message_ref,
    )
    dedupe_key = f"outbound {mail.key}"
    mail.attachments = [stored.ref() for stored in await _store(files, dedupe_key=dedupe_key, ticket=ticket)]
    mail = await outbound.enqueue(mail, loop_marker=outgoing.loop_marker)
    message = await tickets.add_message(
        ticket=ticket,
        message=NewMessage(
            id=message_ref,
            dedupe_key=dedupe_key,
            direction=Direction.OUTBOUND,
            from_email=author.email,
            from_name=author.name,
            to=mail.to,
            cc=mail.cc,
            subject=mail.subject,
            text=text,
            html=html or "",
            attachments=mail.attachments,
            author_id=author.id,
            message_id=mail.key,
            in_reply_to=[mail.in_reply_to] if mail.in_reply_to else [],
            references=mail.references,
        ),
        status=status,
    )
    assert message is not None  # the dedupe key holds a fresh Message-ID
    await _first_response(ticket, at=now)
    await events.emit(
        events.TICKET_REPLIED,
        key=f"{events.TICKET_REPLIED} {message.id}",
        data={**tickets.ticket_ref(ticket), "message_id": str(message.id), "author_id": str(author.id)},
    )
    outgoing.wake()
    log.info("reply.queued ticket=%s by=%s key=%s status=%s", number, author.email, mail.key, ticket.status)
    return message, mail


async def _first_response(ticket: Ticket, *, at: datetime) -> None:
    """Record the first agent reply (the SLA's first response), once."""
    if ticket.first_response_at is None:
        await Ticket.get_pymongo_collection().update_one(
            {"_id": ticket.id, "first_response_at": None}, {"$set": {"first_response_at": at}}
        )
        ticket.first_response_at = at


async def note(*, author: User, number: int, text: str) -> Message:
    """An internal note: stored on the ticket for staff only, never mailed."""
    ticket = await tickets.get_for_staff(viewer=author, number=number)
    tickets.refuse_merged(ticket)
    message = await tickets.add_message(
        ticket=ticket,
        message=NewMessage(
            dedupe_key=f"note {uuid.uuid4().hex}",
            direction=Direction.INTERNAL,
            kind=MessageKind.NOTE,
            from_email=author.email,
            from_name=author.name,
            text=text,
            author_id=author.id,
        ),
    )
    assert message is not None
    await events.emit(
        events.TICKET_NOTE_ADDED,
        key=f"{events.TICKET_NOTE_ADDED} {message.id}",
        data={**tickets.ticket_ref(ticket), "message_id": str(message.id), "author_id": str(author.id)},
    )
    log.info("note.added ticket=%s by=%s", number, author.email)
    return message


async def acknowledge(
    *,
    ticket: Ticket,
    outgoing: Outgoing,
    idempotency: str | None = None,
    screened: bool = False,
    answers: outbound.Parent | None = None,
) -> OutboundMail | None:
    """The automatic "we have your message" (rate-limited; None when the limit says no). `screened`: the caller
    has just found the requester not suppressed."""
    return await _to_requester(
        TemplateKind.TICKET_ACKNOWLEDGEMENT, ticket, outgoing, idempotency, screened=screened, answers=answers
    )


async def tell_solved(*, ticket: Ticket, outgoing: Outgoing, idempotency: str | None = None) -> OutboundMail | None:
    """The automatic "your ticket is solved" (rate-limited; None when the limit says no), with the two links the
    customer rates the answer by (tickets/ratings.py)."""
    rating = ratings.links(ticket.number, base_url=outgoing.public_url, secret=outgoing.secret, now=utcnow())
    return await _to_requester(TemplateKind.TICKET_SOLVED, ticket, outgoing, idempotency, extra={"rating": rating})


async def _to_requester(
    template: TemplateKind,
    ticket: Ticket,
    outgoing: Outgoing,
    idempotency: str | None,
    *,
    screened: bool = False,
    answers: outbound.Parent | None = None,
    extra: dict[str, object] | None = None,
) -> OutboundMail | None:
    return await outbound.queue_automatic(
        outgoing=outgoing,
        template=template,
        to=ticket.requester.email,
        subject=compose.ticket_subject(ticket.subject, ticket.number),
        context={"ticket": outbound.ticket_context(ticket), "customer_name": ticket.requester.name, **(extra or {})},
        now=utcnow(),
        ticket=ticket,
        idempotency=idempotency,
        screened=screened,
        answers=answers,
    )


async def _store(files: Sequence[NewFile], *, dedupe_key: str, ticket: Ticket) -> list[Attachment]:
    return await attachments.store(
        message_key=dedupe_key,
        ticket_number=ticket.number,
        files=[
            NewAttachment(
                part_index=index,
                filename=file.filename,
                content_type=file.content_type,
                data=file.data,
                sha256=hashlib.sha256(file.data).hexdigest(),
            )
            for index, file in enumerate(files, start=1)
        ],
    )
