"""Merging a ticket into another: stricter threading splits some conversations, and this is how agents join
them again. The ticket merged (`source`) is closed with `merged_into`; its messages, their attachments and
deliveries move to the one that remains (`target`), which takes its participants and Outlook conversation
roots; mail answering either lands on the target (threading follows `merged_into`). Audited, and announced
(`ticket/updated` for the source, `ticket/merged` for the target).

Only tickets of one requester merge: a customer sees every message of their ticket, so merging another
customer's ticket in would show them that customer's mail.

A merge cut off part-way is finished by asking again: the source already names the target, and each step
after that claim is idempotent (the audit entry is written once, with the claim).
"""

from __future__ import annotations

import logging

from helpgate.audit import audit
from helpgate.core.clock import stored, utcnow
from helpgate.core.errors import Conflict, InvalidInput
from helpgate.models import Attachment, AuditAction, Message, OutboundMail, Ticket, TicketStatus, User
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
    now = stored(utcnow())
    if source.merged_into is None:
        claimed = await tickets.apply_update(
            source.id,
            {"$set": {"merged_into": into, "status": str(TicketStatus.CLOSED), "updated_at": now}},
            where={"merged_into": None},
        )
        if not claimed:
            raise Conflict(f"ticket {number} was merged meanwhile; reload it")
        await audit.record(
            actor=actor,
            action=AuditAction.TICKET_MERGED,
            target_type="ticket",
            target_id=str(number),
            target_label=source.subject,
            changes={"merged_into": into},
        )
    moved = {"ticket_id": target.id, "ticket_number": into}
    await Message.get_pymongo_collection().update_many({"ticket_id": source.id}, {"$set": moved})
    await OutboundMail.get_pymongo_collection().update_many({"ticket_id": source.id}, {"$set": moved})
    await Attachment.get_pymongo_collection().update_many({"ticket_number": number}, {"$set": {"ticket_number": into}})
    counted = await Message.get_pymongo_collection().count_documents({"ticket_id": target.id})
    await tickets.apply_update(
        target.id,
        {
            "$set": {"message_count": counted, "updated_at": now},
            "$addToSet": {
                "participants": {"$each": source.participants},
                "thread_roots": {"$each": source.thread_roots},
                "merged_from": number,
            },
        },
    )
    log.info("ticket.merged number=%s into=%s by=%s messages=%d", number, into, actor.email, counted)
    source.status, source.merged_into = TicketStatus.CLOSED, into
    await tickets.announce_update(source, fields=["status"], by=actor.id, now=now)
    await events.emit(
        events.TICKET_MERGED,
        key=f"{events.TICKET_MERGED} {target.id} {number}",
        data={**tickets.ticket_ref(target), "merged_from": number, "by": str(actor.id)},
    )
    merged = await tickets.get_by_number(into)
    assert merged is not None
    return merged
