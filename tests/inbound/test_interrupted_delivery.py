"""A delivery cut off after its message was stored (the instance was killed) is finished when the mail is taken up
again: the ticket is announced, so triage and the acknowledgement follow, instead of the mail being called a
duplicate of itself.

Each test delivers mail through the real pipeline and store, then puts the store back the way a kill at that point
leaves it: the raw mail still `received`, its message stored, what came after the insert missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.inbound import pipeline, raw_messages
from helpgate.models import Message, OutboxEvent, RawMessage, RawStatus, Ticket, TicketStatus
from helpgate.outbox import events
from helpgate.tickets import tickets
from tests.mail import make_mail


async def deliver(data: bytes) -> RawMessage:
    raw = await raw_messages.store(data=data, source="smtp", mailbox="support@localhost")
    assert await pipeline.process(raw) is RawStatus.PROCESSED
    return raw


async def cut_off(raw: RawMessage, *, event: str) -> RawMessage:
    """The raw mail as the killed instance left it: `received`, the event that follows the insert never stored."""
    await OutboxEvent.find({"name": event}).delete()
    await RawMessage.get_pymongo_collection().update_one(
        {"_id": raw.id}, {"$set": {"status": RawStatus.RECEIVED, "ticket_number": None}}
    )
    again = await RawMessage.get(raw.id)
    assert again is not None
    return again


async def the_ticket(number: int = 1) -> Ticket:
    ticket = await Ticket.find_one({"number": number})
    assert ticket is not None
    return ticket


async def announced(name: str) -> int:
    return await OutboxEvent.find({"name": name}).count()


async def test_a_new_ticket_cut_off_before_its_announcement_is_announced_on_retry(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    raw = await deliver(bytes(make_mail(message_id="<first@example.org>")))
    # Killed after the message insert (the ticket was inserted counting it): nothing announced. The body as a
    # version that kept it in a later write left it: not kept yet.
    await Message.get_pymongo_collection().update_one({}, {"$set": {"full_text": ""}})
    raw = await cut_off(raw, event=events.TICKET_CREATED)

    assert await pipeline.process(raw) is RawStatus.PROCESSED
    ticket = await the_ticket()
    assert ticket.message_count == 1
    assert await announced(events.TICKET_CREATED) == 1
    [message] = await Message.find_all().to_list()
    assert message.full_text.startswith("Help, the printer is on fire.")
    stored = await RawMessage.get(raw.id)
    assert stored is not None and stored.status is RawStatus.PROCESSED and stored.ticket_number == 1
    assert await Ticket.find_all().count() == 1


async def test_a_ticket_cut_off_before_its_first_message_is_opened_not_answered(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """A first mail whose subject reads like a reply finds its own half-made ticket by subject on the retry."""
    raw = await deliver(bytes(make_mail(subject="Re: Printer on fire", message_id="<first@example.org>")))
    # Killed after the ticket insert (which counts its first message), before that message was stored.
    await Message.find_all().delete()
    raw = await cut_off(raw, event=events.TICKET_CREATED)

    assert await pipeline.process(raw) is RawStatus.PROCESSED
    assert (await the_ticket()).message_count == 1
    assert await announced(events.TICKET_CREATED) == 1
    assert await announced(events.TICKET_MESSAGE_RECEIVED) == 0
    assert await Ticket.find_all().count() == 1 and await Message.find_all().count() == 1


async def test_a_ticket_the_previous_version_left_uncounted_is_counted_when_its_first_message_comes(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """The previous version inserted a ticket with no messages counted and counted its first message in a later
    write: a kill between the two, then an upgrade, leaves a ticket at 0."""
    raw = await deliver(bytes(make_mail(message_id="<first@example.org>")))
    await Message.find_all().delete()
    await Ticket.get_pymongo_collection().update_one(
        {"number": 1}, {"$set": {"message_count": 0}, "$unset": {"applied": ""}}
    )
    raw = await cut_off(raw, event=events.TICKET_CREATED)

    assert await pipeline.process(raw) is RawStatus.PROCESSED
    assert (await the_ticket()).message_count == 1
    assert await Ticket.find_all().count() == 1 and await Message.find_all().count() == 1


async def test_a_reply_cut_off_before_the_ticket_update_is_counted_reopens_and_is_announced(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    await deliver(bytes(make_mail(message_id="<first@example.org>")))
    first = await the_ticket()
    assert first.id is not None
    await tickets.apply_update(first.id, {"$set": {"status": TicketStatus.PENDING}})  # the agent answered
    pending = await the_ticket()
    reply = make_mail(
        subject="Re: Printer on fire", message_id="<second@example.org>", in_reply_to="<first@example.org>"
    )
    reply["Cc"] = "bob@example.org"
    raw = await deliver(bytes(reply))
    assert (await the_ticket()).message_count == 2

    # Killed between the message insert and the ticket update: the ticket as it was before the reply.
    await tickets.apply_update(
        first.id,
        {
            "$set": {
                "status": TicketStatus.PENDING,
                "updated_at": pending.updated_at,
                "participants": ["jane@example.org"],
            },
            "$inc": {"message_count": -1},
            "$pop": {"applied": 1},  # the reply's key, recorded with the update that never happened
        },
    )
    raw = await cut_off(raw, event=events.TICKET_MESSAGE_RECEIVED)

    assert await pipeline.process(raw) is RawStatus.PROCESSED
    ticket = await the_ticket()
    assert ticket.message_count == 2 and ticket.status is TicketStatus.OPEN
    assert ticket.participants == ["jane@example.org", "bob@example.org"]
    assert await announced(events.TICKET_MESSAGE_RECEIVED) == 1
    assert await Message.find_all().count() == 2


async def test_a_delivery_cut_off_after_its_last_step_changes_nothing_when_finished_again(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    await deliver(bytes(make_mail(message_id="<first@example.org>")))
    raw = await deliver(
        bytes(
            make_mail(
                subject="Re: Printer on fire", message_id="<second@example.org>", in_reply_to="<first@example.org>"
            )
        )
    )
    before = await the_ticket()
    # Killed before the raw mail was marked processed: everything else is done.
    await RawMessage.get_pymongo_collection().update_one({"_id": raw.id}, {"$set": {"status": RawStatus.RECEIVED}})
    again = await RawMessage.get(raw.id)
    assert again is not None

    assert await pipeline.process(again) is RawStatus.PROCESSED
    after = await the_ticket()
    assert after.message_count == before.message_count == 2
    assert _ms(after.updated_at) == _ms(before.updated_at)
    assert await announced(events.TICKET_MESSAGE_RECEIVED) == 1 and await announced(events.TICKET_CREATED) == 1
    # Once marked, the same raw mail is a duplicate again (`helpgate replay` of a processed mail), and so is
    # another copy of the mail.
    marked = await RawMessage.get(raw.id)
    assert marked is not None and await pipeline.process(marked) is RawStatus.DUPLICATE
    copy = await raw_messages.store(
        data=await raw_messages.read_bytes(marked), source="smtp", mailbox="support@localhost"
    )
    assert await pipeline.process(copy) is RawStatus.DUPLICATE
    assert (await the_ticket()).message_count == 2


async def test_a_reply_the_previous_version_counted_before_it_was_cut_off_is_not_counted_again(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """The previous version recorded no message keys on the ticket: a reply it counted, cut off before its
    announcement, is announced after the upgrade and not counted twice."""
    await deliver(bytes(make_mail(message_id="<first@example.org>")))
    reply = make_mail(
        subject="Re: Printer on fire", message_id="<second@example.org>", in_reply_to="<first@example.org>"
    )
    raw = await deliver(bytes(reply))
    await Ticket.get_pymongo_collection().update_one({"number": 1}, {"$unset": {"applied": ""}})
    raw = await cut_off(raw, event=events.TICKET_MESSAGE_RECEIVED)

    assert await pipeline.process(raw) is RawStatus.PROCESSED
    assert (await the_ticket()).message_count == 2
    assert await announced(events.TICKET_MESSAGE_RECEIVED) == 1


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
