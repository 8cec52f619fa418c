"""The `Step` protocol: what a workflow function may do, so the same code runs under Inngest and locally.

A function is `async def handler(ctx: Context, step: Step) -> Any`. Side effects go inside `step.run`, whose
result is memoised (as JSON) and never recomputed once recorded; `step.sleep` waits durably. Under Inngest,
`ctx.step` of the SDK is adapted to this protocol (workflows/inngest_app.py); the local runner
(workflows/runner.py) implements it on Mongo.

Rules a handler keeps, so both back ends behave the same:
- code outside `step.run` is deterministic: it runs again on every call (Inngest re-enters the function once
  per step), so it reads nothing that can change and writes nothing;
- a step's result is JSON (dict, list, str, number, bool, None): on replay the memoised JSON comes back, not
  the object the handler returned;
- step ids are unique within a run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

type Json = Any  # what json.loads returns; step results must survive a JSON round trip


@dataclass(frozen=True)
class Event:
    """An event as functions see it. `id` is the outbox event's id: the idempotency key of every run it starts."""

    id: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


def ticket_of(data: dict[str, Any]) -> int | None:
    """The ticket number an event's data names (`ticket_number`, see tickets.ticket_ref), if any: for logs."""
    number = data.get("ticket_number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


@dataclass(frozen=True)
class Context:
    event: Event
    run_id: str
    attempt: int = 0  # 0 on the first try of the current step or run


class Step(Protocol):
    async def run(self, step_id: str, handler: Callable[[], Awaitable[Json]], *, reads_only: bool = False) -> Json:
        """Run `handler` once for this run and return its (memoised) JSON result. `reads_only`: the step changes
        nothing (it reads, or asks a model), so running it again after a crash is harmless; the local runner
        then need not write its record before the next step starts."""
        ...

    async def sleep(self, step_id: str, duration: timedelta) -> None:
        """Wait durably: the run resumes after `duration`, across restarts."""
        ...

    async def send_event(self, step_id: str, name: str, data: dict[str, Any]) -> None:
        """Emit an event once for this run."""
        ...


class PermanentError(Exception):
    """A failure that retrying cannot fix: the run fails at once (Inngest: NonRetriableError)."""


@dataclass(frozen=True)
class Cancel:
    """Cancel a waiting run when `event` arrives with the same `match` field in its data as the trigger's."""

    event: str
    match: str


type Handler = Callable[[Context, Step], Awaitable[Json]]
type FailureHandler = Callable[[Context, str], Awaitable[None]]
type FirstSleep = Callable[[dict[str, Any]], tuple[str, datetime] | None]


@dataclass(frozen=True)
class Workflow:
    """One function: its id (stable: runs and Inngest registrations are keyed by it), trigger and policies."""

    id: str
    trigger: str
    handler: Handler
    name: str = ""
    retries: int = 3  # attempts after the first
    cancel: tuple[Cancel, ...] = ()
    on_failure: FailureHandler | None = None  # called once when the run has failed for good
    concurrency: int | None = None  # at most this many runs of this function at once (per instance)
    # Given the trigger's data: (step id, wake time) of the `step.sleep` the handler begins with, or None when that
    # is not known from the data alone. The local runner then stores a new run already sleeping (see runner.py);
    # Inngest ignores it, and the handler's own sleep runs.
    sleeps_first: FirstSleep | None = None

    @property
    def title(self) -> str:
        return self.name or self.id
