"""MIME parameters the modern parser cuts short, read the way compat32 reads them."""

from __future__ import annotations

import email
from email.headerregistry import ContentTypeHeader

import pytest

from helpgate.inbound import mime, parameters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("multipart/mixed; boundary=----=_Part_1_2.3", 'multipart/mixed; boundary="----=_Part_1_2.3"'),
        ("multipart/mixed; boundary==_NextPart_000", 'multipart/mixed; boundary="=_NextPart_000"'),
        ("application/pdf; name==?utf-8?B?QS5wZGY=?=", 'application/pdf; name="=?utf-8?B?QS5wZGY=?="'),
        ('text/plain; name=say "hi".txt', 'text/plain; name="say \\"hi\\".txt"'),
        ("text/plain; charset=us-ascii (plain); name=a b.txt", 'text/plain; charset=us-ascii (plain); name="a b.txt"'),
    ],
)
def test_unquoted_values_holding_tspecials_are_quoted(value: str, expected: str) -> None:
    assert parameters.requoted(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        'multipart/mixed; boundary="----=_Part_1"',
        "text/plain; charset=utf-8; format=flowed",
        "application/pdf; name*=utf-8''Gr%C3%BC%C3%9Fe=1.pdf",
        'text/plain; name="a;b=c.txt"; charset=utf-8',
        "text/plain",
    ],
)
def test_quoted_tokens_and_rfc2231_values_are_left_alone(value: str) -> None:
    assert parameters.requoted(value) is value


def test_policy_rereads_only_a_header_whose_parameters_were_cut_short() -> None:
    message = email.message_from_string(
        "Content-Type: multipart/mixed; boundary=----=_Part_9\n\n", policy=parameters.POLICY
    )
    header = message["Content-Type"]
    assert isinstance(header, ContentTypeHeader)
    assert header.params["boundary"] == "----=_Part_9"
    assert any(isinstance(defect, parameters.ParametersReread) for defect in getattr(header, "defects", ()))
    plain = email.message_from_string("Content-Type: text/plain; charset=utf-8\n\n", policy=parameters.POLICY)
    assert not getattr(plain["Content-Type"], "defects", None)


def test_multipart_whose_start_boundary_is_not_found_is_read_again_leniently() -> None:
    # No defect from the modern parser: it takes "(1)" for a comment and the boundary for "_Next".
    raw = (
        b"From: a@example.org\r\nSubject: comment\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=_Next(1)\r\n\r\n"
        b"--_Next(1)\r\nContent-Type: text/plain\r\n\r\nthe text\r\n"
        b"--_Next(1)\r\nContent-Type: image/png\r\n\r\nnot really a png\r\n--_Next(1)--\r\n"
    )
    mail = mime.parse(raw)
    assert mail.text == "the text"
    assert [a.content_type for a in mail.attachments] == ["image/png"]
