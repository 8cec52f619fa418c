"""Parse raw mail into what the pipeline keeps. Never raises on malformed input except MalformedMail.

The stdlib parses (``policy.default`` with lenient MIME parameters, see ``parameters``, and ``compat32`` when the
modern header parser gives up). Around it:
raw 8-bit header blocks are decoded by the charset cascade before parsing (``charsets``); header values by
``headers``; the body and attachments are sorted out by ``parts``; HTML is sanitised and turned into text by
``markup``; the ticket view's text loses quoted history and signature (``quotes``) while ``full_text`` keeps all.
"""

from __future__ import annotations

import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.errors import MissingHeaderBodySeparatorDefect, StartBoundaryNotFoundDefect
from email.message import Message
from email.parser import Parser

from helpgate.inbound import addresses, charsets, headers, invites, markup, parameters, quotes, reports
from helpgate.inbound.attachments import ParsedAttachment
from helpgate.inbound.parts import Body, Walker
from helpgate.inbound.reports import DeliveryReport

log = logging.getLogger(__name__)

MESSAGE_ID_RE = re.compile(r"<([^<>\s]+)>")
#: obs-id-left/obs-id-right (RFC 5322 §4.5.4): white space around the id, its "@" and its dots.
_OBS_MESSAGE_ID = re.compile(r"<\s*([^<>\s@]+(?:\s*[.@]\s*[^<>\s@.]+)*)\s*>")
_OBS_ID_SPACE = re.compile(r"\s+")
_BARE_MESSAGE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
#: Caps on what is kept per message (the raw message keeps everything; a document must stay well under 16 MB).
MAX_FULL_TEXT_CHARS = 1_000_000
MAX_TEXT_CHARS = 200_000
#: Where the sender is read from, in order (mail without a usable From still names someone to answer).
SENDER_HEADERS = ("From", "Sender", "Reply-To")
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
#: An RFC 5322 §4.5 obs-field: a field name, white space, then the colon.
_OBS_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)
_OBS_FIELD_TEXT = re.compile(r"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)


class MalformedMail(ValueError):
    """The message cannot be read at all."""


@dataclass
class ParsedMail:
    message_id: str | None
    subject: str
    from_email: str
    from_name: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    text: str = ""  # for the ticket view: the newest reply, without quoted history and signature
    full_text: str = ""  # the whole text body (from the HTML when there is no plain text)
    html: str = ""  # the HTML body, sanitised; empty when the message has none
    attachments: list[ParsedAttachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # headers.SELECTED, lower-cased names
    report: DeliveryReport | None = None  # set for a delivery status notification (bounce)
    defects: list[str] = field(default_factory=list)  # what was wrong with the message and was worked around


def parse(raw: bytes) -> ParsedMail:
    source = _source(raw)
    try:
        return _read(_modern(source))
    except Exception as error:
        # Some real-world oddities break the modern header parser; compat32 is lenient.
        log.info("mime.compat32_fallback reason=%s: %s", type(error).__name__, error)
        try:
            mail = _read(Parser(policy=email.policy.compat32).parsestr(source))
        except Exception as final:
            raise MalformedMail(f"unparseable message: {type(final).__name__}: {final}") from final
        mail.defects.append(f"Compat32Fallback({type(error).__name__})")
        return mail


def _modern(source: str) -> Message:
    """policy.default, with unquoted parameters holding tspecials re-read leniently (``parameters``).

    Two defects make it read the message once more, so only the rare message that has them pays: a start boundary
    not found (the modern parser may have cut the boundary short without calling it a defect, ``boundary=(x)y``:
    every parameter is then re-read), and a part whose headers end at an obsolete ``Name :`` field.
    """
    message = Parser(policy=parameters.POLICY).parsestr(source)
    defects = {type(defect) for part in message.walk() for defect in part.defects}
    if StartBoundaryNotFoundDefect in defects:
        again = Parser(policy=parameters.LENIENT).parsestr(source)
        if not _has(again, StartBoundaryNotFoundDefect):
            log.info("mime.boundary_reread reason=start boundary not found")
            return again
    if MissingHeaderBodySeparatorDefect in defects and message.is_multipart():
        boundaries = [part.get_boundary() or "" for part in message.walk() if part.is_multipart()]
        fixed = _part_headers_repaired(source, [boundary for boundary in boundaries if boundary])
        if fixed != source:
            log.info("mime.part_headers_repaired reason=obsolete field syntax")
            return Parser(policy=parameters.POLICY).parsestr(fixed)
    return message


def _has(message: Message, defect_type: type) -> bool:
    return any(isinstance(defect, defect_type) for part in message.walk() for defect in part.defects)


def message_ids(value: str) -> list[str]:
    ids: list[str] = MESSAGE_ID_RE.findall(value)
    if not ids and "<" in value:
        ids = [_OBS_ID_SPACE.sub("", found) for found in _OBS_MESSAGE_ID.findall(value)]
    if not ids and _BARE_MESSAGE_ID.match(value.strip()):
        ids = [value.strip()]  # some mailers leave out the angle brackets
    return ids


def _source(raw: bytes) -> str:
    """The message as the stdlib's BytesParser would see it, except that an 8-bit header block is decoded.

    RFC 5322 headers are ASCII, yet many mailers write raw UTF-8 or a local charset; left alone they would
    reach us as surrogate escapes. The body stays surrogate-escaped bytes, exactly as BytesParser keeps it.
    """
    raw = raw.lstrip(b"\r\n")
    ends = [position for position in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if position >= 0]
    end = min(ends) if ends else len(raw)
    head = _repaired(raw[:end])
    if head.isascii():
        return head.decode("ascii") + raw[end:].decode("ascii", errors="surrogateescape")
    decoded = charsets.decode_headers(head, hints=charsets.named_in_headers(head))
    log.info("mime.header_8bit charset=%s", decoded.charset)
    return decoded.text + raw[end:].decode("ascii", errors="surrogateescape")


def _repaired(head: bytes) -> bytes:
    """Fold lines that sit among headers but are neither a header nor a continuation (a mailer lost the fold).

    The stdlib would end the headers at such a line and read everything after it, From and Subject included,
    as body. A stray line before the first header (a forwarding note) is dropped. A line after the last header
    is left alone: there the body simply started without its blank line. Fields in the obsolete syntax of
    RFC 5322 §4.5 (white space before the colon, ``From  : a@example.org``) lose that space: the stdlib takes
    such a line for the end of the headers, or for the Unix ``From `` envelope line.
    """
    if b" :" in head or b"\t:" in head:
        head = _OBS_FIELD.sub(rb"\1:", head)
    lines = head.split(b"\n")
    header_lines = [i for i, line in enumerate(lines) if _HEADER_LINE.match(line)]
    if not header_lines:
        return head
    first, last = header_lines[0], header_lines[-1]
    if first == 0 and all(_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") for line in lines[1 : last + 1]):
        return head  # the usual case: nothing to repair
    kept = [line for line in lines[:first] if line.startswith(b"From ")][:1]
    for line in lines[first : last + 1]:
        kept.append(line if _HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") else b" " + line)
    return b"\n".join(kept + lines[last + 1 :])


def _part_headers_repaired(source: str, boundaries: list[str]) -> str:
    """Obsolete ``Name :`` fields (RFC 5322 §4.5) in the header blocks that follow each ``--boundary`` line."""

    def block(match: re.Match[str]) -> str:
        return match.group(1) + _OBS_FIELD_TEXT.sub(r"\1:", match.group(2))

    for boundary in boundaries:
        part_start = re.compile(rf"^(--{re.escape(boundary)}[ \t]*\r?\n)((?:[^\r\n]+\r?\n)*)", re.MULTILINE)
        source = part_start.sub(block, source)
    return source


def _read(message: Message) -> ParsedMail:
    senders = next(filter(None, (_addresses(message, name) for name in SENDER_HEADERS)), [])
    from_name, from_email = senders[0] if senders else ("", "")
    ids = message_ids(headers.decoded_header(message, "Message-ID"))
    body = Walker().walk(message)
    full_text, html = _assemble(body)
    return ParsedMail(
        message_id=ids[0] if ids else None,
        subject=headers.decoded_header(message, "Subject"),
        from_email=from_email,
        from_name=from_name,
        to=[addr for _, addr in _addresses(message, "To")],
        cc=[addr for _, addr in _addresses(message, "Cc")],
        in_reply_to=message_ids(headers.decoded_header(message, "In-Reply-To")),
        references=message_ids(" ".join(headers.header_values(message, "References"))),
        text=quotes.reply_text(full_text)[:MAX_TEXT_CHARS] if full_text else "",
        full_text=full_text,
        html=html,
        attachments=body.attachments,
        headers=headers.selected(message),
        report=reports.read(message),
        defects=list(dict.fromkeys(body.defects)),
    )


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """Read from the raw header, not from a decoded one: an encoded-word is never an address (RFC 2047 §5)."""
    return addresses.read(headers.raw_values(message, name), header=name)


def _assemble(body: Body) -> tuple[str, str]:
    texts = []
    for piece in body.pieces:
        text = piece.text if piece.text is not None else markup.to_text(piece.html or "")
        if text.strip():
            texts.append(text.strip())
    full_text = "\n\n".join(texts)
    if not full_text and body.calendars:
        full_text = invites.summary(body.calendars[0])
    htmls = [piece.html for piece in body.pieces if piece.html]
    html = markup.sanitise("\n".join(htmls)) if htmls else ""
    return full_text[:MAX_FULL_TEXT_CHARS], html
