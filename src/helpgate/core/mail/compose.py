"""Build the RFC 5322 message for a queued mail: headers, text + HTML alternative, attachments.

Built from the stored OutboundMail alone (its Date and Message-ID are fixed), so every attempt sends the
same message.
"""

from __future__ import annotations

import hashlib
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from helpgate.core import plain_text
from helpgate.core.models import AttachmentRef, OutboundMail

MAX_REFERENCES = 20
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
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(display_name=mail.from_name, addr_spec=mail.mail_from)
    message["To"] = ", ".join(mail.to)
    if mail.cc:
        message["Cc"] = ", ".join(mail.cc)
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.date)
    message["Message-ID"] = f"<{mail.key}>"
    if mail.in_reply_to:
        message["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        message["References"] = " ".join(f"<{reference}>" for reference in mail.references)
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


def _fix_boundaries(message: EmailMessage, key: str) -> None:
    """Boundaries from the Message-ID instead of random ones, so every attempt sends the same bytes.

    ``=_`` never occurs in quoted-printable or base64 bodies, so the boundary cannot collide with content.
    """
    multiparts = [part for part in message.walk() if part.is_multipart()]
    for index, part in enumerate(multiparts):
        part.set_boundary(f"=_hg{index}_{hashlib.sha256(f'{key} {index}'.encode()).hexdigest()[:24]}")
