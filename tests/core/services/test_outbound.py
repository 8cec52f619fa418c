"""The outbound queue's state transitions: exclusive claims, claim-guarded updates, recovery after a crash."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import TemplateKind, Templates
from helpgate.core.models import DeliveryStatus, OutboundMail
from helpgate.core.models.clock import utcnow
from helpgate.core.services import outbound

Store = AsyncMongoClient[dict[str, Any]]
OUTGOING = Outgoing(
    from_address="help@acme.test", from_name="Acme", secret="s" * 32, templates=Templates(Path("/nonexistent"))
)


async def _queue(index: int = 0) -> OutboundMail:
    mail = await outbound.prepare(
        outgoing=OUTGOING,
        template=TemplateKind.WELCOME,
        to=[f"user{index}@example.org"],
        subject="Welcome",
        context={"user_name": "", "email": "x@y", "role": "customer", "support_address": "help@acme.test"},
        now=utcnow(),
        automatic=True,
    )
    return await outbound.enqueue(mail)


async def test_each_mail_is_claimed_once_under_concurrency(store: Store) -> None:
    keys = {(await _queue(index)).key for index in range(5)}
    claims = await asyncio.gather(
        *(outbound.claim(token=f"w{n}", now=utcnow(), lease=timedelta(minutes=5)) for n in range(12))
    )
    claimed = [mail for mail in claims if mail is not None]
    assert sorted(mail.key for mail in claimed) == sorted(keys)
    assert all(mail.status is DeliveryStatus.SENDING and mail.attempts == 1 for mail in claimed)


async def test_enqueue_is_idempotent_on_the_message_id(store: Store) -> None:
    mail = await _queue()
    again = await outbound.enqueue(mail.model_copy(update={"id": None, "revision_id": None}))
    assert again.id == mail.id and await OutboundMail.find_all().count() == 1


async def test_a_lost_claim_changes_nothing(store: Store) -> None:
    await _queue()
    mail = await outbound.claim(token="old", now=utcnow(), lease=timedelta(seconds=-1))
    assert mail is not None
    await outbound.recover(now=utcnow())  # lease expired before DATA: queued again, claim cleared
    assert not await outbound.begin_data(mail, now=utcnow())
    assert not await outbound.mark_sent(mail, reply="250 OK", now=utcnow())
    stored = await outbound.get(mail.key)
    assert stored is not None and stored.status is DeliveryStatus.QUEUED and stored.claim is None


async def test_recovery_requeues_before_data_and_never_after(store: Store) -> None:
    await _queue(1)
    await _queue(2)
    before = await outbound.claim(token="w", now=utcnow(), lease=timedelta(seconds=-1))
    during = await outbound.claim(token="w", now=utcnow(), lease=timedelta(seconds=-1))
    assert before is not None and during is not None
    assert await outbound.begin_data(during, now=utcnow())

    assert await outbound.recover(now=utcnow()) == (1, 1)

    requeued, uncertain = await outbound.get(before.key), await outbound.get(during.key)
    assert requeued is not None and requeued.status is DeliveryStatus.QUEUED
    assert uncertain is not None and uncertain.status is DeliveryStatus.UNCERTAIN
    # The original worker was alive after all and got its 250: the truth wins.
    assert await outbound.mark_sent(during, reply="250 OK", now=utcnow())
    sent = await outbound.get(during.key)
    assert sent is not None and sent.status is DeliveryStatus.SENT
    assert [entry.status for entry in sent.history] == ["queued", "sending", "uncertain", "sent"]


async def test_leases_not_expired_are_left_alone(store: Store) -> None:
    await _queue()
    assert await outbound.claim(token="w", now=utcnow(), lease=timedelta(minutes=5)) is not None
    assert await outbound.recover(now=utcnow()) == (0, 0)


async def _automatic(to: str, *, to_staff: bool = False, idempotency: str | None = None) -> OutboundMail | None:
    return await outbound.queue_automatic(
        outgoing=OUTGOING,
        template=TemplateKind.WELCOME,
        to=to,
        subject="Welcome",
        context={"user_name": "", "email": to, "role": "agent", "support_address": "help@acme.test"},
        now=utcnow(),
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
