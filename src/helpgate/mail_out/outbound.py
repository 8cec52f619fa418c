"""The outbound queue: prepare a mail from a template and queue it, once per Message-ID.

Every mail is an OutboundMail (mail_out/models/outbound.py has the state diagram); mail_out/deliveries.py
moves it through its delivery states.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from gridfs import AsyncGridFSBucket
from pymongo.errors import DuplicateKeyError

from helpgate.core import rate_limits
from helpgate.mail_out import compose
from helpgate.mail_out.outgoing import Handover, Outgoing
from helpgate.mail_out.templates import TemplateKind
from helpgate.models import (
    AttachmentRef,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    OutboundMail,
    Ticket,
    Transition,
)
from helpgate.tickets import attachments

log = logging.getLogger(__name__)


def ticket_context(ticket: Ticket) -> dict[str, Any]:
    """What templates may know about a ticket."""
    return {"number": ticket.number, "subject": ticket.subject, "status": str(ticket.status)}


@dataclass(frozen=True)
class Parent:
    """The mail ours answers, when the caller knows it (the acknowledgement: the mail that opened the ticket)."""

    message_id: str
    references: list[str]


async def thread_parent(ticket_number: int) -> Message | None:
    """The customer's newest mail on the ticket: what our next mail answers."""
    found = (
        await Message.find(
            {
                "ticket_number": ticket_number,
                "direction": Direction.INBOUND,
                "kind": MessageKind.EMAIL,
                "message_id": {"$ne": None},
            }
        )
        .sort("-created_at")
        .limit(1)
        .to_list()
    )
    return found[0] if found else None


async def prepare(
    *,
    outgoing: Outgoing,
    template: TemplateKind,
    to: list[str],
    subject: str,
    context: dict[str, Any],
    now: datetime,
    automatic: bool,
    ticket: Ticket | None = None,
    thread: bool = True,
    cc: Sequence[str] = (),
    message_ref: PydanticObjectId | None = None,
    attachments: Sequence[AttachmentRef] = (),
    idempotency: str | None = None,
    answers: Parent | None = None,
) -> OutboundMail:
    """An OutboundMail ready to queue: signed Message-ID, threading headers, reply address, rendered parts.

    With `idempotency` the Message-ID is derived from it, so queuing the same mail again finds the first.
    It answers `answers`, else the customer's newest mail on the ticket (read from the store).
    """
    in_reply_to: str | None = None
    references: list[str] = []
    if ticket is not None and thread:
        parent = answers or await thread_parent(ticket.number)
        if parent is not None:
            in_reply_to = parent.message_id
            references = compose.references_after(parent.message_id, parent.references)
    rendered = outgoing.templates.render(template, **{"support_name": outgoing.display_name, **context})
    # Mail about a ticket is From the address the customer wrote to, whatever sends it (SPF and DMARC align
    # with that domain); mail about no ticket is From a mailbox only when that mailbox sends it.
    written_to = ticket.mailbox if ticket is not None and ticket.mailbox else None
    sender = await outgoing.route(written_to)
    mail_from = written_to or (sender.address if sender is not None else outgoing.from_address)
    return OutboundMail(
        key=outgoing.new_message_id(
            ticket.number if ticket else None, seed=idempotency, domain=mail_from.rpartition("@")[2]
        ),
        template=str(template),
        automatic=automatic,
        ticket_id=ticket.id if ticket else None,
        ticket_number=ticket.number if ticket else None,
        message_ref=message_ref,
        mail_from=mail_from,
        via_mailbox=sender.mailbox_id if sender is not None else None,
        from_name=(sender.name if sender is not None and sender.name else outgoing.from_name),
        to=list(to),
        cc=[address for address in cc if address not in to],
        reply_to=outgoing.reply_address(ticket.number, ticket.mailbox) if ticket and thread else None,
        subject=subject,
        in_reply_to=in_reply_to,
        references=references,
        text=rendered.text,
        html=rendered.html,
        attachments=list(attachments),
        date=now,
        next_attempt_at=now,
        created_at=now,
        history=[Transition(status=DeliveryStatus.QUEUED, at=now, detail="queued")],
    )


