"""The SMTP listener end to end: real aiosmtpd on 127.0.0.1, stdlib smtplib client, the real store."""

from __future__ import annotations

import hashlib
import smtplib

import pytest

from helpgate.gateway import Gateway
from helpgate.inbound import raw_messages
from helpgate.models import Message, RawMessage, RawStatus, Ticket, User
from tests.mail import SPOOFING_SENDERS, make_mail, raw_mail, send


async def test_mail_becomes_ticket_with_customer_subject_text_and_raw(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    mail = make_mail(message_id="<first@example.org>")
    refused = await send(gateway.smtp.port, mail)
    await gateway.worker.idle()

    assert refused == {}
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None
    assert ticket.subject == "Printer on fire"
    assert ticket.requester.email == "jane@example.org"
    assert ticket.requester.name == "Jane Doe"
    customer = await User.find_one({"email": "jane@example.org"})
    assert customer is not None and customer.role == "customer" and customer.password_hash is None
    [message] = await Message.find({"ticket_number": 1}).to_list()
    assert message.text == "Help, the printer is on fire."
    assert message.message_id == "first@example.org"
    raw = await RawMessage.get(message.raw_message_id)
    assert raw is not None and raw.status is RawStatus.PROCESSED and raw.ticket_number == 1
    stored = await raw_messages.read_bytes(raw)
    assert b"Help, the printer is on fire." in stored
    assert raw.sha256 == hashlib.sha256(stored).hexdigest()


async def test_reply_naming_ticket_message_is_appended(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    reply = make_mail(
        subject="Re: Printer on fire",
        body="It is still burning.",
        message_id="<second@example.org>",
        in_reply_to="<first@example.org>",
        references="<first@example.org>",
    )
    await send(gateway.smtp.port, reply)
    # References alone (In-Reply-To dropped, as some clients do) also threads.
    third = make_mail(subject="More", message_id="<third@example.org>", references="<x@y> <second@example.org>")
    await send(gateway.smtp.port, third)
    await gateway.worker.idle()

    assert await Ticket.find_all().count() == 1
    messages = await Message.find({"ticket_number": 1}).sort("created_at").to_list()
    assert [m.message_id for m in messages] == ["first@example.org", "second@example.org", "third@example.org"]
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.message_count == 3


async def test_new_thread_opens_next_ticket_number(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    for index in range(3):
        await send(gateway.smtp.port, make_mail(subject=f"Question {index}", in_reply_to="<unknown@elsewhere>"))
    await gateway.worker.idle()
    tickets = await Ticket.find_all().sort("number").to_list()
    assert [(t.number, t.subject) for t in tickets] == [(1, "Question 0"), (2, "Question 1"), (3, "Question 2")]


async def test_same_message_delivered_twice_is_one_ticket_message(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    mail = make_mail(message_id="<twice@example.org>")
    await send(gateway.smtp.port, mail)
    await send(gateway.smtp.port, mail)
    await gateway.worker.idle()

    assert await Message.find_all().count() == 1
    statuses = sorted(raw.status for raw in await RawMessage.find_all().to_list())
    assert statuses == [RawStatus.DUPLICATE, RawStatus.PROCESSED]


async def test_same_message_id_on_another_mail_to_another_mailbox_is_not_a_duplicate(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<both@example.org>"))
    billing = make_mail(to="billing@localhost", message_id="<both@example.org>")
    await send(gateway.smtp.port, billing, recipients=["billing@localhost"])
    await gateway.worker.idle()
    first, second = await Message.find_all().sort("created_at").to_list()
    assert (first.flags, second.flags) == ([], ["reused_message_id"])


async def test_missing_message_id_gets_synthetic_one_and_still_dedupes(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    raw = b"From: bob@example.net\r\nTo: support@localhost\r\nSubject: no id\r\n\r\nhello\r\n"
    await send(gateway.smtp.port, raw, sender="bob@example.net")
    await send(gateway.smtp.port, raw, sender="bob@example.net")
    await gateway.worker.idle()
    [message] = await Message.find_all().to_list()
    assert message.message_id == f"sha256-{hashlib.sha256(raw).hexdigest()}@helpgate.invalid"


async def test_unknown_recipient_refused_at_rcpt_with_550(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send(gateway.smtp.port, make_mail(to="nobody@localhost"), recipients=["nobody@localhost"])
    code, reply = refused.value.recipients["nobody@localhost"]
    assert code == 550 and b"5.1.1" in reply
    assert await RawMessage.find_all().count() == 0


async def test_mixed_recipients_keep_only_support_ones(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    refused = await send(gateway.smtp.port, make_mail(), recipients=["nobody@localhost", "SUPPORT@localhost"])
    await gateway.worker.idle()
    assert refused["nobody@localhost"][0] == 550
    [raw] = await RawMessage.find_all().to_list()
    assert raw.envelope_to == ["support@localhost"] and raw.mailbox == "support@localhost"


@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": 2048}])
async def test_message_over_size_limit_gets_552(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    with pytest.raises(smtplib.SMTPException) as error:
        await send(gateway.smtp.port, make_mail(body="x" * 4096))
    assert "552" in str(error.value)
    assert await RawMessage.find_all().count() == 0


async def test_message_without_sender_is_quarantined_with_reason(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    raw = b"To: support@localhost\r\nSubject: anonymous\r\nMessage-ID: <anon@x>\r\n\r\nwho am I\r\n"
    await send(gateway.smtp.port, raw)
    await gateway.worker.idle()
    [stored] = await RawMessage.find_all().to_list()
    assert stored.status is RawStatus.QUARANTINED
    assert stored.reason == "no usable From address"
    assert await Ticket.find_all().count() == 0
    assert await raw_messages.read_bytes(stored) == raw


async def test_large_mail_is_kept_in_gridfs_and_read_back_whole(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    body = "".join(f"line {n:07d} of a long log the customer pasted\n" for n in range(20_000))  # ~1 MB
    await send(gateway.smtp.port, make_mail(body=body, message_id="<big@example.org>"))
    await gateway.worker.idle()
    [raw] = await RawMessage.find_all().to_list()
    assert raw.size > raw_messages.INLINE_MAX_BYTES
    assert raw.data is None and raw.gridfs_id is not None and raw.status is RawStatus.PROCESSED
    stored = await raw_messages.read_bytes(raw)
    assert len(stored) == raw.size and hashlib.sha256(stored).hexdigest() == raw.sha256
    [message] = await Message.find_all().to_list()
    assert message.text.startswith("line 0000000 of a long log")


async def test_small_mail_is_kept_inline(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail())
    await gateway.worker.idle()
    [raw] = await RawMessage.find_all().to_list()
    assert raw.data is not None and raw.gridfs_id is None


async def test_encoded_word_in_the_from_address_never_opens_a_ticket_for_someone_else(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<real@example.org>"))  # jane's own ticket
    for number, (sender, _usable) in enumerate(SPOOFING_SENDERS):
        mail = raw_mail(sender=sender, subject=f"Invoice {number}", message_id=f"<spoof{number}@attacker.example>")
        assert await send(gateway.smtp.port, mail, sender="x@attacker.example") == {}
    await gateway.worker.idle()

    tickets = await Ticket.find_all().sort("number").to_list()
    assert [t.requester.email for t in tickets].count("jane@example.org") == 1  # only her real mail
    for ticket in tickets[1:]:
        shown = f"{ticket.requester.name} {ticket.requester.email}"
        assert "jane@example.org" not in shown and shown.isprintable() and ticket.requester.email.count("@") == 1
    assert len(tickets) == 1 + sum(usable for _, usable in SPOOFING_SENDERS)
    assert await Message.find({"from_email": "jane@example.org"}).count() == 1
    quarantined = await RawMessage.find({"status": RawStatus.QUARANTINED}).to_list()
    assert [raw.reason for raw in quarantined] == ["no usable From address"] * 2
