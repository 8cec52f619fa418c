"""The inbound pipeline: named steps over one stored raw message, run in the order of STEPS.

A step ends the run only by raising Ignore, Duplicate or Quarantine; the runner records the outcome on the
RawMessage and logs one line with the message id, the step and the reason. Anything unexpected quarantines
the message (never drops it): `helpgate replay` can run it again once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from pymongo.errors import ConnectionFailure

from helpgate.accounts import users
from helpgate.core import log_context, metrics, plain_text
from helpgate.inbound import (
    authresults,
    copies,
    fingerprint,
    guards,
    lookalikes,
    mime,
    raw_messages,
    subjects,
    threading,
)
from helpgate.inbound.parts import PARTS_OMITTED
from helpgate.mail_out import message_ids, outbound, suppressions
from helpgate.mailboxes import mailboxes
from helpgate.models import AttachmentRef, Direction, Message, MessageFlag, RawMessage, RawStatus, Ticket, User
from helpgate.tickets import attachments, bodies, tickets
from helpgate.tickets.attachments import NewAttachment
from helpgate.tickets.tickets import NewMessage

log = logging.getLogger(__name__)


PARSE_IN_THREAD_BYTES = 256 * 1024


class Stop(Exception):
    status: RawStatus

    def __init__(self, reason: str, *, code: str, ticket: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # a short fixed name for the reason: the label metrics count it under
        self.ticket = ticket  # the ticket the message concerns, when known (a duplicate's original)


class Ignore(Stop):
    status = RawStatus.IGNORED


class Duplicate(Stop):
    status = RawStatus.DUPLICATE


class Quarantine(Stop):
    status = RawStatus.QUARANTINED


@dataclass(frozen=True)
class Policy:
    """What the pipeline needs to know of this installation; built once by the gateway."""

    secret: str = ""  # the installation's secret key: recognises our signed Message-IDs and reply addresses
    me: guards.Self = field(
        default_factory=lambda: guards.Self(addresses=frozenset(), loop_tag="", is_own_message_id=lambda _id: False)
    )
    trusted_authserv_ids: frozenset[str] = frozenset()
    quarantine_dmarc_fail: bool = False
    max_attachments: int = 100


@dataclass
class InboundContext:
    raw: RawMessage
    data: bytes
    mail: mime.ParsedMail | None = None
    message_id: str = ""
    fingerprint: str = ""
    dedupe_key: str = ""
    flags: list[str] = field(default_factory=list)
    requester: User | None = None
    sender: User | None = None  # the sender's account, as threading found or made it (None: it has none)
    ticket: Ticket | None = None
    resumed: Message | None = None  # this mail's own message, stored by a delivery that was cut off
    linked: list[int] = field(default_factory=list)  # tickets a new ticket links: the mail referred to them
    policy: Policy = field(default_factory=Policy)
    auto_reply_block: str | None = None
    auth: authresults.AuthResults = field(default_factory=authresults.AuthResults)


async def parse(ctx: InboundContext) -> None:
    try:
        # A big or many-parted mail takes seconds to parse: off the event loop, so the listeners keep answering.
        big = len(ctx.data) > PARSE_IN_THREAD_BYTES
        ctx.mail = await asyncio.to_thread(mime.parse, ctx.data) if big else mime.parse(ctx.data)
    except mime.MalformedMail as error:
        raise Quarantine(str(error), code="malformed") from error
    # Shown in every list and copied into the Subject of our replies: one clean line (the raw mail keeps all).
    ctx.mail.subject = plain_text.one_line(ctx.mail.subject, limit=plain_text.SUBJECT_CHARS)
    ctx.mail.from_name = plain_text.one_line(ctx.mail.from_name, limit=plain_text.NAME_CHARS)
    # Each attachment is a write of its own: a stranger's 1,000 tiny parts must not cost 1,000 writes.
    omitted = len(ctx.mail.attachments) - ctx.policy.max_attachments
    if omitted > 0 or PARTS_OMITTED in ctx.mail.defects:
        ctx.mail.attachments = ctx.mail.attachments[: ctx.policy.max_attachments]
        ctx.flags.append(MessageFlag.ATTACHMENTS_OMITTED)
        log.warning(
            "inbound.attachments_omitted raw=%s kept=%d omitted=%d", ctx.raw.id, len(ctx.mail.attachments), omitted
        )
    # No Message-ID: a synthetic one from the content keeps a second delivery of the same bytes a duplicate.
    ctx.message_id = ctx.mail.message_id or f"sha256-{ctx.raw.sha256}@helpgate.invalid"
    ctx.fingerprint = fingerprint.of(ctx.data)
    ctx.dedupe_key = f"{ctx.message_id} {ctx.fingerprint}"


async def require_sender(ctx: InboundContext) -> None:
    assert ctx.mail is not None
    if not ctx.mail.from_email and ctx.mail.report is None:  # a bounce may come from a bare MAILER-DAEMON
        raise Quarantine("no usable From address", code="no_sender")


async def guard(ctx: InboundContext) -> None:
    """Loops end here: our own mail coming back is ignored; automatic mail is kept but never answered."""
    mail = ctx.mail
    assert mail is not None
    me = ctx.policy.me
    own = guards.ourselves(mail, me)
    if own is not None:
        raise Ignore(own, code="own_mail")
    ctx.auto_reply_block = guards.auto_reply_block(mail, me)
    if lookalikes.mixed_script(mail.from_email):
        ctx.flags.append(MessageFlag.MIXED_SCRIPT_SENDER)
        log.warning("inbound.mixed_script_sender raw=%s sender=%r", ctx.raw.id, mail.from_email)
    ctx.auth = authresults.parse(mail.headers.get("authentication-results", ""), trust=await _trust(ctx))
    if ctx.auth.dmarc_failed and ctx.policy.quarantine_dmarc_fail:
        raise Quarantine(f"sender {mail.from_email} failed DMARC ({ctx.auth.as_dict()})", code="dmarc_failed")


async def _trust(ctx: InboundContext) -> authresults.Trust:
    """The installation's trusted authserv-ids, and for mail from an IMAP mailbox what it says of its provider."""
    trusted = ctx.policy.trusted_authserv_ids
    mailbox = await mailboxes.find_by_address(ctx.raw.mailbox) if ctx.raw.source.startswith("imap:") else None
    if mailbox is None:
        return authresults.Trust(authserv_ids=trusted)
    return authresults.Trust(
        authserv_ids=trusted | frozenset(mailbox.authserv_ids), first_header=mailbox.trust_first_authentication_results
    )