async def enqueue(
    mail: OutboundMail, *, loop_marker: str, handover: Handover | None = None, screened: bool = False
) -> OutboundMail:
    """Store a prepared mail. Its Message-ID is its idempotency key: queuing it again finds the first copy.

    With a `handover` that has room, the mail is stored already claimed by that worker (as the dispatcher's
    claim leaves it) and handed to it: no query finds it, no second write claims it. A mail answering a stored
    message (`message_ref`) always goes through the queue, whose dispatcher checks that message exists.
    `screened`: the caller has just checked the recipients against the suppressions, so the worker need not.

    A mail without attachments is composed now (`loop_marker` is its X-Loop value) and stored with its
    bytes, so the sender only sends them; one with attachments is composed when sent (its files stay in GridFS).
    Should composing fail here, the mail is queued all the same: the sender composes it again and records the
    failure on the mail, where agents see it, instead of the reply or the workflow step failing.
    """
    if not mail.attachments:
        try:
            mail.data = compose.build(mail, [], loop_marker=loop_marker).as_bytes()
        except Exception:
            log.exception("outbound.compose_failed key=%s: queued uncomposed; the sender tries again", mail.key)
    claim = handover.claim(mail.created_at) if handover is not None and mail.message_ref is None else None
    if claim is not None:
        token, until = claim
        mail.status, mail.claim, mail.lease_until, mail.attempts = DeliveryStatus.SENDING, token, until, 1
        mail.history.append(Transition(status=DeliveryStatus.SENDING, at=mail.created_at, detail="claimed"))
    try:
        await mail.insert()
    except DuplicateKeyError:
        existing = await OutboundMail.find_one({"key": mail.key})
        assert existing is not None
        return existing
    log.info(
        "outbound.queued key=%s template=%s ticket=%s to=%s",
        mail.key,
        mail.template,
        mail.ticket_number,
        ",".join(mail.recipients),
    )
    if claim is not None and handover is not None:
        handover.take(mail, screened=screened)
    return mail


async def queue_automatic(
    *,
    outgoing: Outgoing,
    template: TemplateKind,
    to: str,
    subject: str,
    context: dict[str, Any],
    now: datetime,
    ticket: Ticket | None = None,
    thread: bool = True,
    idempotency: str | None = None,
    to_staff: bool = False,
    screened: bool = False,
    answers: Parent | None = None,
) -> OutboundMail | None:
    """Queue an automatic mail (Auto-Submitted), unless the recipient's rate limit says no: then None.
    `screened`: the caller has just found `to` not suppressed.

    `to_staff` (an agent or admin of ours) skips the rate limit: it guards against loops with outside
    mailers, and a busy agent must not stop hearing about the tickets given to them.

    With `idempotency` (say, a workflow run and step), a mail already queued under that key is returned
    as it is: a retried step neither queues it twice nor spends the recipient's rate limit again.
    """
    number = ticket.number if ticket else None
    # The mail's key: a retried step is counted once by the rate limit, and its insert finds the first copy.
    key = None if idempotency is None else outgoing.new_message_id(number, seed=idempotency)
    refusal = (
        None if to_staff else await rate_limits.allow_automatic(recipient=to, ticket_number=number, now=now, once=key)
    )
    if refusal is not None:
        log.warning("outbound.rate_limited template=%s to=%s reason=%s", template, to, refusal)
        return None
    mail = await prepare(
        outgoing=outgoing,
        template=template,
        to=[to],
        subject=subject,
        context=context,
        now=now,
        automatic=True,
        ticket=ticket,
        thread=thread,
        idempotency=idempotency,
        answers=answers,
    )
    mail = await enqueue(mail, loop_marker=outgoing.loop_marker, handover=outgoing.handover(), screened=screened)
    if mail.claim is None:
        outgoing.wake()
    return mail


async def queue_assigned(
    *,
    outgoing: Outgoing,
    ticket: Ticket,
    to: str,
    agent_name: str,
    assigned_by: str,
    triage: dict[str, Any] | None,
    now: datetime,
    idempotency: str | None = None,
) -> OutboundMail | None:
    """The `ticket_assigned` mail to an agent or admin (not rate-limited: see `queue_automatic`)."""
    return await queue_automatic(
        outgoing=outgoing,
        template=TemplateKind.TICKET_ASSIGNED,
        to=to,
        subject=compose.ticket_subject(ticket.subject, ticket.number, prefix="Assigned to you: "),
        context={
            "ticket": ticket_context(ticket),
            "agent_name": agent_name,
            "assigned_by": assigned_by,
            "requester": ticket.requester.model_dump(include={"email", "name"}),
            "triage": triage,
        },
        now=now,
        ticket=ticket,
        thread=False,
        idempotency=idempotency,
        to_staff=True,
    )


# --- attachments ----------------------------------------------------------------------------------------


def _bucket() -> AsyncGridFSBucket:
    return AsyncGridFSBucket(OutboundMail.get_pymongo_collection().database, bucket_name=attachments.BUCKET)


async def read_files(mail: OutboundMail) -> list[tuple[AttachmentRef, bytes]]:
    files = []
    for ref in mail.attachments:
        stream = await _bucket().open_download_stream(ref.gridfs_id)
        files.append((ref, await stream.read()))
    return files


async def for_ticket(number: int) -> dict[PydanticObjectId, OutboundMail]:
    """The mail delivering each message of a ticket, by message id."""
    mails = await OutboundMail.find({"ticket_number": number, "message_ref": {"$ne": None}}).to_list()
    return {mail.message_ref: mail for mail in mails if mail.message_ref is not None}


async def get(key: str) -> OutboundMail | None:
    return await OutboundMail.find_one({"key": key})
