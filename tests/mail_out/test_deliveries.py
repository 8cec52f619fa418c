"""Delivery states: exclusive batch claims, claim-guarded updates, sender journals and recovery after a crash."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.mail_out import deliveries, outbound, senders
from helpgate.models import DeliveryStatus, OutboundMail
from tests.mail_out.outbound_mail import queue_mail as _queue

Store = AsyncMongoClient[dict[str, Any]]
LEASE = timedelta(minutes=5)


async def _status(mail: OutboundMail) -> DeliveryStatus:
    stored = await outbound.get(mail.key)
    assert stored is not None
    return stored.status


async def test_each_mail_is_claimed_once_under_concurrency(store: Store) -> None:
    keys = {(await _queue(index)).key for index in range(9)}
    claimed: list[OutboundMail] = []
    for _round in range(9):  # six workers racing for the same due mails, until none is left
        batches = await asyncio.gather(
            *(deliveries.claim_batch(token=f"w{n}", now=utcnow(), lease=LEASE, limit=4) for n in range(6))
        )
        assert all(mail.claim == f"w{n}" for n, batch in enumerate(batches) for mail in batch)
        claimed += [mail for batch in batches for mail in batch]
    assert sorted(mail.key for mail in claimed) == sorted(keys)  # every one, none twice
    assert all(mail.status is DeliveryStatus.SENDING and mail.attempts == 1 for mail in claimed)


async def test_a_batch_is_claimed_oldest_due_first_up_to_its_limit(store: Store) -> None:
    mails = [await _queue(index) for index in range(3)]
    batch = await deliveries.claim_batch(token="w", now=utcnow(), lease=LEASE, limit=2)
    assert [mail.key for mail in batch] == [mails[0].key, mails[1].key]
    assert await _status(mails[2]) is DeliveryStatus.QUEUED


async def test_a_lost_claim_changes_nothing(store: Store) -> None:
    await _queue()
    mail = await deliveries.claim(token="old", now=utcnow(), lease=timedelta(seconds=-1))
    assert mail is not None
    await deliveries.recover(now=utcnow(), lease=LEASE)  # no journal, lease expired, DATA not begun: queued again
    assert not await deliveries.mark_sent(mail, reply="250 OK", now=utcnow())
    assert await deliveries.release_many([mail], now=utcnow(), detail="stopping") == 0
    stored = await outbound.get(mail.key)
    assert stored is not None and stored.status is DeliveryStatus.QUEUED and stored.claim is None


async def test_recovery_requeues_what_the_journal_does_not_list_and_never_resends_what_it_does(store: Store) -> None:
    await _queue(1)
    await _queue(2)
    await senders.register("crashed", now=utcnow())
    before, during = await deliveries.claim_batch(token="crashed", now=utcnow(), lease=LEASE, limit=2)
    assert await senders.write("crashed", started=[(during.id, during.attempts)], now=utcnow())  # type: ignore[list-item]

    # The sender stops renewing its journal: a lease later it counts as stopped, whatever the mails' leases say.
    assert await deliveries.recover(now=utcnow() + LEASE * 2, lease=LEASE) == (1, 1)

    assert await _status(before) is DeliveryStatus.QUEUED
    uncertain = await outbound.get(during.key)
    assert uncertain is not None and uncertain.status is DeliveryStatus.UNCERTAIN
    assert uncertain.last_error is not None and "may have been delivered" in uncertain.last_error
    assert (await outbound.get(before.key)).data is not None and uncertain.data is None  # type: ignore[union-attr]
    assert await senders.get("crashed") is None  # settled, then forgotten
    # The original sender was alive after all and got its 250: the truth wins.
    assert await deliveries.mark_sent_many([(during, "250 OK")], now=utcnow()) == {during.id}
    sent = await outbound.get(during.key)
    assert sent is not None and sent.status is DeliveryStatus.SENT
    assert [entry.status for entry in sent.history] == ["queued", "sending", "uncertain", "sent"]


async def test_recovery_records_sent_what_the_journal_says_was_answered(store: Store) -> None:
    answered_mail, in_data = await _queue(1), await _queue(2)
    await senders.register("crashed", now=utcnow())
    answered, during = await deliveries.claim_batch(token="crashed", now=utcnow(), lease=LEASE, limit=2)
    assert answered.id is not None and during.id is not None
    at = utcnow() - timedelta(seconds=1)
    # Both began DATA; the first got its 250, which the journal carries until the group records it on the mail.
    answer = senders.Answered(mail=answered.id, attempt=answered.attempts, reply="250 2.0.0 queued as X", at=at)
    started = [(answered.id, answered.attempts), (during.id, during.attempts)]
    assert await senders.write("crashed", started=started, answered=[answer], now=utcnow())

    assert await deliveries.recover(now=utcnow() + LEASE * 2, lease=LEASE) == (0, 1)

    sent = await outbound.get(answered_mail.key)
    assert sent is not None and sent.status is DeliveryStatus.SENT and sent.smtp_reply == "250 2.0.0 queued as X"
    assert sent.sent_at is not None and abs(sent.sent_at - at) < timedelta(milliseconds=2) and sent.data is None
    assert await _status(in_data) is DeliveryStatus.UNCERTAIN  # no answer: it may or may not have arrived


async def test_a_fenced_sender_can_list_nothing_more(store: Store) -> None:
    await senders.register("frozen", now=utcnow())
    await deliveries.recover(now=utcnow() + LEASE * 2, lease=LEASE)
    mail = await _queue()
    assert not await senders.write("frozen", started=[(mail.id, 1)], now=utcnow())  # type: ignore[list-item]


async def test_a_sender_that_renews_before_the_fence_lands_stays_alive(store: Store) -> None:
    await senders.register("slow", now=utcnow() - LEASE * 2)
    [stale] = await senders.stale(before=utcnow() - LEASE)
    assert await senders.write("slow", started=[], now=utcnow())  # it renews after recovery read its journal

    assert not await senders.fence(stale)
    journal = await senders.get("slow")
    assert journal is not None and not journal.fenced


async def test_mail_of_a_live_sender_is_left_alone_even_after_its_lease(store: Store) -> None:
    await _queue()
    await senders.register("alive", now=utcnow())
    mail = await deliveries.claim(token="alive", now=utcnow(), lease=timedelta(seconds=-1))
    assert mail is not None

    assert await deliveries.recover(now=utcnow(), lease=LEASE) == (0, 0)
    assert await _status(mail) is DeliveryStatus.SENDING


async def test_mail_claimed_without_a_journal_is_judged_by_its_lease(store: Store) -> None:
    await _queue(1)
    await _queue(2)
    expired = await deliveries.claim(token="by hand", now=utcnow(), lease=timedelta(seconds=-1))
    current = await deliveries.claim(token="by hand", now=utcnow(), lease=LEASE)
    assert expired is not None and current is not None

    assert await deliveries.recover(now=utcnow(), lease=LEASE) == (1, 0)
    assert await _status(expired) is DeliveryStatus.QUEUED
    assert await _status(current) is DeliveryStatus.SENDING


async def test_sent_marks_are_recorded_together(store: Store) -> None:
    for index in range(3):
        await _queue(index)
    batch = await deliveries.claim_batch(token="w", now=utcnow(), lease=LEASE, limit=3)

    recorded = await deliveries.mark_sent_many(
        [(mail, f"250 queued as {n}") for n, mail in enumerate(batch)], now=utcnow()
    )

    assert recorded == {mail.id for mail in batch}
    stored = [await outbound.get(mail.key) for mail in batch]
    assert [mail.smtp_reply for mail in stored if mail is not None] == [
        "250 queued as 0",
        "250 queued as 1",
        "250 queued as 2",
    ]
    assert all(mail is not None and mail.status is DeliveryStatus.SENT and mail.lease_until is None for mail in stored)
