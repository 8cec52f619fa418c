"""The content fingerprint: the same mail however it travelled, a different mail whatever its Message-ID."""

from __future__ import annotations

from helpgate.inbound import fingerprint

MAIL = (
    b"From: Jane Doe <jane@example.org>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Printer on fire\r\n"
    b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <same@example.org>\r\n"
    b"\r\n"
    b"Help, it is really burning.\r\n"
)


def test_trace_headers_line_endings_and_folding_leave_it_alone() -> None:
    travelled = (
        b"Return-Path: <jane@example.org>\n"
        b"Received: from mx.example.org by imap.example.com; Thu, 03 Dec 2026 10:00:01 +0000\n"
        b"Delivered-To: support@example.com\n"
        b"Authentication-Results: mx.example.com; dmarc=pass\n"
        + MAIL.replace(b"\r\n", b"\n").replace(b"Subject: Printer", b"Subject:\n  Printer")
    )
    assert fingerprint.of(travelled) == fingerprint.of(MAIL)
    assert fingerprint.of(b"From jane@example.org Thu Dec  3 10:00:00 2026\r\n" + MAIL) == fingerprint.of(MAIL)


def test_another_body_subject_sender_or_date_changes_it() -> None:
    original = fingerprint.of(MAIL)
    for old, new in (
        (b"really burning", b"no longer burning"),
        (b"Subject: Printer on fire", b"Subject: Printer fixed"),
        (b"From: Jane Doe <jane@example.org>", b"From: Mallory <mallory@example.net>"),
        (b"To: support@example.com", b"To: billing@example.com"),
        (b"10:00:00", b"11:00:00"),
    ):
        assert fingerprint.of(MAIL.replace(old, new)) != original, new


def test_a_header_added_in_transit_among_the_fields_does_not_shift_them() -> None:
    """Cc only counts where the mail has one: a missing Cc and an empty one differ from a named one."""
    with_cc = MAIL.replace(b"To: support@example.com\r\n", b"To: support@example.com\r\nCc: sam@example.org\r\n")
    assert fingerprint.of(with_cc) != fingerprint.of(MAIL)
    headers_only = b"Subject: x\r\nX-Spam-Score: 1\r\n"
    assert fingerprint.of(headers_only) == fingerprint.of(b"Subject: x\r\n")
