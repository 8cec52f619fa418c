"""The outbound queue: one mail per Message-ID, rate limits and idempotency keys for automatic mail."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.mail_out import outbound
from helpgate.mail_out.templates import TemplateKind
from helpgate.models import OutboundMail
from tests.mail_out.outbound_mail import OUTGOING
from tests.mail_out.outbound_mail import queue_mail as _queue

Store = AsyncMongoClient[dict[str, Any]]


async def test_enqueue_is_idempotent_on_the_message_id(store: Store) -> None:
    mail = await _queue()
    again = await outbound.enqueue(
        mail.model_copy(update={"id": None, "revision_id": None}), loop_marker=OUTGOING.loop_marker
    )
    assert again.id == mail.id and await OutboundMail.find_all().count() == 1


#: One moment for every mail of a test: the rate limit counts in fixed ten-minute windows, so mail queued on both
#: sides of a window's end would be counted in two windows (a test that ran at :09:59 let 31 through).
NOW = utcnow()


async def _automatic(to: str, *, to_staff: bool = False, idempotency: str | None = None) -> OutboundMail | None:
    return await outbound.queue_automatic(
        outgoing=OUTGOING,
        template=TemplateKind.WELCOME,
        to=to,
        subject="Welcome",
        context={"user_name": "", "email": to, "role": "agent", "support_address": "help@acme.test"},
        now=NOW,
        to_staff=to_staff,
        idempotency=idempotency,
    )


async def test_rate_limit_holds_for_outsiders_not_for_staff(store: Store) -> None:
    outsider = [await _automatic("someone@example.org") for _ in range(31)]
    staff = [await _automatic("agent@acme.test", to_staff=True) for _ in range(31)]

    assert sum(mail is not None for mail in outsider) == 30 and outsider[-1] is None  # 30 per 10 minutes
    assert all(mail is not None for mail in staff)


async def test_idempotent_automatic_mail_is_queued_once(store: Store) -> None:
    first = await _automatic("someone@example.org", idempotency="ack 42")
    again = await _automatic("someone@example.org", idempotency="ack 42")
    other = await _automatic("someone@example.org", idempotency="ack 43")

    assert first is not None and again is not None and other is not None
    assert again.id == first.id and other.id != first.id
    assert await OutboundMail.find({"to": "someone@example.org"}).count() == 2


async def test_a_mail_that_cannot_be_composed_is_queued_all_the_same(store: Store) -> None:
    """Composing at queue time only saves the sender work: if it fails, the mail is queued without its bytes,
    so the sender composes it again and records the failure on the mail, where agents see it."""
    mail = await outbound.prepare(
        outgoing=OUTGOING,
        template=TemplateKind.WELCOME,
        to=["someone@example.org"],
        subject="Welcome\r\nBcc: everyone@example.org",  # the SMTP policy refuses a line break in a header
        context={"user_name": "", "email": "x@y", "role": "customer", "support_address": "help@acme.test"},
        now=utcnow(),
        automatic=True,
    )
    queued = await outbound.enqueue(mail, loop_marker=OUTGOING.loop_marker)
    good = await outbound.enqueue(
        mail.model_copy(update={"id": None, "revision_id": None, "key": f"x{mail.key}", "subject": "Welcome"}),
        loop_marker=OUTGOING.loop_marker,
    )

    stored = await outbound.get(queued.key)
    assert stored is not None and stored.data is None
    assert good.data is not None and b"Subject: Welcome\r\n" in good.data
