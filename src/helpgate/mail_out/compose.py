"""Build the RFC 5322 message for a queued mail: headers, text + HTML alternative, attachments.

Built from the stored OutboundMail alone (its Date and Message-ID are fixed), so every attempt sends the
same message.
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from helpgate.core import plain_text
from helpgate.models import AttachmentRef, OutboundMail

log = logging.getLogger(__name__)

MAX_REFERENCES = 20
FOLD_AT = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters...
MAX_LINE = 998  # ...and MUST be at most 998
# What a msg-id may hold between its angle brackets, as we send it: printable ASCII, no space, no brackets.
_MSG_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")
# To the stdlib, In-Reply-To and References are unstructured text: it folds a line over 78 characters into
# RFC 2047 encoded-words, which no mail client reads as msg-ids. So the msg-id headers are stored folded already
# (`set_raw`), and this policy writes stored values as they are; the other headers it folds as usual.
_POLICY = policy.SMTP.clone(refold_source="none")
AUTO_SUBMITTED = "auto-replied"  # RFC 3834 section 5
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|antw|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_TOKEN = re.compile(r"\s*\[#\d+\]")


def ticket_subject(subject: str, number: int, *, prefix: str = "Re: ") -> str:
    """``Re: <subject> [#<number>]``, without piling up ``Re:`` prefixes or ticket tokens."""
    clean = plain_text.one_line(subject, limit=plain_text.SUBJECT_CHARS)  # also subjects stored before it was cleaned
    base = _TOKEN.sub("", _PREFIX.sub("", clean)).strip() or "(no subject)"
    return f"{prefix}{base} [#{number}]"


def references_after(parent_id: str | None, parent_references: list[str]) -> list[str]:
    """RFC 5322 3.6.4: the parent's References plus its Message-ID; the first and the newest are kept."""
    chain = [*parent_references, parent_id] if parent_id else list(parent_references)
    unique = list(dict.fromkeys(chain))
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return unique


def build(mail: OutboundMail, files: list[tuple[AttachmentRef, bytes]], *, loop_marker: str) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = Address(display_name=mail.from_name, addr_spec=mail.mail_from)
    message["To"] = ", ".join(mail.to)
    if mail.cc:
        message["Cc"] = ", ".join(mail.cc)
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.date)
    _set_msg_ids(message, "Message-ID", [mail.key], key=mail.key)
    _set_msg_ids(message, "In-Reply-To", [mail.in_reply_to] if mail.in_reply_to else [], key=mail.key)
    _set_msg_ids(message, "References", mail.references, key=mail.key)
    if mail.automatic:
        message["Auto-Submitted"] = AUTO_SUBMITTED
        message["X-Auto-Response-Suppress"] = "All"  # no out-of-office answers from Exchange
    message["X-Loop"] = loop_marker
    message.set_content(mail.text, cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    for ref, data in files:
        maintype, _, subtype = ref.content_type.lower().partition("/")
        if maintype in ("multipart", "message") or not subtype:  # not leaf types: send the bytes as they are
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=ref.filename)
    _fix_boundaries(message, mail.key)
    return message


def fold_msg_ids(name: str, ids: list[str]) -> str:
    """The value of a msg-id header, folded: RFC 5322 3.6.4 lists msg-ids, which are never encoded
    (RFC 2047 5: an encoded-word is not allowed in a msg-id). Lines break between msg-ids, before the one that
    would pass 78 characters; a msg-id longer than that stays whole on its line (at most 998 characters)."""
    lines: list[str] = []
    line = f"{name}:"
    for msg_id in ids:
        token = f" <{msg_id}>"
        if line != f"{name}:" and len(line) + len(token) > FOLD_AT:
            lines.append(line)
            line = ""
        line += token
    lines.append(line)
    return "\r\n".join(lines).removeprefix(f"{name}: ")


def _set_msg_ids(message: EmailMessage, name: str, ids: list[str], *, key: str) -> None:
    """Write the msg-ids that can be sent as they are; one that cannot (not printable ASCII, or too long for a
    line) is left out rather than mangled: a mangled one threads nothing either."""
    sendable = []
    for msg_id in ids:
        if _MSG_ID.fullmatch(msg_id) and len(f"{name}: <{msg_id}>") <= MAX_LINE:
            sendable.append(msg_id)
        else:
            log.warning("compose.msg_id_left_out key=%s header=%s length=%d", key, name, len(msg_id))
    if sendable:
        message.set_raw(name, fold_msg_ids(name, sendable))


def _fix_boundaries(message: EmailMessage, key: str) -> None:
    """Boundaries from the Message-ID instead of random ones, so every attempt sends the same bytes.

    ``=_`` never occurs in quoted-printable or base64 bodies, so the boundary cannot collide with content.
    """
    multiparts = [part for part in message.walk() if part.is_multipart()]
    for index, part in enumerate(multiparts):
        part.set_boundary(f"=_hg{index}_{hashlib.sha256(f'{key} {index}'.encode()).hexdigest()[:24]}")
