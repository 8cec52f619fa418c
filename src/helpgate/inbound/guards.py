"""Loop guards: pure checks that decide whether helpgate may answer a message automatically.

A guard takes the parsed message and what helpgate knows of itself, and returns a reason or None. No I/O.
The rules are the ones every mature helpdesk ended up with (docs/architecture.md, "Loop and abuse protection";
RFC 3834 for Auto-Submitted, RFC 2369/2919 for List-*, Microsoft's X-Auto-Response-Suppress).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from helpgate.inbound.mime import ParsedMail

ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"})
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Self:
    """What helpgate knows of itself: its addresses, its loop tag, and how to recognise its Message-IDs."""

    addresses: frozenset[str]
    loop_tag: str  # the X-Loop value helpgate writes on its own mail
    is_own_message_id: Callable[[str], bool]


Guard = Callable[[ParsedMail, Self], str | None]


def _header(mail: ParsedMail, name: str) -> str:
    return _SPACES.sub(" ", mail.headers.get(name, "")).strip()


def auto_submitted(mail: ParsedMail, me: Self) -> str | None:
    value = _header(mail, "auto-submitted").lower()
    if value and value.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {value}"
    for name in ("x-autoreply", "x-autorespond"):
        if _header(mail, name):
            return f"{name} present"
    return None


def response_suppressed(mail: ParsedMail, me: Self) -> str | None:
    value = _header(mail, "x-auto-response-suppress")
    if value and value.lower() != "none":
        return f"X-Auto-Response-Suppress: {value}"
    return None


def bulk(mail: ParsedMail, me: Self) -> str | None:
    precedence = _header(mail, "precedence").lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe"):
        if _header(mail, name):
            return f"mailing list ({name})"
    return None


def null_sender(mail: ParsedMail, me: Self) -> str | None:
    return_path = mail.headers.get("return-path")
    if return_path is not None and return_path.strip().strip("<>").strip() == "":
        return "empty Return-Path (a bounce or notification)"
    return None


def robot_sender(mail: ParsedMail, me: Self) -> str | None:
    local = mail.from_email.partition("@")[0].lower()
    if local in ROBOT_LOCAL_PARTS:
        return f"sender is {local}"
    return None


def ourselves(mail: ParsedMail, me: Self) -> str | None:
    if mail.from_email.lower() in me.addresses:
        return "sent from one of our own addresses"
    loop = _header(mail, "x-loop").lower()
    if loop and me.loop_tag.lower() in loop:
        return f"X-Loop: {loop}"
    if mail.message_id and me.is_own_message_id(mail.message_id):
        return "carries one of our own Message-IDs"
    return None


def delivery_report(mail: ParsedMail, me: Self) -> str | None:
    return "delivery status notification" if mail.report is not None else None


#: In order; the first that answers gives the reason recorded on the message.
AUTO_REPLY_GUARDS: tuple[Guard, ...] = (
    delivery_report,
    ourselves,
    auto_submitted,
    response_suppressed,
    bulk,
    null_sender,
    robot_sender,
)


def auto_reply_block(mail: ParsedMail, me: Self) -> str | None:
    """Why helpgate must not answer this message automatically, or None when it may."""
    for guard in AUTO_REPLY_GUARDS:
        reason = guard(mail, me)
        if reason is not None:
            return reason
    return None
