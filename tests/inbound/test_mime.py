"""Parsing the fields the skeleton needs from raw mail."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from helpgate.inbound import mime, parts


def test_plain_mail_fields() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.ORG>\r\nTo: support@localhost, other@x.org\r\n"
        b"Cc: boss@example.org\r\nSubject: =?utf-8?b?R3LDvMOfZQ==?=\r\nMessage-ID: <m1@example.org>\r\n"
        b"In-Reply-To: <m0@example.org>\r\nReferences: <a@x> <m0@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\nWelt\r\n"
    )
    mail = mime.parse(raw)
    assert mail.from_email == "juergen@example.org" and mail.from_name == "Jürgen"
    assert mail.subject == "Grüße"
    assert mail.to == ["support@localhost", "other@x.org"] and mail.cc == ["boss@example.org"]
    assert mail.message_id == "m1@example.org"
    assert mail.in_reply_to == ["m0@example.org"] and mail.references == ["a@x", "m0@example.org"]
    assert mail.text == "Hallo\nWelt"


def test_html_only_mail_becomes_text() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: html\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n"
        b"<html><style>p{}</style><body><p>Caf\xe9 <b>ouvert</b></p><p>Merci</p></body></html>\r\n"
    )
    assert mime.parse(raw).text == "Café ouvert\n\nMerci"


def test_multipart_alternative_prefers_plain() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html text</p>\r\n--b--\r\n"
    )
    assert mime.parse(raw).text == "plain text"


def test_missing_message_id_and_sender() -> None:
    mail = mime.parse(b"Subject: bare\r\n\r\nbody\r\n")
    assert mail.message_id is None and mail.from_email == "" and mail.text == "body"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"From: <<<@>>>\r\nSubject: =?x-unknown?q?abc?=\r\nContent-Type: text/plain; charset=nonsense\r\n\r\n\xe9t\xe9",
        b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all",
    ],
)
def test_odd_input_parses_without_raising(raw: bytes) -> None:
    mail = mime.parse(raw)
    assert isinstance(mail.text, str)


def test_multipart_that_cannot_be_split_is_read_as_text_not_kept_as_a_multipart_file() -> None:
    raw = b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n"
    mail = mime.parse(raw)
    assert mail.text == "no boundary at all" and mail.attachments == []


def test_named_multipart_that_cannot_be_split_is_a_file_of_unknown_type() -> None:
    raw = (
        b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: text/plain\r\n'
        b'\r\nsee file\r\n--o\r\nContent-Type: multipart/related; boundary="gone"\r\n'
        b'Content-Disposition: attachment; filename="page.mht"\r\n\r\nsaved page\r\n--o--\r\n'
    )
    mail = mime.parse(raw)
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("page.mht", "application/octet-stream")]


def test_obsolete_from_field_on_the_first_line_is_not_taken_for_an_envelope_line() -> None:
    mail = mime.parse(b"From  : jane@example.org\r\nSubject : hello\r\n\r\nbody\r\n")
    assert (mail.from_email, mail.subject, mail.text) == ("jane@example.org", "hello", "body")


def test_obsolete_part_header_is_repaired_and_text_with_spaced_colons_left_alone() -> None:
    raw = (
        b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type : text/plain; charset=utf-8\r\n\r\nRemarque : le texte garde son espace.\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nNote : line\r\n--b--\r\n"
    )
    assert mime.parse(raw).text == "Remarque : le texte garde son espace.\n\nNote : line"


def test_parts_past_the_cap_are_not_read() -> None:
    """A stranger's mail with thousands of parts: the Walker stops at MAX_PARTS (the raw mail keeps the rest)."""
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("many parts")
    for index in range(parts.MAX_PARTS + 5):
        message.add_attachment(b"x", maintype="application", subtype="octet-stream", filename=f"{index}.bin")
    mail = mime.parse(message.as_bytes(policy=email.policy.SMTP))
    assert parts.PARTS_OMITTED in mail.defects
    assert len(mail.attachments) == parts.MAX_PARTS - 2  # the message and its text part are parts too
    assert mail.text == "many parts"
