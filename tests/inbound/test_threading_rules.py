"""Threading rules 3 and 4 and participants, end to end through the SMTP listener; which mail no rule could thread."""

from __future__ import annotations

import base64
import os
from email.message import EmailMessage

import pytest

from helpgate.gateway import Gateway
from helpgate.inbound import mime, threading
from helpgate.mail_out import message_ids
from helpgate.models import Message, Ticket
from tests.mail import make_mail, send


async def _deliver(gateway: Gateway, raw: bytes, sender: str = "jane@example.org") -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, raw, sender=sender)
    await gateway.worker.idle()


def _with_headers(mail: EmailMessage, **headers: str) -> bytes:
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    return bytes(mail)


async def test_cc_recipients_become_participants(gateway: Gateway) -> None:
    mail = make_mail()
    mail["Cc"] = "Boss <Boss@Example.org>, support@localhost"
    await _deliver(gateway, bytes(mail))
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.participants == ["jane@example.org", "boss@example.org", "support@localhost"]


async def test_subject_token_threads_for_a_participant(gateway: Gateway) -> None:
    mail = make_mail()
    mail["Cc"] = "boss@example.org"
    await _deliver(gateway, bytes(mail))
    follow_up = make_mail(sender="boss@example.org", subject="Re: [#1] Printer on fire", body="Any news?")
    await _deliver(gateway, bytes(follow_up), sender="boss@example.org")
    assert await Ticket.find_all().count() == 1
    assert await Message.find({"ticket_number": 1}).count() == 2


async def test_subject_token_from_a_stranger_opens_a_new_ticket(gateway: Gateway) -> None:
    await _deliver(gateway, bytes(make_mail()))
    hijack = make_mail(sender="mallory@evil.example", subject="[#1] I am the customer now", body="refund me")
    await _deliver(gateway, bytes(hijack), sender="mallory@evil.example")
    tickets = await Ticket.find_all().sort("number").to_list()
    assert [t.requester.email for t in tickets] == ["jane@example.org", "mallory@evil.example"]
    assert await Message.find({"ticket_number": 1}).count() == 1


async def test_outlook_thread_index_threads_a_reply_without_references(gateway: Gateway) -> None:
    root = os.urandom(22)
    first = make_mail(sender="jane@example.org", subject="Invoice wrong")
    await _deliver(gateway, _with_headers(first, Thread_Index=base64.b64encode(root).decode()))
    reply = make_mail(sender="jane@example.org", subject="Invoice still wrong", body="again")
    await _deliver(gateway, _with_headers(reply, Thread_Index=base64.b64encode(root + os.urandom(5)).decode()))
    assert await Ticket.find_all().count() == 1
    assert await Message.find({"ticket_number": 1}).count() == 2


async def test_reply_subject_from_requester_threads_within_the_window(gateway: Gateway) -> None:
    await _deliver(gateway, bytes(make_mail(subject="Rechnung falsch")))
    await _deliver(gateway, bytes(make_mail(subject="AW: Rechnung falsch", body="Noch da?")))
    # Same subject without a reply prefix is a new matter; a reply prefix from someone else is too.
    await _deliver(gateway, bytes(make_mail(subject="Rechnung falsch", body="another invoice")))
    other = make_mail(sender="bob@example.org", subject="Re: Rechnung falsch")
    await _deliver(gateway, bytes(other), sender="bob@example.org")
    counts = [await Message.find({"ticket_number": n}).count() for n in (1, 2, 3)]
    assert counts == [2, 1, 1]


SECRET = "a-secret-for-reply-addresses"


@pytest.mark.parametrize(
    ("headers", "starts"),
    [
        ({}, True),
        ({"Subject": "Printer on fire [#]"}, True),
        ({"To": "support+12.0123456789@localhost"}, True),  # a plus address we did not sign
        ({"Thread-Index": base64.b64encode(bytes(22)).decode()}, True),  # the first mail of an Outlook conversation
        ({"In-Reply-To": "<earlier@example.org>"}, False),
        ({"References": "<earlier@example.org>"}, False),
        ({"To": message_ids.reply_address(12, secret=SECRET, address="support@localhost")}, False),
        ({"Cc": message_ids.reply_address(12, secret=SECRET, address="support@localhost")}, False),
        ({"Subject": "Printer [#12] on fire"}, False),
        ({"Subject": "Re: Printer on fire"}, False),
        ({"Subject": "AW: Printer on fire"}, False),
        ({"Thread-Index": base64.b64encode(bytes(27)).decode()}, False),
    ],
)
def test_mail_that_names_nothing_a_rule_reads_starts_a_conversation(headers: dict[str, str], starts: bool) -> None:
    mail = make_mail()
    for name, value in headers.items():
        del mail[name]
        mail[name] = value

    assert threading.starts_a_conversation(mime.parse(bytes(mail)), secret=SECRET) is starts
