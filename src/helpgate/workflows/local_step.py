"""The Step protocol on a claimed WorkflowRun: step results memoised in the run before they are returned.

A handler unwinds to the runner with an `Interrupt` (a sleep that is not over, a claim that was lost);
these are BaseExceptions, as in Inngest's SDK, so a handler's `except Exception` cannot swallow them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import bson
from bson.errors import InvalidDocument

from helpgate.core.clock import stored, utcnow
from helpgate.models import WorkflowRun
from helpgate.outbox import events, runs
from helpgate.workflows.step import Json, PermanentError


def step_key(step_id: str) -> str:
    """The sha1 hex of a step id, as Inngest hashes it: a Mongo-safe key (no dots)."""
    return hashlib.sha1(step_id.encode(), usedforsecurity=False).hexdigest()


def sleep_record(step_id: str, wake_at: datetime) -> tuple[str, dict[str, Any]]:
    """The key and memoised record of a sleep step until `wake_at`. Mongo keeps milliseconds: the time is rounded,
    so the memoised time is the one a replay compares."""
    return step_key(step_id), {"id": step_id, "wake_at": stored(wake_at)}


def to_json(value: Any, what: str) -> Json:
    """`value` as a replay will see it (a JSON round trip that the store can hold); PermanentError if not JSON.

    Retrying would not help: the handler returns the same kind of value again, and repeats its side effect."""
    try:
        result = json.loads(json.dumps(value, allow_nan=False))
        bson.encode({"value": result})
    except (TypeError, ValueError, OverflowError, InvalidDocument) as error:
        raise PermanentError(f"{what} is not JSON: {error}") from error
    return result


def lookup(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path in event data, or None."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class Interrupt(BaseException):
    """Unwinds a handler to the runner. A BaseException, as in Inngest's SDK, so a handler's
    `except Exception` around a step cannot swallow it."""


class Suspend(Interrupt):
    def __init__(self, key: str, record: dict[str, Any] | None, wake_at: datetime) -> None:
        super().__init__(f"sleeping until {wake_at.isoformat()}")
        self.key = key
        self.record = record  # the sleep step to memoise, when it is new
        self.wake_at = wake_at


class ClaimLost(Interrupt):
    """The run is not ours any more (cancelled, or our lease lapsed and another runner took it)."""


class LocalStep:
    """The Step protocol on a claimed run: each result memoised in its document before the next step runs.

    A step's record is written with the next write the run makes anyway: before the next step starts, or with the
    run's outcome (completed, sleeping, retried, failed); the record of a step that only reads (`reads_only`) is
    not written before the next step, only with a later write. Between a step's end and that write only the handler's
    own code runs, so a crash repeats at most that one step, as it would were the record written at once; and a
    run of one step costs one write (its outcome) instead of two. Steps are idempotent (mail queued with a key,
    events stored once per key), so a repeat is harmless.
    """

    def __init__(self, run: WorkflowRun) -> None:
        self._run = run
        self._seen: Counter[str] = Counter()
        self.pending: dict[str, dict[str, Any]] = {}  # records not written yet: the runner writes them with the outcome
        self._reads_only: set[str] = set()  # keys of pending records of steps that change nothing
        self.lost = False  # the claim is gone: no further step may run
        self.returned = False  # the handler has returned or raised: the runner records the outcome

    def _key(self, step_id: str) -> tuple[str, str]:
        """(key, id) of this call; a repeated id gets a ':n' suffix, as Inngest does for steps in loops."""
        if self.lost:
            raise ClaimLost(self._run.id)
        self._seen[step_id] += 1
        if self._seen[step_id] > 1:
            step_id = f"{step_id}:{self._seen[step_id] - 1}"
        return step_key(step_id), step_id

    def _record(self, key: str, record: dict[str, Any]) -> None:
        self.pending[key] = record
        self._run.steps[key] = record  # a step repeated in this execution reads it back

    async def _flush(self) -> None:
        """Write the records of finished steps before another step starts (its side effects come after). Records
        of steps that only read wait for the run's next write: repeating such a step after a crash costs a read."""
        if not self.pending or self._reads_only.issuperset(self.pending):
            return
        written, self.pending = self.pending, {}
        self._reads_only.clear()
        if not await runs.record_steps(self._run, steps=written, now=utcnow()):
            self.lost = True
            raise ClaimLost(self._run.id)

    async def run(self, step_id: str, handler: Callable[[], Awaitable[Json]], *, reads_only: bool = False) -> Json:
        key, step_id = self._key(step_id)
        memo = self._run.steps.get(key)
        if memo is not None and "data" in memo:
            return memo["data"]
        await self._flush()
        data = to_json(await handler(), f"the result of step {step_id!r}")
        self._record(key, {"id": step_id, "data": data})
        if reads_only:
            self._reads_only.add(key)
        return data

    async def sleep(self, step_id: str, duration: timedelta) -> None:
        key, step_id = self._key(step_id)
        memo = self._run.steps.get(key)
        if memo is not None and "wake_at" in memo:
            wake_at: datetime = memo["wake_at"]
            if wake_at <= utcnow():
                return
            raise Suspend(key, None, wake_at)
        key, record = sleep_record(step_id, utcnow() + duration)
        raise Suspend(key, record, record["wake_at"])

    async def send_event(self, step_id: str, name: str, data: dict[str, Any]) -> None:
        key, step_id = self._key(step_id)
        if key in self._run.steps:
            return
        await self._flush()
        event = await events.emit(name, key=f"{self._run.id}:{step_id}", data=data)
        self._record(key, {"id": step_id, "data": str(event.id)})
