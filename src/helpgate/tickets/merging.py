"""Merging a ticket into another: stricter threading splits some conversations, and this is how agents join
them again. The ticket merged (`source`) is closed with `merged_into`; its messages, their attachments and
deliveries move to the one that remains (`target`), which takes its participants and Outlook conversation
roots; mail answering either lands on the target (threading follows `merged_into`). Audited, and announced
(`ticket/updated` for the source, `ticket/merged` for the target).

Only tickets of one requester merge: a customer sees every message of their ticket, so merging another
customer's ticket in would show them that customer's mail.

One unit, like a staff change (tickets/unfinished.py): an UnfinishedChange record (`merge_into`) is written before
the claim, the claim pushes its key on the source, and `finish_merge` moves the messages, audits and announces, each
step idempotent, then deletes the record. Cut off part-way, the merge is finished by `helpgate serve` within a
minute or two, or at once by asking again.
"""

from __future__ import annotations

import logging

from beanie import PydanticObjectId

from helpgate.audit import audit
from helpgate.core.clock import stored, utcnow
from helpgate.core.errors import Conflict, InvalidInput
from helpgate.models import (
    Attachment,
    AuditAction,
    Message,
    OutboundMail,
    Ticket,
    TicketStatus,
    UnfinishedChange,
    User,
)
from helpgate.outbox import events
from helpgate.tickets import tickets

log = logging.getLogger(__name__)


async def merge(*, actor: User, number: int, into: int) -> Ticket:
    """Merge ticket `number` into ticket `into` as `actor` (staff); the target as it is after."""
    if number == into:
        raise InvalidInput("a ticket cannot be merged into itself")
    source = await tickets.get_for_staff(viewer=actor, number=number)
    target = await tickets.get_for_staff(viewer=actor, number=into)
    if target.merged_into is not None:
        raise Conflict(f"ticket {into} was merged into ticket {target.merged_into}; merge into that one")
    if source.merged_into is not None and source.merged_into != into:
        raise Conflict(f"ticket {number} was merged into ticket {source.merged_into} already")
    if source.requester.email != target.requester.email:
        raise Conflict(
            f"tickets {number} and {into} have different requesters; a customer sees every message of their "
            "ticket, so only tickets of one requester merge"
        )
    assert source.id is not None and target.id is not None
    if source.merged_into is None:
        now = stored(utcnow())
        record = UnfinishedChange(
            id=PydanticObjectId(),
            ticket_id=source.id,
            number=number,
            at=now,
            actor_id=actor.id,
            actor_email=actor.email,
            asked={"merged_into": into},
            values={"merged_into": into, "status": str(TicketStatus.CLOSED), "updated_at": now},
            fields=["status"],
            merge_into=into,
        )
        await record.insert()
        claimed = await tickets.apply_update(source.id, record.write, where={"merged_into": None})
        if not claimed:
            await record.delete()
            raise Conflict(f"ticket {number} was merged meanwhile; reload it")
        await finish_merge(record, source, target, actor=actor)
    elif (unfinished := await UnfinishedChange.find_one({"ticket_id": source.id, "merge_into": into})) is not None:
        await finish_merge(unfinished, source, target, actor=actor)  # cut off part-way: asking again finishes it
    else:
        await _move(source, target)  # finished (nothing left to move), or by an older version
    merged = await tickets.get_by_number(into)
    assert merged is not None
    return merged


async def finish_merge(record: UnfinishedChange, source: Ticket, target: Ticket, *, actor: User | str) -> None:
    """What follows a merge's claim, each part done once however often this runs: the messages, mail and
    attachments move, the target takes the source's participants and thread roots, the audit entry (under the
    record's id), `ticket/updated` for the source and `ticket/merged` for the target (by their keys); then the
    record goes."""
    assert record.merge_into is not None and target.id is not None
    counted = await _move(source, target)
    number, into = record.number, record.merge_into
    await audit.record(
        actor=actor,
        action=AuditAction.TICKET_MERGED,
        target_type="ticket",
        target_id=str(number),
        target_label=source.subject,
        changes=record.asked,
        entry_id=record.id,
    )
    log.info("ticket.merged number=%s into=%s by=%s messages=%d", number, into, record.actor_email, counted)
    source.status, source.merged_into = TicketStatus.CLOSED, into
    await tickets.announce_update(source, fields=record.fields, by=record.actor_id, now=record.at)
    await events.emit(
        events.TICKET_MERGED,
        key=f"{events.TICKET_MERGED} {target.id} {number}",
        data={**tickets.ticket_ref(target), "merged_from": number, "by": str(record.actor_id)},
    )
    await record.delete()


async def _move(source: Ticket, target: Ticket) -> int:
    """The source's messages, outgoing mail and attachments move to the target, which takes its participants and
    thread roots and recounts its messages (how many it has now)."""
    assert source.id is not None and target.id is not None
    moved = {"ticket_id": target.id, "ticket_number": target.number}
    await Message.get_pymongo_collection().update_many({"ticket_id": source.id}, {"$set": moved})
    await OutboundMail.get_pymongo_collection().update_many({"ticket_id": source.id}, {"$set": moved})
    await Attachment.get_pymongo_collection().update_many(
        {"ticket_number": source.number}, {"$set": {"ticket_number": target.number}}
    )
    counted = await Message.get_pymongo_collection().count_documents({"ticket_id": target.id})
    await tickets.apply_update(
        target.id,
        {
            "$set": {"message_count": counted, "updated_at": stored(utcnow())},
            "$addToSet": {
                "participants": {"$each": source.participants},
                "thread_roots": {"$each": source.thread_roots},
                "merged_from": source.number,
            },
        },
    )
    return counted
