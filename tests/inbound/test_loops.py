"""Loops, bounces and spoofing, end to end through the SMTP listener."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.mail_out import message_ids
from helpgate.models import Message, RawMessage, RawStatus, Role, Suppression, Ticket
from tests.conftest import login, make_user
from tests.mail import make_mail, send


async def _deliver(gateway: Gateway, raw: bytes, sender: str = "jane@example.org") -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, raw, sender=sender)
    await gateway.worker.idle()


def _mail(**headers: str) -> bytes:
    mail = make_mail()
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    return bytes(mail)


async def test_out_of_office_opens_ticket_but_is_flagged_never_answer(gateway: Gateway) -> None:
    await _deliver(gateway, _mail(Auto_Submitted="auto-replied"))
    [message] = await Message.find_all().to_list()
    assert message.auto_reply_block == "Auto-Submitted: auto-replied"


async def test_customer_mail_may_be_answered(gateway: Gateway) -> None:
    await _deliver(gateway, _mail())
    [message] = await Message.find_all().to_list()
    assert message.auto_reply_block is None


async def test_our_own_mail_coming_back_is_ignored(gateway: Gateway) -> None:
    await _deliver(gateway, bytes(make_mail(sender="support@localhost")), sender="support@localhost")
    signed = message_ids.make(7, secret=gateway.load_secret_key(), domain="localhost")
    await _deliver(gateway, bytes(make_mail(message_id=f"<{signed}>", subject="echo")))
    raws = await RawMessage.find_all().to_list()
    assert [raw.status for raw in raws] == [RawStatus.IGNORED, RawStatus.IGNORED]
    assert raws[0].reason == "sent from one of our own addresses"
    assert raws[1].reason == "carries one of our own Message-IDs"
    assert await Ticket.find_all().count() == 0


def _bounce(original: str, recipients: tuple[str, ...] = ("gone@example.org",), status: str = "5.1.1") -> bytes:
    groups = "".join(
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        for recipient in recipients
    )
    return (
        "From: MAILER-DAEMON\r\nTo: support@localhost\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce-{len(original)}-{len(recipients)}@mx.example.org>\r\nAuto-Submitted: auto-replied\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        f"{groups}"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original}>\r\nSubject: Re: x\r\n\r\n--b--\r\n"
    ).encode()


async def test_bounce_of_our_reply_attaches_to_its_ticket_and_suppresses_its_recipient(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    """The report quotes our signed Message-ID: the recipient of that mail is suppressed, and no one else."""
    await _deliver(gateway, bytes(make_mail(sender="gone@example.org", message_id="<q@example.org>")))
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    reply = (await api.post("/api/tickets/1/replies", json={"text": "Unplug it."}, headers=headers)).json()
    ours = reply["message_id"]
    await _deliver(gateway, _bounce(ours, recipients=("gone@example.org", "agent@example.com")), sender="")
    assert await Ticket.find_all().count() == 1
    messages = await Message.find({"ticket_number": 1}).sort("created_at").to_list()
    assert len(messages) == 3 and messages[2].auto_reply_block == "delivery status notification"
    [suppressed] = await Suppression.find_all().to_list()
    assert suppressed.address == "gone@example.org" and "5.1.1" in suppressed.reason


async def test_a_report_quoting_no_mail_of_ours_suppresses_nothing(gateway: Gateway) -> None:
    """Anyone can write a delivery report: one about a customer's own mail, or naming our staff, is not believed."""
    await make_user("agent@example.com", Role.AGENT)
    await _deliver(gateway, bytes(make_mail(sender="alice@example.org", message_id="<q@example.org>")))
    forged = _bounce("q@example.org", recipients=("alice@example.org", "agent@example.com", "admin@example.com"))
    await _deliver(gateway, forged, sender="")
    assert await Suppression.find_all().count() == 0
    forged_id = "hg.1.0123456789abcdef.0123456789@localhost"  # our shape, but not our signature
    await _deliver(gateway, _bounce(forged_id, recipients=("alice@example.org",)), sender="")
    assert await Suppression.find_all().count() == 0


async def test_bounce_for_unknown_mail_opens_no_ticket(gateway: Gateway) -> None:
    await _deliver(gateway, _bounce("never-seen@example.org"), sender="")
    [raw] = await RawMessage.find_all().to_list()
    assert raw.status is RawStatus.IGNORED and raw.reason == "delivery report for a message of no ticket"
    assert await Ticket.find_all().count() == 0


SPOOF = "mx.example.net; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail header.from=bank.example"


async def test_dmarc_failure_flags_the_ticket(gateway: Gateway) -> None:
    await _deliver(gateway, _mail(Authentication_Results=SPOOF))
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.auth_failed
    [message] = await Message.find_all().to_list()
    # From an untrusted header only the failures count (HELPGATE_TRUSTED_AUTHSERV_IDS is unset).
    assert message.authentication == {"spf": "fail", "dmarc": "fail"}


@pytest.mark.parametrize("settings_overrides", [{"quarantine_dmarc_fail": True}])
async def test_dmarc_failure_can_quarantine(gateway: Gateway, settings_overrides: dict[str, Any]) -> None:
    await _deliver(gateway, _mail(Authentication_Results=SPOOF))
    [raw] = await RawMessage.find_all().to_list()
    assert raw.status is RawStatus.QUARANTINED and "failed DMARC" in (raw.reason or "")
