"""What is a duplicate: the same Message-ID and the same content, whichever of our addresses or transports the copy
came by. A different mail that reuses a Message-ID is a message of its own, flagged, and threaded by its own
headers; messages stored before fingerprints existed are still recognised."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.inbound import pipeline, raw_messages
from helpgate.models import Message, RawMessage, RawStatus, Role, Ticket
from tests.conftest import login, make_user
from tests.dovecot import Dovecot
from tests.inbound.test_imap import add_mailbox, eventually, processed
from tests.mail import make_mail, send

#: One mail to two of our addresses, as its sender wrote it.
TO_BOTH = make_mail(to="support@localhost, billing@localhost", message_id="<both@example.org>")


async def statuses() -> list[RawStatus]:
    return sorted(raw.status for raw in await RawMessage.find_all().to_list())


async def test_one_mail_reaching_two_of_our_addresses_is_one_message(gateway: Gateway) -> None:
    """Two deliveries (another MTA splits the recipients): the ticket keeps the first address, the message both."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, TO_BOTH, recipients=["support@localhost"])
    await send(gateway.smtp.port, TO_BOTH, recipients=["billing@localhost"])
    await gateway.worker.idle()

    [message] = await Message.find_all().to_list()
    assert message.delivered_to == ["support@localhost", "billing@localhost"]
    assert message.flags == []
    [ticket] = await Ticket.find_all().to_list()
    assert ticket.mailbox == "support@localhost"
    assert await statuses() == [RawStatus.DUPLICATE, RawStatus.PROCESSED]


async def test_the_same_mail_by_smtp_and_by_imap_is_one_message(gateway: Gateway, dovecot: Dovecot) -> None:
    """The IMAP copy went through another MTA: trace headers added, line endings and folding its own."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, TO_BOTH)
    await gateway.worker.idle()
    relayed = (
        b"Return-Path: <jane@example.org>\r\n"
        b"Received: from mx.example.org by imap.localhost; Thu, 03 Dec 2026 10:00:01 +0000\r\n"
        b"Delivered-To: billing@localhost\r\n" + bytes(TO_BOTH)
    )
    dovecot.append([relayed])
    await add_mailbox(gateway, dovecot, address="billing@localhost")
    await eventually(lambda: raw_count(2), what="the IMAP copy stored")
    await eventually(lambda: processed(gateway, 1), what="the IMAP copy finished")

    [message] = await Message.find_all().to_list()
    assert message.delivered_to == ["support@localhost", "billing@localhost"]
    assert await statuses() == [RawStatus.DUPLICATE, RawStatus.PROCESSED]


async def raw_count(expected: int) -> bool:
    return await RawMessage.find_all().count() == expected


async def test_another_mail_with_a_reused_message_id_is_a_new_ticket_flagged_for_staff(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    """Some mailers send every mail with one Message-ID: each is still delivered, and nothing threads on the ID."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<form@shop.example>", subject="Order 1"))
    other = make_mail(sender="Bob <bob@example.net>", message_id="<form@shop.example>", subject="Order 2")
    await send(gateway.smtp.port, other, sender="bob@example.net")
    await gateway.worker.idle()

    assert await statuses() == [RawStatus.PROCESSED, RawStatus.PROCESSED]
    tickets = await Ticket.find_all().sort("number").to_list()
    assert [(t.number, t.subject, t.requester.email) for t in tickets] == [
        (1, "Order 1", "jane@example.org"),
        (2, "Order 2", "bob@example.net"),
    ]
    await make_user("agent@example.com", Role.AGENT)
    detail = (await api.get("/api/tickets/2", headers=await login(api, "agent@example.com"))).json()
    assert detail["messages"][0]["flags"] == ["reused_message_id"]


async def test_a_reply_naming_a_reused_message_id_joins_the_ticket_its_sender_takes_part_in(
    gateway: Gateway,
) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<form@shop.example>", subject="Order 1"))
    bob = make_mail(sender="bob@example.net", message_id="<form@shop.example>", subject="Order 2")
    await send(gateway.smtp.port, bob, sender="bob@example.net")
    await gateway.worker.idle()

    reply = make_mail(sender="bob@example.net", subject="Re: my order", in_reply_to="<form@shop.example>")
    await send(gateway.smtp.port, reply, sender="bob@example.net")
    stranger = make_mail(sender="eve@example.com", subject="Re: an order", in_reply_to="<form@shop.example>")
    await send(gateway.smtp.port, stranger, sender="eve@example.com")
    await gateway.worker.idle()

    by_ticket = {m.from_email: m.ticket_number for m in await Message.find({"subject": {"$regex": "^Re:"}}).to_list()}
    assert by_ticket == {"bob@example.net": 2, "eve@example.com": 3}


async def test_messages_stored_before_fingerprints_are_still_recognised(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """A store from the previous version: messages keyed "<mailbox> <Message-ID>", with no fingerprint."""
    mail = bytes(TO_BOTH)
    first = await raw_messages.store(data=mail, source="smtp", mailbox="support@localhost")
    assert await pipeline.process(first) is RawStatus.PROCESSED
    gone = bytes(make_mail(message_id="<purged@example.org>", subject="Old one"))
    old = await raw_messages.store(data=gone, source="smtp", mailbox="support@localhost")
    assert await pipeline.process(old) is RawStatus.PROCESSED
    for message in await Message.find_all().to_list():
        legacy: dict[str, object] = {
            "dedupe_key": f"support@localhost {message.message_id}",
            "fingerprint": None,
            "delivered_to": [],
        }
        await Message.get_pymongo_collection().update_one({"_id": message.id}, {"$set": legacy})
    await RawMessage.get_pymongo_collection().update_one(
        {"_id": old.id}, {"$set": {"data": None, "purged_at": utcnow()}}
    )

    # Its raw mail kept: the fingerprint is worked out from it (and kept), so a copy to another address is known.
    copy = await raw_messages.store(data=mail, source="smtp", mailbox="billing@localhost")
    assert await pipeline.process(copy) is RawStatus.DUPLICATE
    stored = await Message.find_one({"message_id": "both@example.org"})
    assert stored is not None and stored.fingerprint is not None
    # Its raw mail purged: the rule of that time, the same Message-ID to the same address.
    again = await raw_messages.store(data=gone, source="smtp", mailbox="support@localhost")
    assert await pipeline.process(again) is RawStatus.DUPLICATE
    elsewhere = await raw_messages.store(data=gone, source="smtp", mailbox="billing@localhost")
    assert await pipeline.process(elsewhere) is RawStatus.PROCESSED
    assert await Message.find_all().count() == 3


async def test_copies_processed_at_once_store_one_message(store: AsyncMongoClient[dict[str, Any]]) -> None:
    """Two instances finishing copies of one mail at the same moment: the unique key keeps one message (the copy
    that lost the race may be recorded as processed on the same ticket rather than as a duplicate)."""
    copies = [
        await raw_messages.store(data=bytes(TO_BOTH), source="smtp", mailbox=mailbox)
        for mailbox in ("support@localhost", "billing@localhost")
    ]
    results = await asyncio.gather(*(pipeline.process(raw) for raw in copies))
    assert RawStatus.PROCESSED in results and RawStatus.QUARANTINED not in results
    assert await Message.find_all().count() == 1
    [ticket] = await Ticket.find_all().to_list()
    assert {raw.ticket_number for raw in await RawMessage.find_all().to_list()} == {ticket.number}
