"""The outbox relay: delivers stored OutboxEvents to the workflow back end and marks them sent.

Each event is delivered with the outbox id as its event id; the local runner and Inngest both dedupe on
it, so an event delivered twice (a crash between delivery and marking it sent) starts each run once.
A failed delivery is retried with exponential backoff; the event stays in the outbox meanwhile.

A batch is claimed under a lease, and that lease bounds the work done on it: no delivery starts after half of
it has gone (the rest of the batch is handed back, untouched, for the next pass) and none may take more than a
quarter of it. So this relay has finished with every event before another instance may claim it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from helpgate.outbox import events
from helpgate.workflows.step import Event

log = logging.getLogger(__name__)

type Deliver = Callable[[Event], Awaitable[None]]


class Relay:
    def __init__(
        self,
        deliver: Deliver,
        *,
        poll_interval: float = 2.0,
        lease: timedelta = timedelta(minutes=2),
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
    ) -> None:
        self._deliver = deliver
        self._poll_interval = poll_interval
        self._lease = lease
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._idle = asyncio.Event()
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._unsubscribe = events.on_emit(self.wake, pending_only=True)
        self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_idle(self, timeout: float) -> None:
        """Until a pass finds nothing due (for tests and benchmarks)."""
        self._idle.clear()
        self.wake()
        await asyncio.wait_for(self._idle.wait(), timeout)

    def health(self) -> dict[str, object]:
        running = self._task is not None and not self._task.done()
        return {"ok": running, "delivered": self.delivered, "failures": self.failures, "last_error": self.last_error}

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store is away: say so, try again later
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("relay.error %s", self.last_error)
                busy = False
            if busy:
                continue
            self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()

    async def relay_once(self) -> bool:
        """Deliver one batch; True when there was something to deliver."""
        loop = asyncio.get_running_loop()
        lease = self._lease.total_seconds()
        claimed_at = loop.time()  # before the claim, so the lease as the store counts it ends later than ours
        batch = await events.claim(lease=self._lease)
        for index, stored in enumerate(batch):
            if loop.time() - claimed_at > lease / 2:
                await events.release(batch[index:])
                log.warning(
                    "relay.batch_cut delivered=%d released=%d reason=half of the %.0fs lease is gone",
                    index,
                    len(batch) - index,
                    lease,
                )
                break
            event = Event(id=str(stored.id), name=stored.name, data=stored.data)
            try:
                await asyncio.wait_for(self._deliver(event), lease / 4)
            except Exception as error:  # TimeoutError included: it may have arrived, the receiver dedupes by id
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                delay = min(self._retry_cap, self._retry_base * 2**stored.attempts) * (0.5 + random.random() / 2)
                await events.put_back(stored, error=self.last_error, delay=timedelta(seconds=delay))
                continue
            if await events.mark_sent(stored):
                self.delivered += 1
                log.info("relay.delivered id=%s name=%s", event.id, event.name)
        return bool(batch)
