"""Build and send test mail with the standard library, as any SMTP client would."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
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
