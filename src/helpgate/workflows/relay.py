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
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from helpgate.core.loops import Backoff, Clock, PollingLoop, SystemClock
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
        clock: Clock | None = None,
    ) -> None:
        self._deliver = deliver
        self._lease = lease
        self._retry = Backoff(base=retry_base, cap=retry_cap, jitter=(0.5, 1.0))
        self._clock = clock or SystemClock()
        self._polling = PollingLoop(
            "outbox-relay", self._pass, interval=poll_interval, clock=self._clock, on_error=self._pass_failed
        )
        self._unsubscribe: Callable[[], None] | None = None
        self._idle = asyncio.Event()
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        self._polling.wake()

    async def start(self) -> None:
        self._unsubscribe = events.on_emit(self.wake, pending_only=True)
        self._polling.start()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._polling.stop()

    async def wait_idle(self, timeout: float) -> None:
        """Until a pass finds nothing due (for tests and benchmarks)."""
        self._idle.clear()
        self.wake()
        await asyncio.wait_for(self._idle.wait(), timeout)

    def health(self) -> dict[str, object]:
        running = self._polling.running
        return {"ok": running, "delivered": self.delivered, "failures": self.failures, "last_error": self.last_error}

    async def _pass(self) -> bool:
        busy = await self.relay_once()
        if not busy:
            self._idle.set()
        return busy

    def _pass_failed(self, error: Exception, _failures: int) -> None:
        """The store is away: say so, try again after the poll interval (or a wake-up)."""
        self.last_error = f"{type(error).__name__}: {error}"
        log.warning("relay.error %s", self.last_error)
        self._idle.set()

    async def relay_once(self) -> bool:
        """Deliver one batch; True when there was something to deliver."""
        lease = self._lease.total_seconds()
        # Read before the claim, so the lease as the store counts it ends later than ours.
        claimed_at = self._clock.monotonic()
        batch = await events.claim(lease=self._lease, now=self._clock.now())
        for index, stored in enumerate(batch):
            if self._clock.monotonic() - claimed_at > lease / 2:
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
                delay = self._retry.delay(stored.attempts + 1)
                await events.put_back(
                    stored, error=self.last_error, delay=timedelta(seconds=delay), now=self._clock.now()
                )
                continue
            if await events.mark_sent(stored):
                self.delivered += 1
                log.info("relay.delivered id=%s name=%s", event.id, event.name)
        return bool(batch)