async def bounce(ctx: InboundContext) -> None:
    """A delivery report about one of our mails (it quotes our signed Message-ID) suppresses those of that
    mail's recipients that failed for good, and joins the mail's ticket; it never opens one. Anyone can write a
    report, so one that quotes no mail of ours suppresses nothing: else any stranger could silence any address."""
    mail = ctx.mail
    assert mail is not None
    report = mail.report
    if report is None:
        return
    original = report.original_message_id
    if not original or not message_ids.is_signed(original, secret=ctx.policy.secret):
        log.warning("inbound.report_not_ours raw=%s quoted=%s: nothing suppressed", ctx.raw.id, original)
        return
    sent = await outbound.get(original)
    ours = set(sent.recipients) if sent is not None else set()
    for recipient in report.recipients:
        if recipient.action != "failed" or not recipient.status.startswith("5"):
            continue
        if recipient.address not in ours:
            log.warning(
                "inbound.report_foreign_recipient raw=%s address=%s mail=%s", ctx.raw.id, recipient.address, original
            )
            continue
        await suppressions.suppress(
            address=recipient.address, reason=f"bounced {recipient.status} {recipient.diagnostic}".strip()
        )
    mail.in_reply_to = [original, *mail.in_reply_to]


FINISHED = (RawStatus.PROCESSED, RawStatus.DUPLICATE)


