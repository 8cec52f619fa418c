"""The local durable runner: executes workflow functions on Mongo when no Inngest server is configured.

`dispatch(event)` creates one WorkflowRun per triggered function (idempotent by event id) and hands it to
the executor by id. A run is claimed with a lease (renewed while it executes), its handler called with a
`LocalStep` whose results are memoised in the run, so a run interrupted anywhere (a restart, a crash, a
sleep) resumes by replaying the handler against its memoised steps. Failures are retried with exponential
backoff and jitter, up to the function's `retries`; then the run fails and `on_failure` is called once.

A function that begins with a sleep its event's data settles (`Workflow.sleeps_first`, such as sla-escalation's
wait for the first-response target) gets its run stored sleeping by that insert, the sleep step memoised as
`LocalStep.sleep` records it, instead of a claim, an execution and a suspend write: when it falls due, the
handler replays past the sleep like any run woken from one. A cancel finds it as it finds any sleeping run.

Fresh runs, and this runner's own retries and wake-ups, reach the executor in process; a sweep every
`sweep_interval` seconds finds the rest in the store (runs queued while nobody ran, sleeps and retries of
other instances, runs whose runner died with its lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from beanie import PydanticObjectId

from helpgate.core import log_context
from helpgate.core.clock import utcnow
from helpgate.core.loops import Backoff, Clock, PollingLoop, SystemClock
from helpgate.models import RunStatus, WorkflowRun
from helpgate.outbox import runs
from helpgate.workflows.local_step import ClaimLost, LocalStep, Suspend, lookup, sleep_record, to_json
from helpgate.workflows.step import Cancel, Context, Event, PermanentError, Workflow, ticket_of

log = logging.getLogger(__name__)

SWEEP_LIMIT = 100  # due runs taken from the store per sweep
CLAIMED_AHEAD = 2  # runs waiting to start that a runner creates claimed, per unit of concurrency
STOP_GRACE = 10.0  # seconds `stop` lets executing runs finish
TIMER_MARGIN = 0.01  # seconds: the loop's monotonic timer must not fire before the wall clock reaches the due time


class LocalRunner:
    def __init__(
        self,
        workflows: Sequence[Workflow],
        *,
        concurrency: int = 4,
        lease: timedelta = timedelta(minutes=5),
        sweep_interval: float = 5.0,
        retry_base: float = 2.0,
        retry_cap: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        self._workflows = {workflow.id: workflow for workflow in workflows}
        self._function_ids = list(self._workflows)
        self._concurrency = max(1, concurrency)
        self._lease = lease
        self._retry = Backoff(base=retry_base, cap=retry_cap)
        self._clock = clock or SystemClock()
        self._ready: dict[PydanticObjectId, str] = {}  # run id → function id, in arrival order
        self._created: dict[PydanticObjectId, WorkflowRun] = {}  # runs this runner created claimed, not yet started
        self._active: dict[PydanticObjectId, asyncio.Task[None]] = {}
        self._active_per_function: Counter[str] = Counter()
        self._again: set[PydanticObjectId] = set()  # due again while still executing
        self._timers: dict[PydanticObjectId, tuple[asyncio.TimerHandle, bool]] = {}  # (handle, is a retry)
        self._sweeping = PollingLoop(
            "workflow-sweep", self._sweep, interval=sweep_interval, clock=self._clock, on_error=self._sweep_failed
        )
        self._running = False

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        self._sweeping.start()
        self._pump()
        log.info("workflow.runner_started functions=%s concurrency=%d", ",".join(self._function_ids), self._concurrency)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop claiming; let executing runs finish for up to `grace` seconds, then cut them off.

        A run cut off keeps its memoised steps and stays `running` under its lease: when that lapses, this
        or another instance resumes it."""
        self._running = False
        await self._sweeping.stop()
        self._ready.clear()
        created, self._created = list(self._created.values()), {}
        with contextlib.suppress(Exception):  # else their leases lapse and the sweep takes them then
            await runs.release(created, now=utcnow())
        tasks = list(self._active.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), set(tasks))
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if pending:
                log.warning("workflow.stop_timeout cut=%d", len(pending))
        for handle, _retry in self._timers.values():  # their runs are in the store, due at their time
            handle.cancel()
        self._timers.clear()
        self._ready.clear()
        self._again.clear()
        log.info("workflow.runner_stopped")

    def wake(self) -> None:
        """Look in the store for due runs now instead of at the next sweep."""
        self._sweeping.wake()

    async def wait_idle(self, timeout: float) -> None:
        """Until nothing is ready, executing or waiting for a retry in this runner, and nothing is due in the
        store (sleeping runs are not due); TimeoutError after `timeout` seconds. For tests."""
        async with asyncio.timeout(timeout):
            while True:
                busy = self._ready or self._active or any(retry for _handle, retry in self._timers.values())
                if not busy:
                    if not await runs.due(now=utcnow(), function_ids=self._function_ids, limit=1):
                        return
                    self.wake()
                await asyncio.sleep(0.02)

    # --- events ---------------------------------------------------------------------------------------

    async def dispatch(self, event: Event) -> None:
        """Start the functions this event triggers (once per event id) and cancel the runs it cancels.

        Safe to repeat: a redelivered event creates nothing new (the relay redelivers after an error)."""
        now = utcnow()
        triggered = [workflow for workflow in self._workflows.values() if workflow.trigger == event.name]
        new = [self._new_run(workflow, event) for workflow in triggered]
        # Runs this runner will start soon are stored claimed by it; with a backlog (or stopped) they are queued,
        # so that any instance's sweep may take them.
        keeps = self._running and len(self._ready) < self._concurrency * CLAIMED_AHEAD
        lease = self._lease if keeps else None
        created = {run.function_id: run for run in await runs.create_many(new, now=now, lease=lease)}
        for workflow in triggered:
            run = created.get(workflow.id)
            if run is None:
                log.info("workflow.run_duplicate fn=%s event=%s", workflow.id, event.id)
                continue
            assert run.id is not None
            if run.status == RunStatus.SLEEPING:
                self._sleeping(run)
                continue
            log.info("workflow.run_queued fn=%s run=%s event=%s", workflow.id, run.id, event.id)
            if lease is not None:
                self._created[run.id] = run
            self._enqueue(run.id, workflow.id)
        for workflow in self._workflows.values():
            for rule in workflow.cancel:
                if rule.event == event.name:
                    await self._cancel_runs(workflow, rule, event, now)

    def _new_run(self, workflow: Workflow, event: Event) -> runs.NewRun:
        """The run to store: already sleeping when the function begins with a sleep its event's data settles
        (`Workflow.sleeps_first`), that sleep memoised as `LocalStep.sleep` records it, so a replay goes past it."""
        new = runs.NewRun(workflow.id, event.id, event.name, event.data)
        if workflow.sleeps_first is None:
            return new
        try:
            first = workflow.sleeps_first(event.data)
            if first is not None and first[1].utcoffset() is None:
                raise ValueError(f"the wake time {first[1]} has no time zone")
        except Exception:  # the handler meets the same data and fails (retries, on_failure) where it is seen
            log.exception("workflow.sleeps_first_failed fn=%s event=%s", workflow.id, event.id)
            return new
        if first is None:
            return new
        key, record = sleep_record(*first)
        return dataclasses.replace(new, wake_at=record["wake_at"], steps={key: record})

    def _sleeping(self, run: WorkflowRun) -> None:
        """A run created sleeping: woken by this runner's timer (or any instance's sweep) when it falls due."""
        assert run.id is not None
        if self._running:
            self._later(run.id, run.function_id, run.next_run_at, retry=False)
        log.info(
            "workflow.run_sleeping fn=%s run=%s event=%s until=%s",
            run.function_id,
            run.id,
            run.event_id,
            run.next_run_at.isoformat(),
        )

    async def _cancel_runs(self, workflow: Workflow, rule: Cancel, event: Event, now: datetime) -> None:
        value = lookup(event.data, rule.match)
        if value is None:
            return  # nothing to match on: cancelling every run without the field would be wrong
        cancelled = await runs.cancel_matching(
            function_id=workflow.id,
            field=rule.match,
            value=value,
            reason=f"cancelled by {event.name} {event.id}",
            except_event_id=event.id,
            now=now,
        )
        for ref in cancelled:
            self._drop(ref.id)
            log.info(
                "workflow.run_cancelled fn=%s run=%s event=%s by=%s %s=%s",
                workflow.id,
                ref.id,
                ref.event_id,
                event.id,
                rule.match,
                value,
            )

    # --- scheduling -----------------------------------------------------------------------------------

    def _enqueue(self, run_id: PydanticObjectId, function_id: str) -> None:
        if run_id not in self._ready and function_id in self._workflows:
            self._ready[run_id] = function_id
        self._pump()

    def _wake_up(self, run_id: PydanticObjectId, function_id: str) -> None:
        """A retry or sleep of this runner fell due (possibly before its execution has quite ended)."""
        self._timers.pop(run_id, None)
        if run_id in self._active:
            self._again.add(run_id)
        else:
            self._enqueue(run_id, function_id)

    def _drop(self, run_id: PydanticObjectId) -> None:
        self._created.pop(run_id, None)
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer[0].cancel()
        self._ready.pop(run_id, None)

    def _later(self, run_id: PydanticObjectId, function_id: str, at: datetime, *, retry: bool) -> None:
        self._drop(run_id)
        delay = max(0.0, (at - utcnow()).total_seconds()) + TIMER_MARGIN
        handle = asyncio.get_running_loop().call_later(delay, self._wake_up, run_id, function_id)
        self._timers[run_id] = (handle, retry)

    def _pump(self) -> None:
        """Start ready runs while there is room, overall and per function."""
        if not self._running:
            return
        for run_id, function_id in list(self._ready.items()):
            if len(self._active) >= self._concurrency:
                return
            limit = self._workflows[function_id].concurrency
            if limit is not None and self._active_per_function[function_id] >= limit:
                continue
            del self._ready[run_id]
            self._active_per_function[function_id] += 1
            task = asyncio.create_task(self._execute(run_id), name=f"workflow-{function_id}-{run_id}")
            self._active[run_id] = task
            task.add_done_callback(functools.partial(self._done, run_id, function_id))

    def _done(self, run_id: PydanticObjectId, function_id: str, _task: asyncio.Task[None]) -> None:
        self._active.pop(run_id, None)
        self._active_per_function[function_id] -= 1
        if run_id in self._again:
            self._again.discard(run_id)
            self._enqueue(run_id, function_id)
        else:
            self._pump()

    async def _sweep(self) -> bool:
        """Queue the due runs in the store; False: the next look is at the sweep interval (or a wake-up)."""
        if len(self._ready) < SWEEP_LIMIT:
            for ref in await runs.due(now=utcnow(), function_ids=self._function_ids, limit=SWEEP_LIMIT):
                if ref.id not in self._active:  # else it was found before this runner claimed it
                    self._enqueue(ref.id, ref.function_id)
        return False

    def _sweep_failed(self, error: Exception, _failures: int) -> None:
        log.error("workflow.sweep_failed", exc_info=error)

    # --- execution ------------------------------------------------------------------------------------

    async def _claim(self, run_id: PydanticObjectId) -> WorkflowRun | None:
        """The run to execute under this runner's claim: one it created claimed is used as it is while its
        lease has two thirds left (the heartbeat renews it within a third), else claimed again."""
        now = utcnow()
        created = self._created.pop(run_id, None)
        if created is None:
            return await runs.claim(run_id, now=now, lease=self._lease, function_ids=self._function_ids)
        assert created.lease_until is not None
        if created.lease_until - now >= self._lease * 2 / 3:
            return created
        return await runs.reclaim(created, now=now, lease=self._lease)

    async def _execute(self, run_id: PydanticObjectId) -> None:
        try:
            run = await self._claim(run_id)
            if run is None:
                return  # another runner has it, or it is no longer due
            log.info(
                "workflow.run_started fn=%s run=%s event=%s attempt=%d",
                run.function_id,
                run.id,
                run.event_id,
                run.attempt,
            )
            step = LocalStep(run)
            heartbeat = asyncio.create_task(self._heartbeat(run, step))
            try:
                with log_context.scope(ticket=ticket_of(run.event_data)):
                    await self._run(self._workflows[run.function_id], run, step)
            finally:
                heartbeat.cancel()
        except Exception:
            # The store failed during bookkeeping: the run stays claimed and is resumed when its lease lapses.
            log.exception("workflow.runner_error run=%s", run_id)

    async def _heartbeat(self, run: WorkflowRun, step: LocalStep) -> None:
        """Renews the run's lease every third of it. A renewal not confirmed for two thirds of the lease
        (the store unreachable or too slow) counts as lost: another runner may take the run once the lease
        lapses, so this one stops at its next step rather than risk running a step alongside it."""
        clock = self._clock
        lease = self._lease.total_seconds()
        assert run.lease_until is not None
        age = self._lease - (run.lease_until - utcnow())  # since the claim was confirmed (its lease began)
        confirmed = clock.monotonic() - max(age.total_seconds(), 0.0)
        while True:
            await clock.sleep(lease / 3)
            asked = clock.monotonic()
            patience = max(confirmed + lease * 2 / 3 - asked, 0.001)  # a slow answer is fine until then
            try:
                renewed = await asyncio.wait_for(runs.renew(run, now=utcnow(), lease=self._lease), patience)
            except Exception as error:
                log.warning("workflow.renew_failed run=%s error=%s", run.id, f"{type(error).__name__}: {error}")
                if clock.monotonic() - confirmed >= lease * 2 / 3 and not step.returned:
                    step.lost = True
                    log.warning(
                        "workflow.claim_unconfirmed fn=%s run=%s event=%s reason=no renewal confirmed for %.1fs",
                        run.function_id,
                        run.id,
                        run.event_id,
                        clock.monotonic() - confirmed,
                    )
                    return
                continue
            confirmed = asked
            if not renewed and not step.returned:
                step.lost = True  # cancelled or taken over: stop at the next step
                log.warning("workflow.claim_lost fn=%s run=%s event=%s", run.function_id, run.id, run.event_id)
                return

    async def _run(self, workflow: Workflow, run: WorkflowRun, step: LocalStep) -> None:
        try:
            try:
                result = await workflow.handler(self._context(run), step)
            finally:
                step.returned = True
            output = to_json(result, "the function's result")
        except Suspend as suspend:
            if not await runs.suspend(
                run, key=suspend.key, record=suspend.record, wake_at=suspend.wake_at, now=utcnow(), steps=step.pending
            ):
                self._abandoned(run)
            else:
                assert run.id is not None
                self._later(run.id, workflow.id, suspend.wake_at, retry=False)
                log.info(
                    "workflow.run_sleeping fn=%s run=%s event=%s until=%s",
                    workflow.id,
                    run.id,
                    run.event_id,
                    suspend.wake_at.isoformat(),
                )
        except ClaimLost:
            if step.pending:  # finished steps: kept if the claim still holds (the write checks it), else repeated
                with contextlib.suppress(Exception):
                    await runs.record_steps(run, steps=step.pending, now=utcnow())
            self._abandoned(run)
        except Exception as error:
            await self._failed(workflow, run, error, steps=step.pending)
        else:
            if await runs.complete(run, output=output, now=utcnow(), steps=step.pending):
                log.info("workflow.run_completed fn=%s run=%s event=%s", workflow.id, run.id, run.event_id)
            else:
                self._abandoned(run)

    def _abandoned(self, run: WorkflowRun) -> None:
        log.warning(
            "workflow.run_abandoned fn=%s run=%s event=%s reason=claim lost (cancelled or taken over)",
            run.function_id,
            run.id,
            run.event_id,
        )

    def _context(self, run: WorkflowRun) -> Context:
        event = Event(id=run.event_id, name=run.event_name, data=run.event_data)
        return Context(event=event, run_id=str(run.id), attempt=run.attempt)

    async def _failed(
        self, workflow: Workflow, run: WorkflowRun, error: Exception, *, steps: runs.Steps | None = None
    ) -> None:
        """Retry or fail the run, writing the records of the steps it finished (`steps`) with that outcome."""
        text = f"{type(error).__name__}: {error}"
        now = utcnow()
        if not isinstance(error, PermanentError) and run.attempt < workflow.retries:
            at = now + timedelta(seconds=self._retry.delay(run.attempt + 1))  # retry_base·2^attempt, ±25%, capped
            if not await runs.retry(run, error=text, at=at, now=now, steps=steps):
                self._abandoned(run)
            else:
                assert run.id is not None
                self._later(run.id, workflow.id, at, retry=True)
                log.warning(
                    "workflow.run_retry fn=%s run=%s event=%s attempt=%d at=%s error=%s",
                    workflow.id,
                    run.id,
                    run.event_id,
                    run.attempt + 1,
                    at.isoformat(),
                    text,
                )
            return
        if not await runs.fail(run, error=text, now=now, steps=steps):
            self._abandoned(run)
            return
        log.error(
            "workflow.run_failed fn=%s run=%s event=%s attempt=%d error=%s",
            workflow.id,
            run.id,
            run.event_id,
            run.attempt,
            text,
            exc_info=error,
        )
        if workflow.on_failure is not None:
            try:
                await workflow.on_failure(self._context(run), text)
            except Exception:
                log.exception("workflow.on_failure_failed fn=%s run=%s event=%s", workflow.id, run.id, run.event_id)
