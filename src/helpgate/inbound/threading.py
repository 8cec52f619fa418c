"""Which ticket a message continues: the rules of ARCHITECTURE.md, strongest first.

1. In-Reply-To / References naming a message we hold, or one we signed (even when it is not stored). A reused
   Message-ID can sit on several tickets: then only one the sender takes part in counts.
2. A To/Cc reply address ``<support>+<ticket>.<mac>@domain`` we signed.
3. A subject token ``[#123]``, only when the sender already takes part in ticket 123 (or is staff):
   otherwise anyone could put a number in a subject and join someone else's ticket.
4. Outlook's Thread-Index conversation root, then the normalised subject of a reply ("Re:", "AW:"...) from
   the ticket's requester within SUBJECT_WINDOW; both only for senders who take part in the ticket.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime, timedelta

from helpgate.core.mail import message_ids
from helpgate.core.models import Ticket
from helpgate.core.models.clock import utcnow
from helpgate.core.services import tickets, users
from helpgate.inbound import subjects
from helpgate.inbound.mime import ParsedMail

log = logging.getLogger(__name__)

SUBJECT_WINDOW = timedelta(days=7)
THREAD_INDEX_ROOT_BYTES = 22  # Outlook: a 22-byte conversation header, then 5 bytes per reply


def thread_root(mail: ParsedMail) -> tuple[str | None, bool]:
    """The Outlook conversation root (base64 of its first 22 bytes) and whether the message is a reply in it."""
    value = "".join(mail.headers.get("thread-index", "").split())
    if not value:
        return None, False
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None, False
    if len(decoded) < THREAD_INDEX_ROOT_BYTES:
        return None, False
    return base64.b64encode(decoded[:THREAD_INDEX_ROOT_BYTES]).decode(), len(decoded) > THREAD_INDEX_ROOT_BYTES


async def _takes_part(ticket: Ticket, sender: str) -> bool:
    if sender in ticket.participants or sender == ticket.requester.email:
        return True
    user = await users.get_by_email(sender)
    return user is not None and user.is_staff


def _by_message_id(found: list[Ticket], sender: str) -> Ticket | None:
    """One ticket holds the Message-ID: that one. Several (the ID was reused by another mail): the newest one
    whose participants include the sender, else none, and the mail is threaded by the other rules."""
    if len(found) <= 1:
        return found[0] if found else None
    chosen = next((t for t in found if sender in t.participants or sender == t.requester.email), None)
    log.info(
        "threading.message_id_ambiguous tickets=%s sender=%s chosen=%s",
        [t.number for t in found],
        sender,
        chosen.number if chosen else None,
    )
    return chosen


async def find_ticket(mail: ParsedMail, *, secret: str = "", now: datetime | None = None) -> Ticket | None:
    """Without `secret` only stored Message-IDs count for rule 1, and rule 2 is skipped."""
    sender = mail.from_email.lower()
    for candidates in (mail.in_reply_to, list(reversed(mail.references))):
        ticket = _by_message_id(await tickets.find_by_message_ids(candidates), sender)
        if ticket is not None:
            return ticket
        for number in (message_ids.ticket_of(candidate, secret=secret) for candidate in candidates if secret):
            ticket = await tickets.get_by_number(number) if number is not None else None
            if ticket is not None:
                return ticket
    for address in (*mail.to, *mail.cc) if secret else ():
        number = message_ids.ticket_of_address(address, secret=secret)
        ticket = await tickets.get_by_number(number) if number is not None else None
        if ticket is not None:
            return ticket
    for number in subjects.ticket_tokens(mail.subject):
        ticket = await tickets.get_by_number(number)
        if ticket is None:
            continue
        if await _takes_part(ticket, sender):
            return ticket
        log.warning("threading.token_refused ticket=%s sender=%s reason=not a participant", number, sender)
    root, is_reply = thread_root(mail)
    if root and is_reply:
        ticket = await tickets.find_by_thread_root(root)
        if ticket is not None and await _takes_part(ticket, sender):
            return ticket
    if subjects.is_reply(mail.subject):
        since = (now or utcnow()) - SUBJECT_WINDOW
        key = subjects.key(mail.subject)
        if key:
            return await tickets.find_recent_by_subject(subject_key=key, requester_email=sender, since=since)
    return None
