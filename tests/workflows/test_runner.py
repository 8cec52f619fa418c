"""The local durable runner on the real store: memoised steps, idempotency, restarts, sleeps, retries,
concurrency limits and cancellation. Side effects that must survive a restart are counted in Mongo."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from helpgate.core.clock import stored as as_stored
from helpgate.core.clock import utcnow
from helpgate.core.loops import ManualClock
from helpgate.models import OutboxEvent, RunStatus, WorkflowRun
from helpgate.tickets import counters
from helpgate.workflows.local_step import step_key
from helpgate.workflows.runner import LocalRunner
from helpgate.workflows.step import Cancel, Context, Event, FirstSleep, Json, PermanentError, Step, Workflow
from tests.store_commands import Commands

Store = AsyncMongoClient[dict[str, Any]]
FAST: dict[str, Any] = {"retry_base": 0.05, "sweep_interval": 0.1, "lease": timedelta(seconds=3)}


@asynccontextmanager
async def running(*workflows: Workflow, grace: float = 5.0, **options: Any) -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(workflows, **{**FAST, **options})
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop(grace)


def counted(name: str, value: Json = None) -> Callable[[], Awaitable[Json]]:
    """A step body that counts its executions in the store."""

    async def body() -> Json:
        await counters.increment(name)
        return value

    return body


async def runs_of(function_id: str) -> list[WorkflowRun]:
    return await WorkflowRun.find({"function_id": function_id}).to_list()


async def only_run(function_id: str) -> WorkflowRun:
    found = await runs_of(function_id)
    assert len(found) == 1
    return found[0]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def status_is(function_id: str, status: RunStatus) -> bool:
    return (await only_run(function_id)).status == status


def event(name: str = "ticket/created", id: str = "evt-1", **data: Any) -> Event:
    return Event(id=id, name=name, data=data)


async def test_three_step_function_runs_each_step_once_and_stores_its_output(store: Store) -> None:
    async def handler(ctx: Context, step: Step) -> Json:
        one = await step.run("one", counted("one", 1))
        two = await step.run("two", counted("two", 2))
        three = await step.run("three", counted("three", {"ticket": ctx.event.data["ticket_id"]}))
        return {"sum": one + two, "three": three}

    async with running(Workflow(id="three", trigger="ticket/created", handler=handler)) as runner:
        await runner.dispatch(event(ticket_id=7))
        await runner.wait_idle(10)

    run = await only_run("three")
    assert run.status == RunStatus.COMPLETED and run.attempt == 0
    assert run.output == {"sum": 3, "three": {"ticket": 7}}
    assert run.steps[step_key("two")] == {"id": "two", "data": 2}
    assert [await counters.current(name) for name in ("one", "two", "three")] == [1, 1, 1]


async def test_the_same_event_dispatched_twice_makes_one_run(store: Store) -> None:
    async def handler(ctx: Context, step: Step) -> Json:
        return await step.run("side-effect", counted("effect", "done"))

    workflow = Workflow(id="once", trigger="ticket/created", handler=handler)
    async with running(workflow) as runner:
        await asyncio.gather(runner.dispatch(event()), runner.dispatch(event()))
        await runner.wait_idle(10)
        await runner.dispatch(event())  # a redelivery after completion
        await runner.wait_idle(10)

    assert (await only_run("once")).status == RunStatus.COMPLETED
    assert await counters.current("effect") == 1


async def test_a_run_cut_off_mid_step_is_finished_by_a_new_runner(store: Store) -> None:
    never = asyncio.Event()

    def workflow(*, hang: bool) -> Workflow:
        async def second() -> Json:
            await counters.increment("two.started")
            if hang:
                await never.wait()
            return 2

        async def handler(ctx: Context, step: Step) -> Json:
            one = await step.run("one", counted("one", 1))
            return one + await step.run("two", second)

        return Workflow(id="resumable", trigger="ticket/created", handler=handler)

    first = LocalRunner([workflow(hang=True)], **FAST)
    await first.start()
    await first.dispatch(event())
    await until(lambda: _counter_is("two.started", 1))
    await first.stop(grace=0)  # a hard stop: step two is cancelled in flight
    cut = await only_run("resumable")
    assert cut.status == RunStatus.RUNNING and list(cut.steps) == [step_key("one")]

    async with running(workflow(hang=False)) as second:
        await until(lambda: status_is("resumable", RunStatus.COMPLETED))
        await second.wait_idle(5)

    run = await only_run("resumable")
    assert run.output == 3 and run.attempt == 0
    assert await counters.current("one") == 1
    assert await counters.current("two.started") == 2


async def test_a_run_queued_while_no_runner_ran_is_found_by_the_next_sweep_on_the_runners_clock(store: Store) -> None:
    clock = ManualClock()
    ran = asyncio.Event()

    async def handler(ctx: Context, step: Step) -> Json:
        ran.set()
        return None

    swept = Workflow(id="swept", trigger="ticket/created", handler=handler)
    async with running(swept, sweep_interval=5.0, clock=clock):
        await clock.waiting()  # the first sweep found nothing
        await LocalRunner([swept]).dispatch(event())  # a runner not started queues the run for whoever runs
        await clock.advance(4.9)
        assert not ran.is_set() and await status_is("swept", RunStatus.QUEUED)
        await clock.advance(0.1)
        async with asyncio.timeout(10):
            await ran.wait()
        await until(lambda: status_is("swept", RunStatus.COMPLETED))


async def test_a_runner_cut_off_from_the_store_stops_before_its_lease_could_be_taken(
    frozen_store: Callable[[bool], None], caplog: pytest.LogCaptureFixture
) -> None:
    """The store stops answering for longer than two thirds of the lease (but less than the lease): the runner
    cannot tell whether its claim still holds, so it runs no further step under it. The run is resumed once
    the lease lapses, and each step still runs once."""
    lease = 3.0
    started = asyncio.Event()

    async def long_first() -> Json:
        started.set()
        await asyncio.sleep(lease)
        await counters.increment("first")
        return 1

    async def handler(ctx: Context, step: Step) -> Json:
        one = await step.run("first", long_first)
        return one + await step.run("second", counted("second", 1))

    caplog.set_level(logging.WARNING, logger="helpgate.workflows.runner")
    workflow = Workflow(id="partitioned", trigger="ticket/created", handler=handler)
    async with running(workflow, lease=timedelta(seconds=lease)) as runner:
        await runner.dispatch(event())
        await asyncio.wait_for(started.wait(), 10)
        frozen_store(True)
        await asyncio.sleep(lease * 0.8)  # past the 2 s the runner waits for a renewal, short of the lease
        frozen_store(False)
        await until(lambda: status_is("partitioned", RunStatus.COMPLETED), 20)

    assert "workflow.claim_unconfirmed fn=partitioned" in caplog.text
    run = await only_run("partitioned")
    assert run.output == 2
    assert await counters.current("first") == 1 and await counters.current("second") == 1


async def _counter_is(name: str, value: int) -> bool:
    return await counters.current(name) == value


async def test_a_sleep_survives_a_restart_and_ends_on_time(store: Store) -> None:
    async def handler(ctx: Context, step: Step) -> Json:
        await step.run("before", counted("before"))
        await step.sleep("pause", timedelta(seconds=1.5))
        return await step.run("after", _now_iso)

    workflow = Workflow(id="sleeper", trigger="ticket/created", handler=handler)
    async with running(workflow) as first:
        await first.dispatch(event())
        await until(lambda: status_is("sleeper", RunStatus.SLEEPING))
    sleeping = await only_run("sleeper")
    wake_at: datetime = sleeping.steps[step_key("pause")]["wake_at"]
    assert sleeping.next_run_at == wake_at

    async with running(workflow):
        await asyncio.sleep(max(0.0, (wake_at - utcnow()).total_seconds() - 0.3))
        assert await status_is("sleeper", RunStatus.SLEEPING)
        await until(lambda: status_is("sleeper", RunStatus.COMPLETED))

    run = await only_run("sleeper")
    assert datetime.fromisoformat(run.output) >= wake_at
    assert await counters.current("before") == 1


async def _now_iso() -> Json:
    return utcnow().isoformat()


async def test_a_flaky_step_is_retried_with_backoff_until_it_succeeds(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def flaky() -> Json:
        if await counters.increment("flaky") <= 2:
            raise RuntimeError("store away")
        return "ok"

    async def handler(ctx: Context, step: Step) -> Json:
        await step.send_event("announce", "test/started", {"run": ctx.run_id})
        await step.run("first", counted("first"))
        return await step.run("flaky", flaky)

    caplog.set_level("INFO", logger="helpgate.workflows.runner")
    started = time.monotonic()
    async with running(Workflow(id="flaky", trigger="ticket/created", handler=handler, retries=3)) as runner:
        await runner.dispatch(event())
        await runner.wait_idle(10)

    run = await only_run("flaky")
    assert run.status == RunStatus.COMPLETED and run.output == "ok" and run.attempt == 2
    assert run.last_error == "RuntimeError: store away"
    assert time.monotonic() - started >= (0.05 + 0.1) * 0.75  # base·2^0 + base·2^1, less the jitter
    assert await counters.current("flaky") == 3 and await counters.current("first") == 1
    assert await OutboxEvent.find({"name": "test/started"}).count() == 1
    assert "workflow.run_retry fn=flaky" in caplog.text and "attempt=2" in caplog.text


async def test_a_step_that_always_fails_fails_the_run_and_calls_on_failure_once(store: Store) -> None:
    failures: list[tuple[str, str]] = []

    async def broken() -> Json:
        await counters.increment("broken")
        raise ValueError("boom")

    async def handler(ctx: Context, step: Step) -> Json:
        return await step.run("broken", broken)

    async def on_failure(ctx: Context, error: str) -> None:
        failures.append((ctx.event.id, error))
        raise RuntimeError("the failure handler's own failure is only logged")

    workflow = Workflow(id="doomed", trigger="ticket/created", handler=handler, retries=2, on_failure=on_failure)
    async with running(workflow) as runner:
        await runner.dispatch(event())
        await runner.wait_idle(10)
        await asyncio.sleep(0.2)

    run = await only_run("doomed")
    assert run.status == RunStatus.FAILED and run.attempt == 2
    assert run.last_error == "ValueError: boom"
    assert await counters.current("broken") == 3  # the first try and 2 retries
    assert failures == [("evt-1", "ValueError: boom")]


async def test_a_permanent_error_fails_without_retrying(store: Store) -> None:
    failures: list[str] = []

    async def handler(ctx: Context, step: Step) -> Json:
        await step.run("count", counted("tries"))
        raise PermanentError("no such ticket")

    async def on_failure(ctx: Context, error: str) -> None:
        failures.append(error)

    workflow = Workflow(id="permanent", trigger="ticket/created", handler=handler, on_failure=on_failure)
    async with running(workflow) as runner:
        await runner.dispatch(event())
        await runner.wait_idle(10)

    run = await only_run("permanent")
    assert run.status == RunStatus.FAILED and run.attempt == 0
    assert failures == ["PermanentError: no such ticket"] and await counters.current("tries") == 1


async def test_a_step_result_must_be_json_and_comes_back_as_json(store: Store) -> None:
    seen: list[Json] = []

    async def handler(ctx: Context, step: Step) -> Json:
        seen.append(await step.run("tuple", _a_tuple))
        await step.run("set", _a_set)
        return None

    async with running(Workflow(id="json", trigger="ticket/created", handler=handler)) as runner:
        await runner.dispatch(event())
        await runner.wait_idle(10)

    run = await only_run("json")
    assert seen == [{"pair": [1, "2"]}]
    assert run.status == RunStatus.FAILED and run.attempt == 0
    assert run.last_error is not None and "the result of step 'set' is not JSON" in run.last_error


async def _a_tuple() -> Json:
    return {"pair": (1, "2")}


async def _a_set() -> Json:
    return {1, 2}


def _tracked(
    peaks: dict[str, int], current: dict[str, int], key: str, hold_until: int, reached: asyncio.Event
) -> Callable[[], Awaitable[Json]]:
    """A step body that counts how many bodies run at once.

    It stays running until `hold_until` bodies of its function ran together (or 5 s pass), so the peak
    measures what the runner allows, not how fast a loaded machine claims runs."""

    async def body() -> Json:
        current[key] = current.get(key, 0) + 1
        current["all"] = current.get("all", 0) + 1
        peaks[key] = max(peaks.get(key, 0), current[key])
        peaks["all"] = max(peaks.get("all", 0), current["all"])
        if peaks[key] >= hold_until:
            reached.set()
        await asyncio.sleep(0.15)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reached.wait(), 5)
        current[key] -= 1
        current["all"] -= 1
        return None

    return body


def _limited(
    function_id: str, peaks: dict[str, int], current: dict[str, int], limit: int | None, hold_until: int = 1
) -> Workflow:
    reached = asyncio.Event()

    async def handler(ctx: Context, step: Step) -> Json:
        return await step.run("work", _tracked(peaks, current, function_id, hold_until, reached))

    return Workflow(id=function_id, trigger=f"test/{function_id}", handler=handler, concurrency=limit)


async def test_no_more_runs_execute_at_once_than_the_runner_allows(store: Store) -> None:
    peaks: dict[str, int] = {}
    current: dict[str, int] = {}
    async with running(_limited("busy", peaks, current, None, hold_until=2), concurrency=2) as runner:
        for index in range(6):
            await runner.dispatch(event("test/busy", id=f"e{index}"))
        await runner.wait_idle(10)

    assert peaks["all"] == 2
    assert all(run.status == RunStatus.COMPLETED for run in await runs_of("busy"))


async def test_a_function_limit_holds_while_other_functions_use_the_free_slots(store: Store) -> None:
    peaks: dict[str, int] = {}
    current: dict[str, int] = {}
    workflows = (_limited("single", peaks, current, 1), _limited("free", peaks, current, None, hold_until=3))
    async with running(*workflows, concurrency=4) as runner:
        for index in range(3):
            await runner.dispatch(event("test/single", id=f"s{index}"))
            await runner.dispatch(event("test/free", id=f"f{index}"))
        await runner.wait_idle(10)

    assert peaks["single"] == 1 and peaks["free"] == 3 and peaks["all"] <= 4
    assert len([run for run in await runs_of("single") if run.status == RunStatus.COMPLETED]) == 3


def _sla(breaches: list[Any]) -> Workflow:
    async def handler(ctx: Context, step: Step) -> Json:
        await step.sleep("wait", timedelta(minutes=10))
        breaches.append(ctx.event.data["ticket_id"])
        return None

    return Workflow(
        id="sla",
        trigger="ticket/created",
        handler=handler,
        cancel=(Cancel(event="ticket/replied", match="ticket_id"),),
    )


async def test_a_matching_event_cancels_a_sleeping_run_and_others_stay(store: Store) -> None:
    breaches: list[Any] = []
    async with running(_sla(breaches)) as runner:
        await runner.dispatch(event(id="c1", ticket_id=1))
        await runner.dispatch(event(id="c2", ticket_id=2))
        await runner.wait_idle(10)
        await runner.dispatch(event("ticket/replied", id="r3", ticket_id=3))
        assert {run.status for run in await runs_of("sla")} == {RunStatus.SLEEPING}
        await runner.dispatch(event("ticket/replied", id="r1", ticket_id=1))

    statuses = {run.event_data["ticket_id"]: run.status for run in await runs_of("sla")}
    assert statuses == {1: RunStatus.CANCELLED, 2: RunStatus.SLEEPING}
    assert breaches == []


async def test_an_event_that_starts_and_cancels_a_function_keeps_its_own_run(store: Store) -> None:
    async def handler(ctx: Context, step: Step) -> Json:
        await step.sleep("wait", timedelta(minutes=10))
        return None

    workflow = Workflow(
        id="restartable",
        trigger="ticket/replied",
        handler=handler,
        cancel=(Cancel(event="ticket/replied", match="ticket_id"),),
    )
    async with running(workflow) as runner:
        await runner.dispatch(event("ticket/replied", id="r1", ticket_id=1))
        await runner.wait_idle(10)
        await runner.dispatch(event("ticket/replied", id="r2", ticket_id=1))
        await runner.wait_idle(10)

    statuses = {run.event_id: run.status for run in await runs_of("restartable")}
    assert statuses == {"r1": RunStatus.CANCELLED, "r2": RunStatus.SLEEPING}


async def test_a_cancelled_running_run_stops_at_its_next_step(store: Store) -> None:
    release = asyncio.Event()

    async def first() -> Json:
        await counters.increment("first.started")
        await release.wait()
        return 1

    async def handler(ctx: Context, step: Step) -> Json:
        await step.run("first", first)
        return await step.run("second", counted("second"))

    workflow = Workflow(
        id="cancellable",
        trigger="ticket/created",
        handler=handler,
        cancel=(Cancel(event="ticket/closed", match="ticket.id"),),
    )
    async with running(workflow) as runner:
        await runner.dispatch(event(ticket={"id": 5}))
        await until(lambda: _counter_is("first.started", 1))
        await runner.dispatch(event("ticket/closed", id="closed", ticket={"id": 5}))
        release.set()
        await runner.wait_idle(10)

    run = await only_run("cancellable")
    assert run.status == RunStatus.CANCELLED and run.steps == {}
    assert await counters.current("second") == 0


def _held(function_id: str, hold: asyncio.Event) -> Workflow:
    """Each run counts its start, then waits for `hold` (so a runner of concurrency 1 keeps the rest waiting)."""

    async def body() -> Json:
        await counters.increment(f"{function_id}.started")
        await hold.wait()
        return None

    async def handler(ctx: Context, step: Step) -> Json:
        return await step.run("work", body)

    return Workflow(id=function_id, trigger=f"test/{function_id}", handler=handler)


async def test_a_run_this_runner_creates_is_stored_claimed_and_no_other_runner_takes_it(store: Store) -> None:
    hold = asyncio.Event()
    async with running(_held("held", hold), concurrency=1) as runner, running(_held("held", hold)) as other:
        await runner.dispatch(event("test/held", id="first"))
        await runner.dispatch(event("test/held", id="second"))  # waits for the first, claimed by this runner
        stored = {run.event_id: run for run in await runs_of("held")}
        assert {run.status for run in stored.values()} == {RunStatus.RUNNING}
        assert stored["second"].claim is not None and stored["second"].lease_until is not None
        other.wake()
        await until(lambda: _counter_is("held.started", 1))
        hold.set()
        await runner.wait_idle(10)
        await other.wait_idle(10)

    assert {run.status for run in await runs_of("held")} == {RunStatus.COMPLETED}
    assert await counters.current("held.started") == 2


async def test_runs_created_claimed_but_not_started_are_handed_back_when_the_runner_stops(store: Store) -> None:
    hold = asyncio.Event()
    runner = LocalRunner([_held("handed", hold)], **{**FAST, "concurrency": 1})
    await runner.start()
    await runner.dispatch(event("test/handed", id="first"))
    await runner.dispatch(event("test/handed", id="second"))
    await until(lambda: _counter_is("handed.started", 1))
    await runner.stop(grace=0)

    stored = {run.event_id: run for run in await runs_of("handed")}
    assert stored["first"].status == RunStatus.RUNNING  # cut off in flight: resumed when its lease lapses
    assert stored["second"].status == RunStatus.QUEUED and stored["second"].claim is None
    assert stored["second"].next_run_at <= utcnow()  # due at once for whoever runs


async def test_a_created_run_that_waited_past_a_third_of_its_lease_is_claimed_again_and_lost_if_taken(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = asyncio.Event()
    async with running(_held("waited", hold), concurrency=1) as runner:
        await runner.dispatch(event("test/waited", id="first"))
        await runner.dispatch(event("test/waited", id="second"))
        await until(lambda: _counter_is("waited.started", 1))
        # Another runner took the second run meanwhile (its lease lapsed): a new claim token in the store.
        await WorkflowRun.find_one({"event_id": "second"}).update({"$set": {"claim": "someone-else"}})
        later = utcnow() + FAST["lease"] / 2
        monkeypatch.setattr("helpgate.workflows.runner.utcnow", lambda: later)
        hold.set()
        await until(lambda: status_is_for("waited", "first", RunStatus.COMPLETED))
        await runner.wait_idle(10)

    assert await counters.current("waited.started") == 1  # the second run was not executed here
    second = await WorkflowRun.find_one({"event_id": "second"})
    assert second is not None and second.claim == "someone-else" and second.status == RunStatus.RUNNING


async def status_is_for(function_id: str, event_id: str, status: RunStatus) -> bool:
    found = await WorkflowRun.find_one({"function_id": function_id, "event_id": event_id})
    return found is not None and found.status == status


async def test_a_step_that_only_reads_is_recorded_with_the_next_write_and_repeated_after_a_cut_off(
    store: Store,
) -> None:
    never = asyncio.Event()
    seen_during_write: list[list[str]] = []

    def workflow(*, hang: bool) -> Workflow:
        async def write() -> Json:
            run = await only_run("reader")
            seen_during_write.append(list(run.steps))
            await counters.increment("write.started")
            if hang:
                await never.wait()
            return "written"

        async def handler(ctx: Context, step: Step) -> Json:
            read = await step.run("read", counted("read", 1), reads_only=True)
            return [read, await step.run("write", write)]

        return Workflow(id="reader", trigger="ticket/created", handler=handler)

    first = LocalRunner([workflow(hang=True)], **FAST)
    await first.start()
    await first.dispatch(event())
    await until(lambda: _counter_is("write.started", 1))
    await first.stop(grace=0)  # cut off in the second step: the read was never recorded

    async with running(workflow(hang=False)) as second:
        await until(lambda: status_is("reader", RunStatus.COMPLETED))
        await second.wait_idle(5)

    run = await only_run("reader")
    assert run.output == [1, "written"]
    assert seen_during_write == [[], []]  # no write between the read and the write that follows it
    assert set(run.steps) == {step_key("read"), step_key("write")}  # both recorded with the outcome
    assert await counters.current("read") == 2  # read again after the cut-off, as a step that only reads may be


async def test_a_runner_with_a_backlog_leaves_new_runs_queued_for_any_instance(store: Store) -> None:
    hold = asyncio.Event()
    async with running(_held("busy", hold), concurrency=1) as runner:
        for index in range(5):
            await runner.dispatch(event("test/busy", id=f"e{index}"))
        stored = {run.event_id: run.status for run in await runs_of("busy")}
        hold.set()
        await runner.wait_idle(10)

    # One executing and two waiting (twice its concurrency) are this runner's; the rest any runner may take.
    assert [stored[f"e{index}"] for index in range(5)] == [RunStatus.RUNNING] * 3 + [RunStatus.QUEUED] * 2
    assert {run.status for run in await runs_of("busy")} == {RunStatus.COMPLETED}


# --- runs stored sleeping by their insert (Workflow.sleeps_first) ---------------------------------------------


def _waits(until_at: datetime, calls: list[str], **options: Any) -> Workflow:
    """Begins with a sleep until `until_at`, declared; then one step that reads the time."""

    async def handler(ctx: Context, step: Step) -> Json:
        calls.append("handler")
        await step.sleep("wait", max(until_at - utcnow(), timedelta(0)))
        return await step.run("after", _now_iso)

    return Workflow(
        id="waits",
        trigger="ticket/created",
        handler=handler,
        cancel=(Cancel(event="ticket/replied", match="ticket_id"),),
        sleeps_first=lambda data: ("wait", until_at),
        **options,
    )


def _unknown(data: dict[str, Any]) -> tuple[str, datetime] | None:
    return None


def _broken(data: dict[str, Any]) -> tuple[str, datetime] | None:
    raise KeyError("response_due_at")


async def test_a_run_that_begins_with_a_declared_sleep_is_stored_sleeping_by_its_insert_alone(
    store: Store, commands: Commands
) -> None:
    wake_at = utcnow() + timedelta(minutes=10)
    calls: list[str] = []
    async with running(_waits(wake_at, calls)) as runner:
        commands.recording = True
        await runner.dispatch(event())
        await runner.wait_idle(10)
        commands.recording = False

    run = await only_run("waits")
    assert calls == []  # not executed
    assert commands.writes("workflow_runs") == ["insert"]  # no claim, no suspend
    assert run.status == RunStatus.SLEEPING and run.claim is None and run.lease_until is None
    assert run.steps == {step_key("wait"): {"id": "wait", "wake_at": as_stored(wake_at)}}  # as LocalStep.sleep keeps it
    assert run.next_run_at == as_stored(wake_at) and run.updated_at == run.created_at and run.attempt == 0


async def test_a_run_stored_sleeping_is_woken_by_its_runners_timer_and_replays_past_its_sleep(
    store: Store, commands: Commands
) -> None:
    clock = ManualClock()  # the sweep never looks again: only the timer set by the dispatch can wake the run
    wake_at = utcnow() + timedelta(seconds=0.3)
    calls: list[str] = []
    async with running(_waits(wake_at, calls), clock=clock, sweep_interval=60.0) as runner:
        await clock.waiting()  # the first sweep found nothing
        commands.recording = True
        await runner.dispatch(event())
        await until(lambda: status_is("waits", RunStatus.COMPLETED))
        commands.recording = False

    run = await only_run("waits")
    assert calls == ["handler"] and datetime.fromisoformat(run.output) >= as_stored(wake_at)
    assert run.steps[step_key("wait")] == {"id": "wait", "wake_at": as_stored(wake_at)}
    assert commands.writes("workflow_runs") == ["insert", "findAndModify", "update"]  # created, claimed, completed


async def test_a_run_stored_sleeping_past_its_wake_time_is_taken_by_a_sweep_and_runs_on(store: Store) -> None:
    calls: list[str] = []
    workflow = _waits(utcnow() - timedelta(minutes=1), calls)
    await LocalRunner([workflow]).dispatch(event())  # not started: no timer, for whoever runs
    assert await status_is("waits", RunStatus.SLEEPING)

    async with running(workflow):
        await until(lambda: status_is("waits", RunStatus.COMPLETED))

    assert calls == ["handler"]


async def test_a_matching_event_cancels_a_run_stored_sleeping(store: Store) -> None:
    calls: list[str] = []
    async with running(_waits(utcnow() + timedelta(minutes=10), calls)) as runner:
        await runner.dispatch(event(id="c1", ticket_id=1))
        await runner.dispatch(event(id="c2", ticket_id=2))
        await runner.dispatch(event("ticket/replied", id="r1", ticket_id=1))
        await runner.wait_idle(10)

    statuses = {run.event_data["ticket_id"]: run.status for run in await runs_of("waits")}
    assert statuses == {1: RunStatus.CANCELLED, 2: RunStatus.SLEEPING} and calls == []


@pytest.mark.parametrize("declared", [None, _unknown, _broken], ids=["undeclared", "unknown", "broken"])
async def test_a_run_without_a_declared_first_sleep_is_executed_and_suspended_as_before(
    store: Store, commands: Commands, declared: FirstSleep | None
) -> None:
    calls: list[str] = []
    workflow = dataclasses.replace(_waits(utcnow() + timedelta(minutes=10), calls), sleeps_first=declared)
    async with running(workflow) as runner:
        commands.recording = True
        await runner.dispatch(event())
        await until(lambda: status_is("waits", RunStatus.SLEEPING))
        await runner.wait_idle(10)
        commands.recording = False

    run = await only_run("waits")
    assert calls == ["handler"]
    assert commands.writes("workflow_runs") == ["insert", "update"]  # created claimed, then suspended
    assert run.updated_at > run.created_at and set(run.steps) == {step_key("wait")}
