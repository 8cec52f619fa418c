"""The inbound sweep takes up stale `received` mail that nobody is processing, looking past what others hold."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.core.loops import ManualClock
from helpgate.inbound import raw_messages
from helpgate.inbound import worker as worker_module
from helpgate.inbound.worker import InboundWorker
from helpgate.models import RawMessage, RawStatus
from tests.mail import make_mail

Store = AsyncMongoClient[dict[str, Any]]


async def _stored(count: int, *, minutes_ago: float) -> list[PydanticObjectId]:
    """`count` raw messages still `received`, oldest first, the first `minutes_ago` minutes old."""
    ids: list[PydanticObjectId] = []
    for n in range(count):
        data = bytes(make_mail(subject=f"Swept {n}", message_id=f"<swept{n}-{minutes_ago}@example.org>"))
        raw = await raw_messages.store(data=data, source="smtp:test", mailbox="support@localhost")
        assert raw.id is not None
        await RawMessage.get_pymongo_collection().update_one(
            {"_id": raw.id}, {"$set": {"received_at": utcnow() - timedelta(minutes=minutes_ago - n / 60)}}
        )
        ids.append(raw.id)
    return ids


async def test_the_sweep_skips_mail_claimed_elsewhere_or_queued_here_and_takes_the_next(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "SWEEP_LIMIT", 3)
    stale = await _stored(8, minutes_ago=10)
    recent = await _stored(1, minutes_ago=0)
    now = utcnow()
    for raw_id in stale[:4]:  # another instance is processing the four oldest
        assert await raw_messages.claim(raw_id, owner="instance-b", ttl=timedelta(minutes=2), now=now) is not None
    # Its instance died and the claim lapsed: free again.
    await raw_messages.claim(stale[4], owner="instance-c", ttl=timedelta(minutes=2), now=now - timedelta(minutes=5))
    worker = InboundWorker(instance_id="instance-a")
    worker.submit(stale[5])  # already queued here

    taken = await worker.sweep_once()

    assert taken == 3
    queued = [worker._queue.get_nowait() for _ in range(worker.backlog)]
    assert queued == [stale[5], stale[4], stale[6], stale[7]]
    assert recent[0] not in queued
    assert await worker.sweep_once() == 0  # nothing new: all of it is queued here or held elsewhere


async def test_mail_stored_by_the_previous_version_without_claim_fields_is_claimed_and_swept(store: Store) -> None:
    [raw_id] = await _stored(1, minutes_ago=10)
    await RawMessage.get_pymongo_collection().update_one(
        {"_id": raw_id}, {"$unset": {"claimed_by": "", "claim_until": ""}}
    )
    worker = InboundWorker(instance_id="instance-a")
    assert await worker.sweep_once() == 1
    claimed = await raw_messages.claim(raw_id, owner="instance-a", ttl=timedelta(minutes=2), now=utcnow())
    assert claimed is not None and claimed.claimed_by == "instance-a"
    assert await raw_messages.claim(raw_id, owner="instance-b", ttl=timedelta(minutes=2), now=utcnow()) is None


async def test_mail_stored_under_the_receiving_instance_claim_is_swept_elsewhere_only_once_it_lapses(
    store: Store,
) -> None:
    receiving = InboundWorker(instance_id="instance-a", claim_seconds=120)
    await receiving.start()
    try:
        claim = receiving.claim_new()
        assert claim is not None and claim[0] == "instance-a"
        data = bytes(make_mail(subject="Held", message_id="<held@example.org>"))
        raw = await raw_messages.store(data=data, source="smtp", mailbox="support@localhost", claim=claim)
    finally:
        await receiving.stop(5)  # stopped before it took the message: its claim stays on it
    assert raw.id is not None
    await RawMessage.get_pymongo_collection().update_one(
        {"_id": raw.id}, {"$set": {"received_at": utcnow() - timedelta(minutes=10)}}
    )
    other = InboundWorker(instance_id="instance-b")
    assert await other.sweep_once() == 0  # held by instance-a's claim
    await RawMessage.get_pymongo_collection().update_one(
        {"_id": raw.id}, {"$set": {"claim_until": utcnow() - timedelta(seconds=1)}}
    )
    assert await other.sweep_once() == 1


async def test_the_sweep_runs_every_sweep_interval_on_the_workers_clock(store: Store) -> None:
    clock = ManualClock()
    worker = InboundWorker(instance_id="instance-a", clock=clock)
    await worker.start()
    try:
        [raw_id] = await _stored(1, minutes_ago=10)  # stored after the start: only a sweep finds it
        await clock.waiting()
        await clock.advance(worker_module.SWEEP_SECONDS - 1)
        assert worker.backlog == 0 and worker.processed == 0
        await clock.advance(1)
        await clock.waiting()  # the sweep is done and waits for the next one
        await worker.idle()
    finally:
        await worker.stop(5)

    assert worker.processed == 1
    raw = await RawMessage.get(raw_id)
    assert raw is not None and raw.status != RawStatus.RECEIVED
