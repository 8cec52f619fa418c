"""The outbound queue: prepare a mail from a template, queue it, and move it through its delivery states.

Every mail is an OutboundMail (core/models/outbound.py has the state diagram). The worker claims one
atomically (queued → sending, with a claim token and a lease); every later transition is conditional on
that token, so a worker that lost its claim can never overwrite the mail's state or send it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from gridfs import AsyncGridFSBucket
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from helpgate.core.mail import compose
from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import TemplateKind
from helpgate.core.models import (
    AttachmentRef,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    OutboundMail,
    Ticket,
    Transition,
)
from helpgate.core.services import attachments, rate_limits

log = logging.getLogger(__name__)


def ticket_context(ticket: Ticket) -> dict[str, Any]:
    """What templates may know about a ticket."""
    return {"number": ticket.number, "subject": ticket.subject, "status": str(ticket.status)}


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
) -> OutboundMail:
    """An OutboundMail ready to queue: signed Message-ID, threading headers, reply address, rendered parts.

    With `idempotency` the Message-ID is derived from it, so queuing the same mail again finds the first.
    """
    in_reply_to: str | None = None
    references: list[str] = []
    if ticket is not None and thread:
        parent = await thread_parent(ticket.number)
        if parent is not None:
            in_reply_to = parent.message_id
            references = compose.references_after(parent.message_id, parent.references)
    rendered = outgoing.templates.render(template, **{"support_name": outgoing.display_name, **context})
    return OutboundMail(
        key=outgoing.new_message_id(ticket.number if ticket else None, seed=idempotency),
        template=str(template),
        automatic=automatic,
        ticket_id=ticket.id if ticket else None,
        ticket_number=ticket.number if ticket else None,
        message_ref=message_ref,
        mail_from=outgoing.from_address,
        from_name=outgoing.from_name,
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


async def enqueue(mail: OutboundMail) -> OutboundMail:
    """Store a prepared mail. Its Message-ID is its idempotency key: queuing it again finds the first copy."""
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
) -> OutboundMail | None:
    """Queue an automatic mail (Auto-Submitted), unless the recipient's rate limit says no: then None.

    `to_staff` (an agent or admin of ours) skips the rate limit: it guards against loops with outside
    mailers, and a busy agent must not stop hearing about the tickets given to them.

    With `idempotency` (say, a workflow run and step), a mail already queued under that key is returned
    as it is: a retried step neither queues it twice nor spends the recipient's rate limit again.
    """
    if idempotency is not None:
        key = outgoing.new_message_id(ticket.number if ticket else None, seed=idempotency)
        existing = await OutboundMail.find_one({"key": key})
        if existing is not None:
            return existing
    refusal = (
        None
        if to_staff
        else await rate_limits.allow_automatic(recipient=to, ticket_number=ticket.number if ticket else None, now=now)
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
    )
    mail = await enqueue(mail)
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


# --- delivery states ------------------------------------------------------------------------------------


def _entry(status: DeliveryStatus, now: datetime, detail: str) -> dict[str, Any]:
    return {"status": str(status), "at": now, "detail": detail}


@dataclass(frozen=True)
class Due:
    """A mail due for sending, as the worker plans its next batch (no bodies loaded)."""

    id: PydanticObjectId
    recipients: list[str]
    message_ref: PydanticObjectId | None
    created_at: datetime


async def due(*, now: datetime, limit: int) -> list[Due]:
    """The next mails due, oldest due first."""
    cursor = (
        OutboundMail.get_pymongo_collection()
        .find(
            {"status": str(DeliveryStatus.QUEUED), "next_attempt_at": {"$lte": now}},
            {"to": 1, "cc": 1, "message_ref": 1, "created_at": 1},
        )
        .sort("next_attempt_at", 1)
        .limit(limit)
    )
    return [
        Due(
            id=PydanticObjectId(document["_id"]),
            recipients=list(dict.fromkeys([*document.get("to", []), *document.get("cc", [])])),
            message_ref=document.get("message_ref"),
            created_at=document["created_at"],
        )
        async for document in cursor
    ]


async def messages_stored(refs: list[PydanticObjectId]) -> set[PydanticObjectId]:
    """Which of these messages exist."""
    if not refs:
        return set()
    cursor = Message.get_pymongo_collection().find({"_id": {"$in": refs}}, {"_id": 1})
    return {PydanticObjectId(document["_id"]) async for document in cursor}


async def claim(
    *, token: str, now: datetime, lease: timedelta, mail_id: PydanticObjectId | None = None
) -> OutboundMail | None:
    """Take a due mail (queued → sending) for this worker, atomically: nobody else can take it.

    The one named by `mail_id` (None when it is no longer queued), or else the next due one."""
    collection = OutboundMail.get_pymongo_collection()
    query: dict[str, Any] = {"status": str(DeliveryStatus.QUEUED), "next_attempt_at": {"$lte": now}}
    update = {
        "$set": {
            "status": str(DeliveryStatus.SENDING),
            "claim": token,
            "lease_until": now + lease,
            "data_started_at": None,
        },
        "$inc": {"attempts": 1},
        "$push": {"history": _entry(DeliveryStatus.SENDING, now, "claimed")},
    }
    if mail_id is None:
        document = await collection.find_one_and_update(
            query, update, sort=[("next_attempt_at", 1)], return_document=ReturnDocument.AFTER
        )
    else:
        # update_one + find_one by _id: on the embedded store find_one_and_update scans the collection.
        result = await collection.update_one({**query, "_id": mail_id}, update)
        document = await collection.find_one({"_id": mail_id, "claim": token}) if result.modified_count else None
    return None if document is None else OutboundMail.model_validate(document)


async def _move(
    mail: OutboundMail,
    status: DeliveryStatus,
    *,
    now: datetime,
    detail: str,
    fields: dict[str, Any] | None = None,
) -> bool:
    """One transition of a claimed mail; False when the claim is no longer ours (nothing is changed)."""
    values = {"status": str(status), **(fields or {})}
    result = await OutboundMail.get_pymongo_collection().update_one(
        {"_id": mail.id, "claim": mail.claim},
        {"$set": values, "$push": {"history": _entry(status, now, detail)}},
    )
    if result.modified_count != 1:
        log.warning("outbound.claim_lost key=%s wanted=%s", mail.key, status)
        return False
    mail.status = status
    for name, value in values.items():
        if name != "status":
            setattr(mail, name, value)
    return True


async def begin_data(mail: OutboundMail, *, now: datetime) -> bool:
    """Record that DATA is about to start (past this point a lost connection may mean it was delivered)."""
    result = await OutboundMail.get_pymongo_collection().update_one(
        {"_id": mail.id, "claim": mail.claim, "status": str(DeliveryStatus.SENDING)},
        {"$set": {"data_started_at": now}},
    )
    if result.modified_count == 1:
        mail.data_started_at = now
    return result.modified_count == 1


async def mark_sent(mail: OutboundMail, *, reply: str, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.SENT,
        now=now,
        detail=reply,
        fields={"smtp_reply": reply, "sent_at": now, "lease_until": None, "last_error": None},
    )


async def mark_retry(mail: OutboundMail, *, error: str, reply: str | None, at: datetime, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.QUEUED,
        now=now,
        detail=f"attempt {mail.attempts} failed, next at {at.isoformat()}: {error}",
        fields={
            "next_attempt_at": at,
            "last_error": error,
            "smtp_reply": reply,
            "claim": None,
            "lease_until": None,
            "data_started_at": None,
        },
    )


async def mark_failed(mail: OutboundMail, *, error: str, reply: str | None, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.FAILED,
        now=now,
        detail=error,
        fields={"last_error": error, "smtp_reply": reply, "lease_until": None},
    )


async def mark_uncertain(mail: OutboundMail, *, error: str, now: datetime) -> bool:
    reason = f"the connection ended during DATA, so the mail may have been delivered; not resent: {error}"
    return await _move(mail, DeliveryStatus.UNCERTAIN, now=now, detail=reason, fields={"last_error": reason})


async def mark_suppressed(mail: OutboundMail, *, reason: str, now: datetime) -> bool:
    return await _move(
        mail, DeliveryStatus.SUPPRESSED, now=now, detail=reason, fields={"last_error": reason, "lease_until": None}
    )


async def mark_cancelled(mail: OutboundMail, *, reason: str, now: datetime) -> bool:
    return await _move(
        mail, DeliveryStatus.CANCELLED, now=now, detail=reason, fields={"last_error": reason, "lease_until": None}
    )


async def release(mail: OutboundMail, *, at: datetime, now: datetime, detail: str) -> bool:
    """Give a claimed mail back before DATA began (shutting down; its reply not stored yet)."""
    return await _move(
        mail,
        DeliveryStatus.QUEUED,
        now=now,
        detail=detail,
        fields={"next_attempt_at": at, "claim": None, "lease_until": None, "data_started_at": None},
    )


async def recover(*, now: datetime) -> tuple[int, int]:
    """Mail left `sending` by a worker that stopped (crash, kill): (queued again, marked uncertain).

    Before DATA nothing can have been delivered, so the mail is queued again. After DATA began it may have
    been, so it becomes `uncertain` and is not resent: at most once. The claim is kept, so the original
    worker, if it is alive after all and gets its 250, still records `sent`.
    """
    collection = OutboundMail.get_pymongo_collection()
    expired = {"status": str(DeliveryStatus.SENDING), "lease_until": {"$lt": now}}
    requeued = await collection.update_many(
        {**expired, "data_started_at": None},
        {
            "$set": {
                "status": str(DeliveryStatus.QUEUED),
                "claim": None,
                "lease_until": None,
                "next_attempt_at": now,
            },
            "$push": {"history": _entry(DeliveryStatus.QUEUED, now, "lease expired before DATA: queued again")},
        },
    )
    reason = "the sender stopped during DATA, so the mail may have been delivered; not resent"
    uncertain = await collection.update_many(
        {**expired, "data_started_at": {"$ne": None}},
        {
            "$set": {"status": str(DeliveryStatus.UNCERTAIN), "last_error": reason},
            "$push": {"history": _entry(DeliveryStatus.UNCERTAIN, now, reason)},
        },
    )
    if requeued.modified_count or uncertain.modified_count:
        log.warning("outbound.recovered requeued=%d uncertain=%d", requeued.modified_count, uncertain.modified_count)
    return requeued.modified_count, uncertain.modified_count


async def next_due() -> datetime | None:
    """When the earliest queued mail falls due."""
    document = await OutboundMail.get_pymongo_collection().find_one(
        {"status": str(DeliveryStatus.QUEUED)}, {"next_attempt_at": 1}, sort=[("next_attempt_at", 1)]
    )
    if document is None:
        return None
    due: datetime = document["next_attempt_at"]
    return due


async def for_ticket(number: int) -> dict[PydanticObjectId, OutboundMail]:
    """The mail delivering each message of a ticket, by message id."""
    mails = await OutboundMail.find({"ticket_number": number, "message_ref": {"$ne": None}}).to_list()
    return {mail.message_ref: mail for mail in mails if mail.message_ref is not None}


async def get(key: str) -> OutboundMail | None:
    return await OutboundMail.find_one({"key": key})
