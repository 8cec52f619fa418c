"""Build and send test mail with the standard library, as any SMTP client would."""

from __future__ import annotations

import asyncio
import os
import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid


def make_mail(
    *,
    sender: str = "Jane Doe <jane@example.org>",
    to: str = "support@localhost",
    subject: str = "Printer on fire",
    body: str = "Help, the printer is on fire.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    return message


#: From headers that put an encoded-word in the address (RFC 2047 §5 forbids it) to pass for jane@example.org,
#: and whether each still names a usable sender (the last two do not: their mail is quarantined).
SPOOFING_SENDERS: tuple[tuple[str, bool], ...] = (
    ("=?utf-8?q?jane=40example.org=3e=00?=@attacker.example", True),
    ("=?utf-8?b?amFuZUBleGFtcGxlLm9yZw==?=@attacker.example", True),
    ("Jane Doe <=?utf-8?q?=22jane=40example.org=22?=@attacker.example>", True),
    ("jane@=?utf-8?q?example.org=3E?=", True),
    ("=?utf-8?q?jane@example.org?=@attacker.example", False),
    ('"<jane@example.org>"@attacker.example', False),
)


def raw_mail(*, sender: str, subject: str, message_id: str, to: str = "support@localhost") -> bytes:
    """A minimal message written byte for byte: EmailMessage would re-encode a hostile From."""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease pay the attached invoice today.\r\n"
    ).encode()


def big_mail(mib: int) -> tuple[bytes, bytes]:
    """(attachment, mail): a mail with `mib` MiB of random content attached, ~4/3 of it on the wire in base64,
    generated rather than committed."""
    payload = os.urandom(1024) * (mib * 1024)
    mail = EmailMessage()
    mail["From"] = "big@example.org"
    mail["To"] = "support@localhost"
    mail["Subject"] = "The full disk image"
    mail["Message-ID"] = "<big-1@example.org>"
    mail.set_content("Image attached.")
    mail.add_attachment(payload, maintype="application", subtype="octet-stream", filename="disk.img")
    return payload, mail.as_bytes(policy=SMTP)


def _send(port: int, message: EmailMessage | bytes, sender: str, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        if isinstance(message, bytes):
            return client.sendmail(sender, recipients, message)
        return client.send_message(message, from_addr=sender, to_addrs=recipients)


async def send(
    port: int,
    message: EmailMessage | bytes,
    *,
    sender: str = "jane@example.org",
    recipients: list[str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Send from a thread so the gateway on this test's loop can answer."""
    return await asyncio.to_thread(_send, port, message, sender, recipients or ["support@localhost"])
