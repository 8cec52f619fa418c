"""Forged mail cannot act as staff or join strangers' tickets (issue 14, findings 1, 3 and 4), end to end through the
SMTP listener and the API."""

from __future__ import annotations

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.inbound import pipeline, raw_messages
from helpgate.mail_out import message_ids
from helpgate.mailboxes import mailboxes
from helpgate.models import Message, RawStatus, Role, Ticket, TicketStatus
from helpgate.tickets import tickets
from tests.conftest import login, make_user
from tests.mail import make_mail, send

AGENT = "agent@example.com"
TRUSTED = "mx.localhost"
PASS = (
    f"{TRUSTED}; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
)


async def deliver(gateway: Gateway, mail: bytes, sender: str) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, mail, sender=sender)
    await gateway.worker.idle()


async def solved_ticket(gateway: Gateway) -> Ticket:
    """Ticket 1, Jane's, solved; the agent exists."""
    await make_user(AGENT, Role.AGENT)
    await deliver(gateway, bytes(make_mail(message_id="<jane-1@example.org>")), "jane@example.org")
    ticket = await tickets.get_by_number(1)
    assert ticket is not None and ticket.id is not None
    await tickets.apply_update(ticket.id, {"$set": {"status": TicketStatus.SOLVED}})
    return ticket


def forged_staff_mail(**headers: str) -> bytes:
    mail = make_mail(
        sender=f"Agent <{AGENT}>",
        subject="Re: your ticket [#1]",
        body="Please reply with your card number.",
        in_reply_to="<jane-1@example.org>",
        references="<jane-1@example.org>",
    )
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    return bytes(mail)


async def test_a_forged_staff_from_joins_no_ticket_and_is_flagged(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await solved_ticket(gateway)
    await deliver(gateway, forged_staff_mail(), "anyone@attacker.example")
    # A `dmarc=pass` the forger wrote itself: no trusted authserv-id is set, so no pass counts.
    await deliver(gateway, forged_staff_mail(Authentication_Results=PASS.replace("spf", "x")), "x@attacker.example")

    first = await tickets.get_by_number(1)
    assert first is not None and first.status is TicketStatus.SOLVED and first.message_count == 1
    forged = await Ticket.find({"number": {"$gt": 1}}).sort("number").to_list()
    assert [t.flags for t in forged] == [["unverified_staff_sender"], ["unverified_staff_sender"]]
    headers = await login(api, AGENT)
    detail = (await api.get("/api/tickets/2", headers=headers)).json()
    assert detail["flags"] == ["unverified_staff_sender"]
    assert detail["messages"][0]["flags"] == ["unverified_staff_sender"]


@pytest.mark.parametrize("settings_overrides", [{"trusted_authserv_ids": [TRUSTED]}])
async def test_staff_mail_authenticated_by_a_trusted_server_threads(gateway: Gateway) -> None:
    await solved_ticket(gateway)
    await deliver(gateway, forged_staff_mail(Authentication_Results=PASS), AGENT)
    [message] = await Message.find({"from_email": AGENT}).to_list()
    assert message.ticket_number == 1 and message.flags == []


async def test_unauthenticated_staff_mail_to_the_signed_reply_address_threads(gateway: Gateway) -> None:
    await solved_ticket(gateway)
    reply_to = message_ids.reply_address(1, secret=gateway.load_secret_key(), address="support@localhost")
    mail = make_mail(sender=AGENT, to=reply_to, subject="Re: printer", body="Noted.")
    await deliver(gateway, bytes(mail), AGENT)
    [message] = await Message.find({"from_email": AGENT}).to_list()
    assert message.ticket_number == 1


async def test_a_strangers_in_reply_to_opens_a_ticket_that_links_the_one_it_named(gateway: Gateway) -> None:
    """A customer's Message-ID threads only the mail of someone who takes part in that ticket."""
    await solved_ticket(gateway)
    stranger = make_mail(sender="eve@example.com", subject="Re: printer", in_reply_to="<jane-1@example.org>")
    await deliver(gateway, bytes(stranger), "eve@example.com")
    jane = make_mail(subject="Re: printer", body="Again.", references="<jane-1@example.org>")
    await deliver(gateway, bytes(jane), "jane@example.org")

    by_sender = {m.from_email: m.ticket_number for m in await Message.find({"subject": "Re: printer"}).to_list()}
    assert by_sender == {"eve@example.com": 2, "jane@example.org": 1}
    second = await tickets.get_by_number(2)
    assert second is not None and second.linked_tickets == [1]
    assert second.requester.email == "eve@example.com"


async def test_our_signed_message_id_threads_whoever_answers_it(gateway: Gateway) -> None:
    """Whoever holds our mail may answer it (a colleague the customer forwarded our reply to)."""
    await solved_ticket(gateway)
    ours = message_ids.make(1, secret=gateway.load_secret_key(), domain="localhost")
    colleague = make_mail(sender="bob@example.org", subject="Re: printer", in_reply_to=f"<{ours}>")
    await deliver(gateway, bytes(colleague), "bob@example.org")
    [message] = await Message.find({"from_email": "bob@example.org"}).to_list()
    assert message.ticket_number == 1


async def test_an_imap_mailbox_names_which_verdicts_of_its_provider_count(gateway: Gateway) -> None:
    """Microsoft 365 writes no authserv-id: a mailbox may believe the topmost header, which the provider wrote."""
    await solved_ticket(gateway)
    await mailboxes.create(
        actor=None,
        box=gateway.box, address="billing@localhost", imap_host="127.0.0.1", username="u", password="p",
        trust_first_authentication_results=True, enabled=False,
    )  # fmt: skip
    microsoft = "spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
    data = forged_staff_mail(Authentication_Results=microsoft)
    raw = await raw_messages.store(data=data, source="imap:billing@localhost", mailbox="billing@localhost")
    assert await pipeline.process(raw, policy=gateway.inbound_policy()) is RawStatus.PROCESSED
    # The same mail by SMTP, where nothing says that header is trustworthy: a ticket of its own, flagged.
    again = await raw_messages.store(data=data.replace(b"card", b"pin"), source="smtp", mailbox="support@localhost")
    assert await pipeline.process(again, policy=gateway.inbound_policy()) is RawStatus.PROCESSED

    staff = await Message.find({"from_email": AGENT}).sort("created_at").to_list()
    assert [(m.ticket_number, "unverified_staff_sender" in m.flags, m.authentication.get("dmarc")) for m in staff] == [
        (1, False, "pass"),
        (2, True, None),
    ]
