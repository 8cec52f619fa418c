"""Loop guards: each rule on its own, on messages parsed by the real parser."""

from __future__ import annotations

import pytest

from helpgate.inbound import guards, mime

ME = guards.Self(
    addresses=frozenset({"support@localhost"}),
    loop_tag="helpgate@localhost",
    is_own_message_id=lambda mid: mid.startswith("hg."),
)


def _mail(headers: str, sender: str = "jane@example.org") -> mime.ParsedMail:
    raw = f"From: {sender}\r\nTo: support@localhost\r\nSubject: s\r\nMessage-ID: <x@example.org>\r\n{headers}\r\nhi\r\n"
    return mime.parse(raw.encode())


def test_plain_customer_mail_may_be_answered() -> None:
    assert guards.auto_reply_block(_mail(""), ME) is None


def test_auto_submitted_no_may_be_answered() -> None:
    assert guards.auto_reply_block(_mail("Auto-Submitted: no\r\n"), ME) is None


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ("Auto-Submitted: auto-replied\r\n", "jane@example.org", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y\r\n", "jane@example.org", "Auto-Submitted"),
        ("X-Autoreply: yes\r\n", "jane@example.org", "x-autoreply"),
        ("X-Auto-Response-Suppress: All\r\n", "jane@example.org", "X-Auto-Response-Suppress: All"),
        ("X-Auto-Response-Suppress: OOF, AutoReply\r\n", "jane@example.org", "X-Auto-Response-Suppress"),
        ("Precedence: bulk\r\n", "jane@example.org", "Precedence: bulk"),
        ("Precedence: list\r\n", "jane@example.org", "Precedence: list"),
        ("List-Id: <users.lists.example.org>\r\n", "jane@example.org", "mailing list (list-id)"),
        ("List-Unsubscribe: <mailto:u@example.org>\r\n", "jane@example.org", "mailing list (list-unsubscribe)"),
        ("Return-Path: <>\r\n", "jane@example.org", "empty Return-Path"),
        ("", "MAILER-DAEMON@mx.example.org", "sender is mailer-daemon"),
        ("", "postmaster@example.org", "sender is postmaster"),
        ("", "support@localhost", "our own addresses"),
        ("X-Loop: helpgate@localhost\r\n", "jane@example.org", "X-Loop"),
    ],
)
def test_rule_blocks_auto_reply(headers: str, sender: str, reason: str) -> None:
    found = guards.auto_reply_block(_mail(headers, sender), ME)
    assert found is not None and reason in found


def test_our_own_message_id_coming_back_is_a_loop() -> None:
    mail = _mail("")
    mail.message_id = "hg.12.abcdefgh12345678.0123456789@localhost"
    assert guards.auto_reply_block(mail, ME) == "carries one of our own Message-IDs"


def test_delivery_report_is_never_answered() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@localhost\r\nSubject: Undelivered\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    assert guards.auto_reply_block(mime.parse(raw), ME) == "delivery status notification"
