"""What the background loops share: one backoff, an injectable clock, and the polling loop they run on.

Every loop of helpgate claims work under a lease, looks for due work now and then, and backs off after errors
(the inbound sweep, the outbox relay, the local runner's sweep, the outbound dispatcher and recoverer, the mailbox
supervisor). `PollingLoop` is that skeleton, in the manner of Mailman's runners: a pass, then again at once if it
found work, else a wait for a wake-up or the interval, and after a failure a wait by the `Backoff`. Each loop takes
its `Clock`: `SystemClock` in production, `ManualClock` in tests, whose time moves only when the test advances it,
so leases, intervals and retries are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)

SETTLE_ROUNDS = 20  # event-loop rounds a ManualClock lets woken tasks run before time moves on
MAX_DOUBLINGS = 63  # 2^63 s is past any cap; a float power beyond 1023 would overflow

type Pass = Callable[[], Awaitable[bool]]
type OnError = Callable[[Exception, int], None]


@dataclass(frozen=True)
class Backoff:
    """base·2^(n-1) seconds after the n-th failure in a row, capped at `cap`, then multiplied by a random factor
    drawn from `jitter` (±25% by default), so a crowd of retries that failed together does not return together."""

    base: float
    cap: float
    jitter: tuple[float, float] = (0.75, 1.25)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def delay(self, failures: int) -> float:
        doublings = min(max(0, failures - 1), MAX_DOUBLINGS)
        low, high = self.jitter
        return min(self.cap, self.base * 2.0**doublings) * self.rng.uniform(low, high)


class Clock(Protocol):
    """The time a loop reads and waits on."""

    def now(self) -> datetime:
        """Aware UTC, like `core.models.clock.utcnow`."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Until `event` is set (True) or `timeout` seconds have passed (False)."""
        ...


class SystemClock:
    """The wall clock and the event loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout))
        except TimeoutError:
            return event.is_set()
        return True


class ManualClock:
    """A clock for tests: its time moves only by `advance`, which wakes the sleepers whose time has come in the
    order of their deadlines (ties in the order they began to sleep), moving the time to each deadline in turn and
    letting the woken task run on before it moves further. `now()` starts at the wall clock's time (stores compare
    it with their own), `monotonic()` at 0."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime.now(UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []  # (deadline, order, future): a heap
        self._order = itertools.count()
        self._slept = asyncio.Event()  # a sleeper was added

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._sleeper(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        if timeout <= 0:
            await asyncio.sleep(0)
            return event.is_set()
        sleeper = self._sleeper(timeout)
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()
        return event.is_set()

    def sleepers(self) -> list[float]:
        """Seconds until each task sleeping on this clock wakes, soonest first."""
        return [deadline - self._elapsed for deadline, _, future in sorted(self._sleepers) if not future.done()]

    async def waiting(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Until at least `count` tasks sleep on this clock (their loops went idle or are backing off); a guard of
        `timeout` real seconds turns a loop that never gets there into a TimeoutError."""
        async with asyncio.timeout(timeout):
            while len(self.sleepers()) < count:
                self._slept.clear()
                await self._slept.wait()

    async def advance(self, seconds: float) -> None:
        target = self._elapsed + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():  # its task was cancelled, or woken by its event
                continue
            self._elapsed = max(self._elapsed, deadline)
            future.set_result(None)
            await _settle()
        self._elapsed = target
        await _settle()

    def _sleeper(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        self._slept.set()
        return future


async def _settle() -> None:
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)


class PollingLoop:
    """Runs `pass_once` until stopped: again at once while it finds work (returns True), else after `interval`
    seconds (± `jitter` as a fraction) or a `wake()`, whichever comes first. After a failed pass `on_error` words it
    for the log, and the loop waits `backoff.delay(failures in a row)`, which a wake-up does not cut short (work
    arriving does not bring the store back); without a backoff it waits as when idle."""

    def __init__(
        self,
        name: str,
        pass_once: Pass,
        *,
        interval: float,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        on_error: OnError | None = None,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        wait_first: bool = False,
    ) -> None:
        self.name = name
        self.clock = clock or SystemClock()
        self._pass = pass_once
        self._interval = interval
        self._backoff = backoff
        self._on_error = on_error or self._log_error
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._wait_first = wait_first
        self._wake = asyncio.Event()
        self._finish = asyncio.Event()
        self._due_in: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._alarms: set[asyncio.Task[None]] = set()  # wake_in's, until they ring
        self.failures = 0  # passes failed in a row

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[None]:
        self._finish.clear()
        self.failures = 0
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self._task

    def wake(self) -> None:
        """Pass again now instead of at the end of the wait."""
        self._wake.set()

    def wake_in(self, seconds: float) -> None:
        """Pass again after `seconds` at most (on the loop's clock), also when it is waiting already: work that
        falls due before the end of the wait under way."""
        alarm = asyncio.create_task(self._ring(seconds), name=f"{self.name}-alarm")
        self._alarms.add(alarm)
        alarm.add_done_callback(self._alarms.discard)

    async def _ring(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.wake()

    def due_in(self, seconds: float) -> None:
        """For a pass that found nothing due yet: the wait after it ends after `seconds` at most."""
        self._due_in = seconds if self._due_in is None else min(self._due_in, seconds)

    def finish(self) -> None:
        """End after the pass under way (at once when waiting); `stop` cuts the pass short as well."""
        self._finish.set()
        self._wake.set()
        for alarm in self._alarms:
            alarm.cancel()

    async def stop(self) -> None:
        """Cut the loop off, mid-pass or mid-wait, and wait until it has ended."""
        task, self._task = self._task, None
        alarms = [*self._alarms, *([task] if task is not None else [])]
        for pending in alarms:
            pending.cancel()
        await asyncio.gather(*alarms, return_exceptions=True)

    async def _run(self) -> None:
        if self._wait_first:
            await self._idle()
        while not self._finish.is_set():
            self._wake.clear()
            self._due_in = None
            try:
                busy = await self._pass()
            except Exception as error:
                self.failures += 1
                self._on_error(error, self.failures)
                if self._backoff is None:
                    await self._idle()
                else:
                    await self.clock.wait(self._finish, self._backoff.delay(self.failures))
                continue
            self.failures = 0
            if busy:
                await asyncio.sleep(0)  # a pass that always finds work still lets the rest of the process run
            else:
                await self._idle()

    async def _idle(self) -> None:
        timeout = self._interval
        if self._jitter:
            timeout *= self._rng.uniform(1 - self._jitter, 1 + self._jitter)
        if self._due_in is not None:
            timeout = max(0.0, min(timeout, self._due_in))
        await self.clock.wait(self._wake, timeout)

    def _log_error(self, error: Exception, failures: int) -> None:
        log.error("loop.pass_failed loop=%s failures=%d", self.name, failures, exc_info=error)
