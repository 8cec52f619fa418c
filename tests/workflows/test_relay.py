"""The outbox relay against a slow back end: two relays on one store never deliver the same event twice,
and a delivery that hangs is cut off and retried (the receiver dedupes by event id either way)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.loops import ManualClock
from helpgate.models import EventStatus, OutboxEvent
from helpgate.outbox import events
from helpgate.workflows.relay import Deliver, Relay
from helpgate.workflows.step import Event

Store = AsyncMongoClient[dict[str, Any]]
LEASE = timedelta(seconds=2)


@asynccontextmanager
async def relay(deliver: Deliver) -> AsyncIterator[Relay]:
    started = Relay(deliver, lease=LEASE, poll_interval=0.05, retry_base=0.05, retry_cap=0.2)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def none_left(status: dict[str, Any], timeout: float) -> None:
    """Until no outbox event has a status matching `status`."""
    async with asyncio.timeout(timeout):
        while True:
            if not await OutboxEvent.find({"status": status}).count():
                return
            await asyncio.sleep(0.05)


async def all_sent(timeout: float) -> None:
    await none_left({"$ne": str(EventStatus.SENT)}, timeout)


async def test_two_relays_and_a_slow_back_end_deliver_each_event_once(store: Store) -> None:
    """Ten events at 0.3 s each take longer than one lease: a relay that kept going past it would deliver the
    tail of its batch while the other relay, seeing the lease lapsed, delivers it too."""
    delivered: Counter[str] = Counter()

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.3)
        delivered[event.id] += 1

    emitted = [await events.emit("test/slow", key=f"slow {index}", data={"n": index}) for index in range(10)]
    async with relay(slow) as first:
        await none_left({"$eq": str(EventStatus.PENDING)}, 10)  # the first relay claims the whole batch
        async with relay(slow) as second:
            await all_sent(30)

    assert sorted(delivered) == sorted(str(event.id) for event in emitted)
    assert max(delivered.values()) == 1, f"delivered twice: {[id for id, n in delivered.items() if n > 1]}"
    assert first.delivered + second.delivered == 10
    stored = await OutboxEvent.find_all().to_list()
    assert all(event.attempts == 0 for event in stored), "events handed back untried count no failed attempt"


async def test_a_delivery_that_hangs_is_cut_off_and_retried(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def hangs_once(event: Event) -> None:
        calls[event.id] += 1
        if calls[event.id] == 1:
            await asyncio.Event().wait()  # never answers

    event = await events.emit("test/hang", key="hang", data={})
    async with relay(hangs_once):
        await all_sent(10)

    stored = await OutboxEvent.get(event.id)
    assert stored is not None and stored.status == EventStatus.SENT
    assert calls[str(event.id)] == 2 and stored.attempts == 1
    assert stored.last_error is None  # cleared when it was sent; the log kept the TimeoutError


async def test_a_failed_delivery_is_retried_once_its_backoff_delay_has_passed_on_the_relays_clock(
    store: Store,
) -> None:
    """Base 10 s, so the first retry waits 5-10 s (the relay's jitter); the test moves the relay's clock a second
    at a time, each move once the relay has gone idle, and nothing sleeps."""
    calls: list[str] = []

    async def fails_once(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise ConnectionError("back end away")

    event = await events.emit("test/retry", key="retry", data={})
    clock = ManualClock()  # from now on, time is the relay's clock: the event is due
    relay = Relay(fails_once, lease=LEASE, poll_interval=1.0, retry_base=10.0, retry_cap=60.0, clock=clock)
    await relay.start()
    try:
        await clock.waiting()
        assert calls == [str(event.id)]
        for _second in range(4):
            await clock.advance(1.0)
            await clock.waiting()
        assert len(calls) == 1, "retried before its backoff delay"
        for _second in range(8):
            await clock.advance(1.0)
            await clock.waiting()
    finally:
        await relay.stop()

    assert calls == [str(event.id)] * 2
    stored = await OutboxEvent.get(event.id)
    assert stored is not None and stored.status == EventStatus.SENT and stored.attempts == 1
