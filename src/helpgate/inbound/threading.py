"""Which ticket a message continues: the rules of docs/architecture.md, strongest first.

1. In-Reply-To / References naming one of our signed Message-IDs: whoever holds our mail may answer it, like
   rule 2. Naming a message we hold that is not ours (a customer's Message-ID): only for a sender who takes part
   in that ticket; a stranger gets a ticket of its own that links the one it referred to.
2. A To/Cc reply address ``<support>+<ticket>.<mac>@domain`` we signed.
3. A subject token ``[#123]``, only when the sender already takes part in ticket 123: otherwise anyone could put
   a number in a subject and join someone else's ticket.
4. Outlook's Thread-Index conversation root, then the normalised subject of a reply ("Re:", "AW:"...) from
   the ticket's requester within SUBJECT_WINDOW; both only for senders who take part in the ticket.

Staff take part in every ticket, but a From naming a staff address proves nothing: anyone can write one. Such
mail threads by rules 1 (stored IDs), 3 and 4 only when it is authenticated as coming from its domain (DMARC
pass from a trusted Authentication-Results); otherwise only our signed reply address (rule 2) threads it, and
it is flagged so agents see that someone wrote in a colleague's name.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from helpgate.accounts import users
from helpgate.core.clock import utcnow
from helpgate.inbound import subjects
from helpgate.inbound.mime import ParsedMail
from helpgate.mail_out import message_ids
from helpgate.models import MessageFlag, Ticket, User
from helpgate.tickets import tickets

log = logging.getLogger(__name__)

SUBJECT_WINDOW = timedelta(days=7)
THREAD_INDEX_ROOT_BYTES = 22  # Outlook: a 22-byte conversation header, then 5 bytes per reply


@dataclass
class Thread:
    """Where a message goes: its ticket (None: a new one), tickets a new one should link, what to flag."""

    ticket: Ticket | None = None
    linked: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    sender: User | None = None  # the sender's account, when it has one (looked up for the staff rule)


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


@dataclass(frozen=True)
class Sender:
    email: str
    verified_staff: bool  # a staff address, and the mail is authenticated as coming from its domain

    def takes_part(self, ticket: Ticket) -> bool:
        return self.verified_staff or self.email in ticket.participants or self.email == ticket.requester.email


def starts_a_conversation(mail: ParsedMail, *, secret: str = "") -> bool:
    """Whether no rule could find a ticket for this mail, whoever sent it: it names no earlier message (rule 1), no
    reply address we signed (2), no ticket token (3), and is no reply by Outlook's Thread-Index or its subject (4).
    Such mail opens a ticket of its own (unless it is a delivery report, which never does)."""
    _root, replies_in_conversation = thread_root(mail)
    reply_address = secret and any(
        message_ids.ticket_of_address(address, secret=secret) is not None for address in (*mail.to, *mail.cc)
    )
    return not (
        mail.in_reply_to
        or mail.references
        or reply_address
        or subjects.ticket_tokens(mail.subject)
        or replies_in_conversation
        or subjects.is_reply(mail.subject)
    )


async def find_ticket(
    mail: ParsedMail,
    *,
    secret: str = "",
    authenticated: bool = False,
    now: datetime | None = None,
    account: User | None = None,
) -> Thread:
    """Without `secret` only stored Message-IDs count for rule 1, and rule 2 is skipped. `authenticated`: the
    mail passed DMARC by a trusted Authentication-Results header. `account`: the sender's account when the caller
    has it already (else it is looked up here)."""
    email = mail.from_email.lower()
    user = account or (await users.get_by_email(email) if email else None)
    staff = user is not None and user.is_staff
    if staff and not authenticated:
        thread = Thread(ticket=await _reply_address_ticket(mail, secret), sender=user)
        thread.flags.append(MessageFlag.UNVERIFIED_STAFF_SENDER)
        log.warning("threading.unverified_staff sender=%s ticket=%s", email, thread.ticket and thread.ticket.number)
        return thread
    sender = Sender(email=email, verified_staff=staff)
    thread = Thread(sender=user)
    thread.ticket = (
        await _by_message_ids(mail, sender, secret, thread)
        or await _reply_address_ticket(mail, secret)
        or await _by_subject_token(mail, sender)
        or await _by_conversation(mail, sender, now)
    )
    if thread.ticket is not None:
        thread.linked = []
        thread.ticket = await tickets.remaining(thread.ticket)  # mail to a merged ticket goes where it was merged
    return thread


async def _by_message_ids(mail: ParsedMail, sender: Sender, secret: str, thread: Thread) -> Ticket | None:
    """Rule 1. A stored Message-ID can sit on several tickets (another mail reused it): the newest one the
    sender takes part in counts; the others are linked from the sender's new ticket."""
    for candidates in (mail.in_reply_to, list(reversed(mail.references))):
        for number in (message_ids.ticket_of(candidate, secret=secret) for candidate in candidates if secret):
            ticket = await tickets.get_by_number(number) if number is not None else None
            if ticket is not None:
                return ticket
        found = await tickets.find_by_message_ids(candidates)
        ticket = next((t for t in found if sender.takes_part(t)), None)
        if ticket is not None:
            return ticket
        for refused in found:
            log.warning("threading.message_id_refused ticket=%s sender=%s", refused.number, sender.email)
            if refused.number not in thread.linked:
                thread.linked.append(refused.number)
    return None


async def _reply_address_ticket(mail: ParsedMail, secret: str) -> Ticket | None:
    """Rule 2: whoever holds the ticket's signed reply address may write to it."""
    for address in (*mail.to, *mail.cc) if secret else ():
        number = message_ids.ticket_of_address(address, secret=secret)
        ticket = await tickets.get_by_number(number) if number is not None else None
        if ticket is not None:
            return ticket
    return None


async def _by_subject_token(mail: ParsedMail, sender: Sender) -> Ticket | None:
    for number in subjects.ticket_tokens(mail.subject):
        ticket = await tickets.get_by_number(number)
        if ticket is None:
            continue
        if sender.takes_part(ticket):
            return ticket
        log.warning("threading.token_refused ticket=%s sender=%s reason=not a participant", number, sender.email)
    return None


async def _by_conversation(mail: ParsedMail, sender: Sender, now: datetime | None) -> Ticket | None:
    root, is_reply = thread_root(mail)
    if root and is_reply:
        ticket = await tickets.find_by_thread_root(root)
        if ticket is not None and sender.takes_part(ticket):
            return ticket
    if subjects.is_reply(mail.subject):
        since = (now or utcnow()) - SUBJECT_WINDOW
        key = subjects.key(mail.subject)
        if key:
            return await tickets.find_recent_by_subject(subject_key=key, requester_email=sender.email, since=since)
    return None