async def dedupe(ctx: InboundContext) -> None:
    """A copy of a mail already stored (the same Message-ID and the same fingerprint, whichever of our addresses
    or transports it came by) is a duplicate. A different mail that reuses a stored Message-ID is new, flagged."""
    earlier, reused = await copies.earlier_copy(
        message_id=ctx.message_id, fingerprint=ctx.fingerprint, mailbox=ctx.raw.mailbox
    )
    if earlier is None:
        if reused:
            ctx.flags.append(MessageFlag.REUSED_MESSAGE_ID)
            log.warning("inbound.reused_message_id raw=%s message_id=%s", ctx.raw.id, ctx.message_id)
        return
    if earlier.raw_message_id == ctx.raw.id and ctx.raw.status not in FINISHED:
        # This very mail, its delivery cut off after the message was stored (its instance stopped, or a later
        # step failed and it is replayed): finish that delivery instead of calling the mail its own duplicate.
        ctx.resumed = earlier
        ctx.dedupe_key = earlier.dedupe_key  # a message stored before the key took the fingerprint keeps its own
        log.info("inbound.resuming raw=%s message_id=%s ticket=%s", ctx.raw.id, ctx.message_id, earlier.ticket_number)
        return
    await tickets.record_delivery(earlier, address=ctx.raw.mailbox)
    raise Duplicate(
        f"message {ctx.message_id} already delivered (to {', '.join(earlier.delivered_to) or ctx.raw.mailbox})",
        code="duplicate",
        ticket=earlier.ticket_number,
    )


async def thread(ctx: InboundContext) -> None:
    assert ctx.mail is not None
    if ctx.resumed is not None:
        ctx.ticket = await Ticket.get(ctx.resumed.ticket_id)
        if ctx.ticket is None:
            raise Quarantine(f"the ticket of stored message {ctx.resumed.id} is gone", code="ticket_gone")
        return
    mail, secret = ctx.mail, ctx.policy.secret
    account = None
    if mail.report is None and threading.starts_a_conversation(mail, secret=secret):
        # It opens a ticket: its sender's account is looked for, or made as a customer, in one command.
        account = await users.get_or_create_customer(email=mail.from_email, name=mail.from_name)
    found = await threading.find_ticket(mail, secret=secret, authenticated=ctx.auth.dmarc_passed, account=account)
    ctx.ticket, ctx.linked, ctx.sender = found.ticket, found.linked, found.sender
    ctx.flags += [flag for flag in found.flags if flag not in ctx.flags]
    if ctx.ticket is not None and ctx.ticket.origin_key == ctx.dedupe_key:
        # The ticket this very mail opened before it was cut off (found again by its subject, say): opening it
        # again finishes it, announced as a new ticket rather than as a reply to itself.
        ctx.ticket = None
    if ctx.ticket is None and ctx.mail.report is not None:
        raise Ignore("delivery report for a message of no ticket", code="report_without_ticket")


async def deliver(ctx: InboundContext) -> None:
    """The message onto its ticket, written whole: its body and attachments go in with it (the attachments first,
    each stored once by its part), and a new ticket is inserted counting it already."""
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
        full_text=mail.full_text,
        html=mail.html,
        message_id=ctx.message_id,
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        raw_message_id=ctx.raw.id,
        participants=[mail.from_email, *mail.cc],
        thread_root=threading.thread_root(mail)[0],
        auto_reply_block=ctx.auto_reply_block,
        authentication=ctx.auth.as_dict(),
        fingerprint=ctx.fingerprint,
        delivered_to=[ctx.raw.mailbox],
        flags=ctx.flags,
    )
    if ctx.resumed is not None:
        assert ctx.ticket is not None
        kept = await _keep_attachments(ctx, ctx.ticket.number)
        # A message stored by a version that added its body in a later write: add it now.
        await bodies.record(dedupe_key=ctx.dedupe_key, full_text=mail.full_text, html=mail.html, attachments=kept)
        await tickets.finish_message(ticket=ctx.ticket, stored=ctx.resumed, message=message)
        return
    if ctx.ticket is not None:
        message = replace(message, attachments=await _keep_attachments(ctx, ctx.ticket.number))
        if await tickets.add_message(ticket=ctx.ticket, message=message) is None:
            raise Duplicate(
                f"message {ctx.message_id} already on ticket {ctx.ticket.number}",
                code="duplicate",
                ticket=ctx.ticket.number,
            )
        return
    ctx.requester = ctx.sender or await users.get_or_create_customer(email=mail.from_email, name=mail.from_name)
    ctx.ticket = await tickets.insert_ticket(
        requester=ctx.requester,
        subject=mail.subject or "(no subject)",
        mailbox=ctx.raw.mailbox,
        first=message,
        subject_key=subjects.key(mail.subject),
        auth_failed=ctx.auth.dmarc_failed,
        linked_tickets=ctx.linked,
    )
    message = replace(message, attachments=await _keep_attachments(ctx, ctx.ticket.number))
    await tickets.add_first_message(ticket=ctx.ticket, first=message)
    if ctx.auth.dmarc_failed:
        log.warning("inbound.dmarc_failed ticket=%s sender=%s", ctx.ticket.number, mail.from_email)


