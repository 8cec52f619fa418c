"""Which ticket a message continues (the rules in ARCHITECTURE.md, in order; more come with IMAP work)."""

from __future__ import annotations

from helpgate.core.models import Ticket
from helpgate.core.services import tickets
from helpgate.inbound.mime import ParsedMail


async def find_ticket(mail: ParsedMail) -> Ticket | None:
    """Rule 1: In-Reply-To / References naming a message we hold. In-Reply-To is the strongest signal."""
    for candidates in (mail.in_reply_to, list(reversed(mail.references))):
        ticket = await tickets.find_by_message_ids(candidates)
        if ticket is not None:
            return ticket
    return None
