"""Delivery status notifications (RFC 3464 ``multipart/report; report-type=delivery-status``).

Tells which of our messages bounced (the Message-ID of the returned message or headers), for which recipients
and why, so a bounce can join the ticket it answers instead of opening one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from helpgate.inbound.parts import undecoded

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    diagnostic: str = ""


@dataclass
class DeliveryReport:
    original_message_id: str | None = None
    recipients: list[FailedRecipient] = field(default_factory=list)


def read(message: Message) -> DeliveryReport | None:
    """The report carried by ``message``, or None when it is not a delivery status notification."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    report = DeliveryReport()
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            report.recipients += _recipients(part)
        elif kind in ("message/rfc822", "message/global", "text/rfc822-headers") and report.original_message_id is None:
            report.original_message_id = _original_id(part)
    return report


def _recipients(part: Message) -> list[FailedRecipient]:
    groups = undecoded(part)
    if not isinstance(groups, list):  # unparsed: read the fields ourselves
        groups = [HeaderParser().parsestr(block) for block in str(groups).split("\n\n")]
    found = []
    for group in groups:
        if not isinstance(group, Message):
            continue
        recipient = str(group.get("Final-Recipient") or group.get("Original-Recipient") or "")
        if not recipient:
            continue
        found.append(
            FailedRecipient(
                address=recipient.rpartition(";")[2].strip().strip("<>").lower(),
                action=str(group.get("Action", "")).strip().lower(),
                status=str(group.get("Status", "")).strip(),
                diagnostic=" ".join(str(group.get("Diagnostic-Code", "")).split()),
            )
        )
    return found


def _original_id(part: Message) -> str | None:
    payload = undecoded(part)
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = str(payload[0].get("Message-ID", ""))
    else:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(payload)
        value = str(HeaderParser().parsestr(text).get("Message-ID", ""))
    ids = _MESSAGE_ID.findall(value)
    return ids[0] if ids else None
