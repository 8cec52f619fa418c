"""The backoff, the manual clock and the polling loop, driven by the manual clock: nothing here sleeps."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpgate.core.loops import Backoff, ManualClock, PollingLoop, SystemClock

EXACT = (1.0, 1.0)  # no jitter


class Script:
    """A pass that answers from a list (True: found work, False: nothing to do, an exception: failed; then False)
    and notes the clock's time at each call."""

    def __init__(self, clock: ManualClock, *answers: bool | Exception) -> None:
        self.clock = clock
        self.answers = list(answers)
        self.ran: list[float] = []
        self._ran = asyncio.Event()

    async def __call__(self) -> bool:
        self.ran.append(self.clock.monotonic())
        self._ran.set()
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def passes(self, count: int) -> None:
        async with asyncio.timeout(10):  # a guard, never reached when the loop works
            while len(self.ran) < count:
                self._ran.clear()
                await self._ran.wait()


@asynccontextmanager
async def polling(script: Script, **options: Any) -> AsyncIterator[PollingLoop]:
    loop = PollingLoop("test-loop", script, clock=script.clock, **{"interval": 60.0, **options})
    loop.start()
    try:
        yield loop
    finally:
        await loop.stop()


# --- Backoff ------------------------------------------------------------------------------------------


def test_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    backoff = Backoff(base=1.0, cap=30.0, jitter=EXACT)
    assert [backoff.delay(failures) for failures in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_jittered_delays_stay_within_a_quarter_of_the_capped_delay_and_spread() -> None:
    backoff = Backoff(base=2.0, cap=600.0, rng=random.Random(1))
    for failures in range(1, 12):
        capped = min(600.0, 2.0 * 2 ** (failures - 1))
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(capped * 0.75 <= delay <= capped * 1.25 for delay in delays)
        assert max(delays) - min(delays) > capped * 0.25


def test_the_same_random_source_gives_the_same_delays() -> None:
    first = Backoff(base=1.0, cap=300.0, jitter=(0.5, 1.0), rng=random.Random(7))
    second = Backoff(base=1.0, cap=300.0, jitter=(0.5, 1.0), rng=random.Random(7))
    assert [first.delay(n) for n in range(1, 10)] == [second.delay(n) for n in range(1, 10)]


def test_a_long_run_of_failures_stays_at_the_cap() -> None:
    assert Backoff(base=1.0, cap=30.0, jitter=EXACT).delay(5000) == 30.0


def test_no_failure_yet_waits_the_base() -> None:
    assert Backoff(base=5.0, cap=30.0, jitter=EXACT).delay(0) == 5.0


# --- ManualClock --------------------------------------------------------------------------------------


async def test_sleepers_wake_in_the_order_of_their_deadlines_each_at_its_time() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(name, seconds)) for name, seconds in (("c", 3), ("a", 1), ("b", 2), ("d", 2))]
    await clock.waiting(4)
    await clock.advance(5)

    assert woke == [("a", 1.0), ("b", 2.0), ("d", 2.0), ("c", 3.0)]
    assert clock.monotonic() == 5.0
    await asyncio.gather(*tasks)


async def test_nothing_wakes_before_its_time() -> None:
    clock = ManualClock()
    sleeping = asyncio.create_task(clock.sleep(10))
    await clock.waiting()

    await clock.advance(9.5)
    assert not sleeping.done()
    assert clock.sleepers() == [0.5]

    await clock.advance(0.5)
    assert sleeping.done()