async def _keep_attachments(ctx: InboundContext, ticket_number: int) -> list[AttachmentRef]:
    """Attachments into GridFS (identical content once), before the message that refers to them."""
    mail = ctx.mail
    assert mail is not None
    files = [
        NewAttachment(
            part_index=part.index,
            filename=part.filename,
            content_type=part.content_type,
            data=part.data,
            sha256=part.sha256,
            sniffed_type=part.sniffed_type,
            content_id=part.content_id,
            inline=part.inline,
        )
        for part in mail.attachments
    ]
    kept = await attachments.store(message_key=ctx.dedupe_key, ticket_number=ticket_number, files=files)
    return [attachment.ref() for attachment in kept]


Step = Callable[[InboundContext], Awaitable[None]]
STEPS: tuple[Step, ...] = (parse, require_sender, guard, bounce, dedupe, thread, deliver)


async def process(raw: RawMessage, *, policy: Policy | None = None) -> RawStatus:
    """Run every step over one raw message and record the outcome on it; its log lines carry its ids."""
    started = time.monotonic()
    with log_context.scope(raw=str(raw.id)):
        status = await _run(raw, policy or Policy())
    metrics.INBOUND_SECONDS.observe(time.monotonic() - started)
    return status


async def _run(raw: RawMessage, policy: Policy) -> RawStatus:
    ctx = InboundContext(raw=raw, data=b"", policy=policy)
    step_name = "read"
    try:
        ctx.data = await raw_messages.read_bytes(raw)
        for step in STEPS:
            step_name = step.__name__
            await step(ctx)
            log_context.update(message_id=ctx.message_id, ticket=ctx.ticket.number if ctx.ticket else None)
    except Stop as stop:
        log_context.update(ticket=stop.ticket)
        await raw_messages.mark(raw, stop.status, reason=stop.reason, ticket=stop.ticket)
        log.info(
            "inbound.%s raw=%s message_id=%s step=%s reason=%s",
            stop.status,
            raw.id,
            ctx.message_id,
            step_name,
            stop.reason,
        )
        counter = metrics.INBOUND_QUARANTINED if isinstance(stop, Quarantine) else metrics.INBOUND_IGNORED
        counter.labels(reason=stop.code).inc()
        return stop.status
    except ConnectionFailure:
        raise  # the store is away: the message stays `received` and is tried again
    except Exception as error:
        log.exception("inbound.quarantined raw=%s message_id=%s step=%s", raw.id, ctx.message_id, step_name)
        reason = f"{step_name} failed: {type(error).__name__}: {error}"
        await raw_messages.mark(raw, RawStatus.QUARANTINED, reason=reason)
        metrics.INBOUND_QUARANTINED.labels(reason=f"{step_name}_failed").inc()
        return RawStatus.QUARANTINED
    assert ctx.ticket is not None
    await raw_messages.mark(raw, RawStatus.PROCESSED, ticket=ctx.ticket.number)
    log.info("inbound.processed raw=%s message_id=%s ticket=%s", raw.id, ctx.message_id, ctx.ticket.number)
    metrics.INBOUND_ACCEPTED.labels(source=metrics.source_kind(raw.source)).inc()
    return RawStatus.PROCESSED
