"""What a stranger's mail can make helpgate spend or show (issue 14, findings 5, 9 and 15): attachments are capped and
a heavy mail never holds up the rest; subjects and names are one clean line; look-alike senders are flagged."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Sequence
from email.policy import SMTP, SMTPUTF8, default
from typing import Any

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.inbound import raw_messages
from helpgate.mail_out import compose
from helpgate.models import Attachment, Message, OutboundMail, RawMessage, Role, Ticket
from helpgate.tickets import attachments
from tests.conftest import login, make_user
from tests.mail import make_mail, send


def with_attachments(count: int, subject: str = "Many files") -> bytes:
    mail = make_mail(subject=subject)
    for index in range(count):
        mail.add_attachment(
            f"file {index}".encode(), maintype="application", subtype="octet-stream", filename=f"{index}.bin"
        )
    return mail.as_bytes(policy=SMTP)


async def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("settings_overrides", [{"max_attachments": 5}])
async def test_attachments_past_the_cap_stay_in_the_raw_mail_and_the_message_says_so(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, with_attachments(8))
    await gateway.worker.idle()

    [message] = await Message.find_all().to_list()
    assert [ref.filename for ref in message.attachments] == ["0.bin", "1.bin", "2.bin", "3.bin", "4.bin"]
    assert message.flags == ["attachments_omitted"]
    assert await Attachment.find_all().count() == 5
    [raw] = await RawMessage.find_all().to_list()
    assert b'filename="7.bin"' in await raw_messages.read_bytes(raw)


async def test_a_heavy_mail_does_not_hold_up_ordinary_mail(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heavy mail's attachments are held until ordinary mail sent after it has become a ticket: with one lane
    the ordinary mail would wait behind it for good."""
    release = asyncio.Event()
    store = attachments.store

    async def held(*, files: Sequence[attachments.NewAttachment], **kwargs: Any) -> list[Attachment]:
        if len(files) > 50:
            await release.wait()
        kept: list[Attachment] = await store(files=files, **kwargs)
        return kept

    monkeypatch.setattr(attachments, "store", held)
    assert gateway.smtp is not None
    await send(gateway.smtp.port, with_attachments(60, subject="Heavy"))
    await send(gateway.smtp.port, make_mail(subject="Ordinary"))

    async def ordinary_ticket() -> bool:
        return await Ticket.find_one({"subject": "Ordinary"}) is not None

    await wait_for(ordinary_ticket, "the ordinary mail's ticket")
    release.set()
    await gateway.worker.idle()
    heavy = await Message.find_one({"subject": "Heavy"})
    assert heavy is not None and len(heavy.attachments) == 60


HOSTILE_SUBJECT = "Invoice\x00 \x1b[31mURGENT\x07\u202eexe.pdf\u202c " + ("x" * 50 + " ") * 6_300  # 320 KB, folded


async def test_control_characters_and_huge_subjects_become_one_short_line(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    mail = make_mail(sender="Mallory <mallory@example.net>", subject="placeholder")
    del mail["Subject"]
    mail["Subject"] = HOSTILE_SUBJECT
    data = mail.as_bytes(policy=SMTP).replace(b"From: Mallory", b"From: =?utf-8?q?Mallory=1B=5B2J?=")
    assert gateway.smtp is not None
    await send(gateway.smtp.port, data, sender="mallory@example.net")
    await gateway.worker.idle()

    [ticket] = await Ticket.find_all().to_list()
    assert ticket.subject.startswith("Invoice [31mURGENT exe.pdf xxx") and len(ticket.subject) == 300
    assert not any(ord(char) < 32 or char in "\x7f\u202e\u202c" for char in ticket.subject + ticket.requester.name)
    assert ticket.requester.name == "Mallory[2J"
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    reply = await api.post("/api/tickets/1/replies", json={"text": "Hello."}, headers=headers)
    assert reply.status_code == 201 and len(reply.json()["subject"]) < 320
    [raw] = await RawMessage.find_all().to_list()
    assert b"Invoice\x00 " in await raw_messages.read_bytes(raw), "the raw mail keeps the subject as sent"


async def test_a_look_alike_sender_is_flagged_for_staff(gateway: Gateway, api: httpx.AsyncClient) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender="alice@cust.example", subject="Real"), sender="alice@cust.example")
    fake = make_mail(sender="Alice <alice@cust.ex\u0430mple>", subject="Fake")
    await send(gateway.smtp.port, fake.as_bytes(policy=SMTPUTF8), sender="alice@cust.example")
    await gateway.worker.idle()

    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    real, lookalike = [(await api.get(f"/api/tickets/{n}", headers=headers)).json() for n in (1, 2)]
    assert real["flags"] == [] and lookalike["flags"] == ["mixed_script_sender"]
    assert lookalike["requester"]["email"] == "alice@cust.ex\u0430mple"


async def test_a_quoted_local_part_stays_one_address_in_a_cc(gateway: Gateway, api: httpx.AsyncClient) -> None:
    """`"a,b"@example.org` is one mailbox: unquoted it would read as two addresses in the Cc header we send."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail())
    await gateway.worker.idle()
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    response = await api.post(
        "/api/tickets/1/replies", json={"text": "Copying you.", "cc": ['"a,b"@example.org']}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["cc"] == ['"a,b"@example.org']
    [mail] = await OutboundMail.find_all().to_list()
    sent = email.message_from_bytes(bytes(compose.build(mail, [], loop_marker="support@localhost")), policy=default)
    assert [address.addr_spec for address in sent["Cc"].addresses] == ['"a,b"@example.org']
