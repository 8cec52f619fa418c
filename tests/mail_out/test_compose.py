"""Composing a queued mail: subject tokens, References chains, and the headers every mail carries."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from beanie import PydanticObjectId

from helpgate.mail_out import compose
from helpgate.models import AttachmentRef, OutboundMail

pytestmark = pytest.mark.usefixtures("store")  # Beanie documents need an initialised store, even unsaved


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer on fire", "Re: Printer on fire [#7]"),
        ("Re: RE: Fwd: Printer on fire", "Re: Printer on fire [#7]"),
        ("AW: Re: Printer on fire [#7]", "Re: Printer on fire [#7]"),
        ("Re[2]: Printer [#7] on fire", "Re: Printer on fire [#7]"),
        ("", "Re: (no subject) [#7]"),
    ],
)
def test_ticket_subject(subject: str, expected: str) -> None:
    assert compose.ticket_subject(subject, 7) == expected


def test_references_continue_the_chain_and_stay_short() -> None:
    assert compose.references_after("c@x", ["a@x", "b@x"]) == ["a@x", "b@x", "c@x"]
    assert compose.references_after("b@x", ["a@x", "b@x"]) == ["a@x", "b@x"]
    long = compose.references_after("last@x", [f"{n}@x" for n in range(50)])
    assert len(long) == compose.MAX_REFERENCES and long[0] == "0@x" and long[-1] == "last@x"


def _mail(**overrides: object) -> OutboundMail:
    values: dict[str, object] = {
        "key": "hg.7.abc.0123456789@acme.test",
        "template": "agent_reply",
        "automatic": False,
        "mail_from": "help@acme.test",
        "from_name": "Acme Süpport, Inc.",
        "to": ["jane@example.org"],
        "reply_to": "support+7.0123456789@acme.test",
        "subject": "Re: Drücker on fire [#7]",
        "in_reply_to": "first@example.org",
        "references": ["first@example.org"],
        "text": "Grüße",
        "html": "<p>Grüße</p>",
        "date": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        **overrides,
    }
    mail: OutboundMail = OutboundMail.model_validate(values)
    return mail


def test_build_sets_every_header_and_encodes_what_is_not_ascii() -> None:
    built = compose.build(_mail(), [], loop_marker="help@acme.test").as_bytes()
    assert max(built) < 128  # 7-bit clean on the wire
    parsed = message_from_bytes(built, policy=policy.default)
    assert parsed["From"] == '"Acme Süpport, Inc." <help@acme.test>'
    assert parsed["Subject"] == "Re: Drücker on fire [#7]"
    assert parsed["Date"] == "Fri, 02 Jan 2026 03:04:05 +0000"
    assert parsed["Message-ID"] == "<hg.7.abc.0123456789@acme.test>"
    assert parsed["In-Reply-To"] == "<first@example.org>" and parsed["References"] == "<first@example.org>"
    assert parsed["Reply-To"] == "support+7.0123456789@acme.test"
    assert parsed["X-Loop"] == "help@acme.test" and parsed["Auto-Submitted"] is None
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None and text.get_content().strip() == "Grüße"


def test_automatic_mail_says_so() -> None:
    parsed = compose.build(_mail(automatic=True), [], loop_marker="x")
    assert parsed["Auto-Submitted"] == "auto-replied" and parsed["X-Auto-Response-Suppress"] == "All"


def test_same_mail_builds_the_same_bytes() -> None:
    mail = _mail()
    assert compose.build(mail, [], loop_marker="x").as_bytes() == compose.build(mail, [], loop_marker="x").as_bytes()


def test_attachments_make_it_mixed() -> None:
    ref = AttachmentRef(
        filename="r\u00e9sum\u00e9.txt", content_type="text/plain", size=3, sha256="0", gridfs_id=PydanticObjectId()
    )
    parsed = compose.build(_mail(), [(ref, b"abc")], loop_marker="x")
    assert parsed.get_content_type() == "multipart/mixed"
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "résumé.txt" and part.get_payload(decode=True) == b"abc"


def test_container_types_are_attached_as_plain_bytes() -> None:
    ref = AttachmentRef(
        filename="x.eml", content_type="message/rfc822", size=3, sha256="0", gridfs_id=PydanticObjectId()
    )
    [part] = list(compose.build(_mail(), [(ref, b"abc")], loop_marker="x").iter_attachments())
    assert part.get_content_type() == "application/octet-stream" and part.get_payload(decode=True) == b"abc"


OUTLOOK_ID = "AM0PR07MB5987B2A8F39C7A1D9C3E4F5AD9A42@AM0PR07MB5987.eurprd07.prod.outlook.com"
LONG_IDS = [
    OUTLOOK_ID,
    "DB9PR02MB7194E1C0B5A3D2F8C6E4A9B7D1F3E5C8A0B2D4F6E8A1C3@DB9PR02MB7194.eurprd02.prod.outlook.com",
    f"sha256-{'ab' * 32}@helpgate.invalid",
    "x" * 300 + "@example.org",  # longer than a line: stays whole on its own
]


def _header_block(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _field(lines: list[bytes], name: bytes) -> bytes:
    """The raw value of a header field, continuation lines included."""
    start = next(index for index, line in enumerate(lines) if line.lower().startswith(name.lower() + b":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return b"\r\n".join(lines[start:end])


def test_long_message_ids_are_folded_never_encoded() -> None:
    """Issue 14, finding 7: msg-ids over ~76 characters came out as RFC 2047 encoded-words; clients cannot thread."""
    key = f"hg.7.{'0' * 32}.0123456789@{'support.' * 6}acme.test"
    mail = _mail(key=key, in_reply_to=LONG_IDS[-1], references=LONG_IDS)
    raw = compose.build(mail, [], loop_marker="x").as_bytes()
    lines = _header_block(raw)
    for name in (b"Message-ID", b"In-Reply-To", b"References"):
        assert b"=?" not in _field(lines, name), _field(lines, name)
    assert all(len(line) <= compose.MAX_LINE for line in lines)
    references = _field(lines, b"References").split(b"\r\n")
    assert len(references) == len(LONG_IDS)  # one msg-id per line: each is too long to share one
    assert [line.strip().removeprefix(b"References: ") for line in references] == [
        f"<{msg_id}>".encode() for msg_id in LONG_IDS
    ]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == f"<{key}>"
    assert parsed["In-Reply-To"] == f"<{LONG_IDS[-1]}>"
    assert parsed["References"].split() == [f"<{msg_id}>" for msg_id in LONG_IDS]


def test_short_message_ids_share_a_line_up_to_78_characters() -> None:
    ids = [f"{number}.abcdefgh@example.org" for number in range(12)]
    lines = _field(_header_block(compose.build(_mail(references=ids), [], loop_marker="x").as_bytes()), b"References")
    folded = lines.split(b"\r\n")
    assert 1 < len(folded) < len(ids) and all(len(line) <= compose.FOLD_AT for line in folded)
    assert b" ".join(line.strip() for line in folded) == b"References: " + b" ".join(f"<{i}>".encode() for i in ids)


@pytest.mark.parametrize(
    "bad", ["caf\u00e9@example.org", "a\r\nBcc: victim@example.org", "with space@example.org", "x" * 990 + "@e.org"]
)
def test_a_message_id_that_cannot_be_sent_as_it_is_is_left_out(bad: str) -> None:
    parsed = compose.build(_mail(in_reply_to=bad, references=["first@example.org", bad]), [], loop_marker="x")
    raw = parsed.as_bytes()
    assert parsed["In-Reply-To"] is None and parsed["References"] == "<first@example.org>"
    assert b"Bcc" not in raw and max(raw) < 128
