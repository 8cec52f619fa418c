"""Replies to our mail come back to their ticket: by stored Message-ID, by signed Message-ID, by reply address.

The round trip runs everything for real: a customer mails the SMTP listener, an agent answers through the
API, the answer is captured by a Mailtrap-like sink, and the customer's reply is built from the captured mail
the way a mail client does it.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.mail_out import message_ids
from helpgate.models import Message, Role, Ticket, TicketStatus
from tests.conftest import login, make_user
from tests.mail import make_mail, send
from tests.mail_capture import CaptureServer


@pytest.fixture
def settings_overrides(sink: CaptureServer) -> dict[str, Any]:
    return sink.settings()


def _answer(received: EmailMessage, body: str, *, headers: bool = True) -> EmailMessage:
    """What a mail client makes of "Reply": to the Reply-To, Re: subject, In-Reply-To and References."""
    reply = EmailMessage()
    reply["From"] = "Jane Doe <jane@example.org>"
    reply["To"] = str(received["Reply-To"])
    reply["Subject"] = f"Re: {received['Subject']}"
    reply["Message-ID"] = "<answer@example.org>"
    if headers:
        reply["In-Reply-To"] = str(received["Message-ID"])
        reply["References"] = f"{received['References']} {received['Message-ID']}"
    reply.set_content(f"{body}\n\n> quoted reply")
    return reply


async def _agent_replies(gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer) -> EmailMessage:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    await gateway.worker.idle()
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    response = await api.post("/api/tickets/1/replies", json={"text": "Unplug it."}, headers=headers)
    assert response.status_code == 201
    [received] = await sink.wait_for(1)
    return received.message


async def test_round_trip_customer_reply_threads_back_and_reopens(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    captured = await _agent_replies(gateway, api, sink)
    assert gateway.smtp is not None
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.status is TicketStatus.PENDING

    await send(gateway.smtp.port, _answer(captured, "Done, it works now."), recipients=[str(captured["Reply-To"])])
    await gateway.worker.idle()

    assert await Ticket.find_all().count() == 1
    messages = await Message.find({"ticket_number": 1}).sort("created_at").to_list()
    assert [m.direction for m in messages] == ["inbound", "outbound", "inbound"]
    assert messages[2].text.startswith("Done, it works now.")
    assert messages[2].in_reply_to == [messages[1].message_id]
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.status is TicketStatus.OPEN and ticket.message_count == 3


async def test_reply_address_alone_threads(gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer) -> None:
    """A client that drops In-Reply-To and References (or a new mail to the reply address) still threads."""
    captured = await _agent_replies(gateway, api, sink)
    assert gateway.smtp is not None
    answer = _answer(captured, "New mail to the ticket's address.", headers=False)
    answer.replace_header("Subject", "Something else entirely")

    await send(gateway.smtp.port, answer, recipients=[str(captured["Reply-To"])])
    await gateway.worker.idle()

    assert await Ticket.find_all().count() == 1
    assert await Message.find({"ticket_number": 1}).count() == 3


async def test_signed_message_id_threads_without_a_stored_message(gateway: Gateway) -> None:
    """A reply to mail we sent but no longer hold (a restore, another instance) still finds its ticket."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    await gateway.worker.idle()
    ours = message_ids.make(1, secret=gateway.load_secret_key(), domain="localhost")
    forged = message_ids.make(1, secret="another-installation-secret-of-32-bytes", domain="localhost")

    await send(gateway.smtp.port, make_mail(subject="Re: x", message_id="<a@example.org>", in_reply_to=f"<{ours}>"))
    await send(gateway.smtp.port, make_mail(subject="Re: y", message_id="<b@example.org>", in_reply_to=f"<{forged}>"))
    await gateway.worker.idle()

    assert [t.number for t in await Ticket.find_all().sort("number").to_list()] == [1, 2]
    second = await Message.find_one({"message_id": "a@example.org"})
    assert second is not None and second.ticket_number == 1


async def test_forged_reply_address_opens_a_new_ticket(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    await gateway.worker.idle()
    good = message_ids.reply_address(1, secret=gateway.load_secret_key(), address="support@localhost")
    forged = good[: -len("@localhost") - 1] + ("0" if good[-len("@localhost") - 1] != "0" else "1") + "@localhost"

    await send(gateway.smtp.port, make_mail(to=forged, message_id="<c@example.org>"), recipients=[forged])
    await gateway.worker.idle()

    assert [t.number for t in await Ticket.find_all().sort("number").to_list()] == [1, 2]
    ticket = await Ticket.find_one({"number": 2})
    assert ticket is not None and ticket.mailbox == "support@localhost"
