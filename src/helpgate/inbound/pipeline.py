"""The inbound pipeline: named steps over one stored raw message, run in the order of STEPS.

A step ends the run only by raising Ignore, Duplicate or Quarantine; the runner records the outcome on the
RawMessage and logs one line with the message id, the step and the reason. Anything unexpected quarantines
the message (never drops it): `helpgate replay` can run it again once the cause is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymongo.errors import ConnectionFailure

from helpgate.core.models import Direction, RawMessage, RawStatus, Ticket, User
from helpgate.core.services import raw_messages, tickets, users
from helpgate.core.services.tickets import NewMessage
from helpgate.inbound import mime, threading

log = logging.getLogger(__name__)


class Stop(Exception):
    status: RawStatus

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ignore(Stop):
    status = RawStatus.IGNORED


class Duplicate(Stop):
    status = RawStatus.DUPLICATE


class Quarantine(Stop):
    status = RawStatus.QUARANTINED


@dataclass
class InboundContext:
    raw: RawMessage
    data: bytes
    mail: mime.ParsedMail | None = None
    message_id: str = ""
    dedupe_key: str = ""
    requester: User | None = None
    ticket: Ticket | None = None


async def parse(ctx: InboundContext) -> None:
    try:
        ctx.mail = mime.parse(ctx.data)
    except mime.MalformedMail as error:
        raise Quarantine(str(error)) from error
    # No Message-ID: a synthetic one from the content keeps a second delivery of the same bytes a duplicate.
    ctx.message_id = ctx.mail.message_id or f"sha256-{ctx.raw.sha256}@helpgate.invalid"
    ctx.dedupe_key = f"{ctx.raw.mailbox} {ctx.message_id}"


async def require_sender(ctx: InboundContext) -> None:
    assert ctx.mail is not None
    if not ctx.mail.from_email:
        raise Quarantine("no usable From address")


async def dedupe(ctx: InboundContext) -> None:
    if await tickets.message_exists(ctx.dedupe_key):
        raise Duplicate(f"message {ctx.message_id} already delivered to {ctx.raw.mailbox}")


async def thread(ctx: InboundContext) -> None:
    assert ctx.mail is not None
    ctx.ticket = await threading.find_ticket(ctx.mail)


async def deliver(ctx: InboundContext) -> None:
    mail = ctx.mail
    assert mail is not None
    message = NewMessage(
        dedupe_key=ctx.dedupe_key,
        direction=Direction.INBOUND,
        from_email=mail.from_email,
        from_name=mail.from_name,
        to=mail.to,
        cc=mail.cc,
        subject=mail.subject,
        text=mail.text,
        message_id=ctx.message_id,
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        raw_message_id=ctx.raw.id,
    )
    if ctx.ticket is not None:
        if await tickets.add_message(ticket=ctx.ticket, message=message) is None:
            raise Duplicate(f"message {ctx.message_id} already on ticket {ctx.ticket.number}")
        return
    ctx.requester = await users.get_or_create_customer(email=mail.from_email, name=mail.from_name)
    ctx.ticket = await tickets.open_ticket(
        requester=ctx.requester,
        subject=mail.subject or "(no subject)",
        mailbox=ctx.raw.mailbox,
        first=message,
    )


Step = Callable[[InboundContext], Awaitable[None]]
STEPS: tuple[Step, ...] = (parse, require_sender, dedupe, thread, deliver)


async def process(raw: RawMessage) -> RawStatus:
    """Run every step over one raw message and record the outcome on it."""
    ctx = InboundContext(raw=raw, data=b"")
    step_name = "read"
    try:
        ctx.data = await raw_messages.read_bytes(raw)
        for step in STEPS:
            step_name = step.__name__
            await step(ctx)
    except Stop as stop:
        await raw_messages.mark(raw, stop.status, reason=stop.reason)
        log.info(
            "inbound.%s raw=%s message_id=%s step=%s reason=%s",
            stop.status,
            raw.id,
            ctx.message_id,
            step_name,
            stop.reason,
        )
        return stop.status
    except ConnectionFailure:
        raise  # the store is away: the message stays `received` and is tried again
    except Exception as error:
        log.exception("inbound.quarantined raw=%s message_id=%s step=%s", raw.id, ctx.message_id, step_name)
        reason = f"{step_name} failed: {type(error).__name__}: {error}"
        await raw_messages.mark(raw, RawStatus.QUARANTINED, reason=reason)
        return RawStatus.QUARANTINED
    assert ctx.ticket is not None
    await raw_messages.mark(raw, RawStatus.PROCESSED, ticket=ctx.ticket.number)
    log.info("inbound.processed raw=%s message_id=%s ticket=%s", raw.id, ctx.message_id, ctx.ticket.number)
    return RawStatus.PROCESSED