async def test_a_task_that_sleeps_again_within_the_advance_wakes_again() -> None:
    clock = ManualClock()
    ticks: list[float] = []

    async def ticking() -> None:
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticking())
    await clock.waiting()
    await clock.advance(3.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert ticks == [1.0, 2.0, 3.0]
    assert clock.sleepers() == []


async def test_the_time_moves_only_when_advanced() -> None:
    start = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start and clock.monotonic() == 0.0
    await clock.advance(90)
    assert clock.now() == start + timedelta(seconds=90)
    assert clock.monotonic() == 90.0


async def test_waiting_for_an_event_ends_when_it_is_set_or_at_the_timeout() -> None:
    clock = ManualClock()
    event = asyncio.Event()
    set_later = asyncio.create_task(clock.wait(event, 60))
    await clock.waiting()
    event.set()
    assert await set_later is True
    assert clock.monotonic() == 0.0 and clock.sleepers() == []

    never_set = asyncio.create_task(clock.wait(asyncio.Event(), 60))
    await clock.waiting()
    await clock.advance(60)
    assert await never_set is False


async def test_the_system_clock_waits_for_an_event_or_times_out() -> None:
    clock = SystemClock()
    event = asyncio.Event()
    event.set()
    assert await clock.wait(event, 60) is True
    assert await clock.wait(asyncio.Event(), 0) is False
    assert clock.now().tzinfo is UTC


# --- PollingLoop --------------------------------------------------------------------------------------


async def test_a_pass_that_found_work_is_followed_by_another_at_once() -> None:
    script = Script(ManualClock(), True, True, False)
    async with polling(script, interval=5.0):
        await script.clock.waiting()
        assert script.ran == [0.0, 0.0, 0.0]
        assert script.clock.sleepers() == [5.0]


async def test_an_idle_loop_passes_again_after_its_interval_and_not_before() -> None:
    script = Script(ManualClock())
    async with polling(script, interval=5.0):
        await script.clock.waiting()
        await script.clock.advance(5)
        assert script.ran == [0.0, 5.0]
        await script.clock.advance(4.9)
        assert script.ran == [0.0, 5.0]
        await script.clock.advance(0.1)
        assert script.ran == [0.0, 5.0, 10.0]


async def test_failed_passes_wait_the_backoff_delays_and_a_success_starts_it_afresh() -> None:
    failures: list[int] = []
    script = Script(ManualClock(), *[ConnectionError("store away")] * 3, False, ConnectionError("again"))
    backoff = Backoff(base=1.0, cap=30.0, jitter=EXACT)
    async with polling(script, backoff=backoff, on_error=lambda _error, n: failures.append(n)):
        for expected in (1.0, 2.0, 4.0, 60.0):
            await script.clock.waiting()
            assert script.clock.sleepers() == [expected]
            await script.clock.advance(expected)
        await script.clock.waiting()
        assert script.clock.sleepers() == [1.0]
    assert script.ran == [0.0, 1.0, 3.0, 7.0, 67.0]
    assert failures == [1, 2, 3, 1]


async def test_without_a_backoff_a_failed_pass_waits_as_when_idle() -> None:
    script = Script(ManualClock(), RuntimeError("bug"))
    async with polling(script, interval=5.0, on_error=lambda _error, _n: None):
        await script.clock.waiting()
        assert script.clock.sleepers() == [5.0]


async def test_a_failed_pass_is_logged_with_the_loop_name_by_default(caplog: pytest.LogCaptureFixture) -> None:
    script = Script(ManualClock(), RuntimeError("bug"))
    with caplog.at_level(logging.ERROR, logger="helpgate.core.loops"):
        async with polling(script):
            await script.clock.waiting()
    assert "loop.pass_failed loop=test-loop failures=1" in caplog.text
    assert "RuntimeError: bug" in caplog.text


async def test_a_wake_up_cuts_the_idle_wait_short() -> None:
    script = Script(ManualClock())
    async with polling(script) as loop:
        await script.clock.waiting()
        loop.wake()
        await script.passes(2)
    assert script.ran == [0.0, 0.0]


async def test_a_wake_up_does_not_cut_a_backoff_short() -> None:
    script = Script(ManualClock(), ConnectionError("store away"))
    backoff = Backoff(base=10.0, cap=10.0, jitter=EXACT)
    async with polling(script, backoff=backoff, on_error=lambda _error, _n: None) as loop:
        await script.clock.waiting()
        loop.wake()
        await script.clock.advance(0)
        assert script.ran == [0.0]
        await script.clock.advance(10)
        assert script.ran == [0.0, 10.0]


async def test_a_pass_may_shorten_the_wait_after_it() -> None:
    clock = ManualClock()
    loop: PollingLoop

    async def due_soon() -> bool:
        if clock.monotonic() == 0.0:
            loop.due_in(2.0)  # say, a retry falls due then
        return False

    loop = PollingLoop("test-loop", due_soon, interval=5.0, clock=clock)
    loop.start()
    try:
        await clock.waiting()
        assert clock.sleepers() == [2.0]
        await clock.advance(2)
        assert clock.sleepers() == [5.0]
    finally:
        await loop.stop()


async def test_the_interval_may_be_jittered() -> None:
    script = Script(ManualClock())
    async with polling(script, interval=10.0, jitter=0.1, rng=random.Random(3)):
        await script.clock.waiting()
        [wait] = script.clock.sleepers()
    assert wait == 10.0 * random.Random(3).uniform(0.9, 1.1)


async def test_a_loop_may_wait_its_interval_before_its_first_pass() -> None:
    script = Script(ManualClock())
    async with polling(script, interval=15.0, wait_first=True):
        await script.clock.waiting()
        assert script.ran == []
        await script.clock.advance(15)
        assert script.ran == [15.0]


async def test_stop_ends_the_loop_mid_wait() -> None:
    script = Script(ManualClock())
    async with polling(script) as loop:
        await script.clock.waiting()
        await loop.stop()
        assert not loop.running
        assert script.clock.sleepers() == []


async def test_finish_ends_the_loop_once_the_pass_under_way_is_done() -> None:
    clock = ManualClock()
    release = asyncio.Event()
    passes = 0

    async def slow() -> bool:
        nonlocal passes
        passes += 1
        await release.wait()
        return True

    loop = PollingLoop("test-loop", slow, interval=5.0, clock=clock)
    task = loop.start()
    await asyncio.sleep(0)
    loop.finish()
    release.set()
    async with asyncio.timeout(10):
        await task
    assert passes == 1


async def test_wake_in_cuts_a_wait_already_under_way_short_on_the_loops_clock() -> None:
    clock = ManualClock()
    script = Script(clock)
    async with polling(script) as loop:
        await clock.waiting()  # idle after the first pass, for 60 s
        loop.wake_in(2.0)
        await clock.waiting(2)  # the wait and the alarm
        await clock.advance(1.9)
        assert len(script.ran) == 1
        await clock.advance(0.1)
        await script.passes(2)
    assert script.ran[1] - script.ran[0] == 2.0
