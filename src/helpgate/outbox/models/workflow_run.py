"""One run of a workflow function under the local durable runner: its trigger, memoised steps and state.

Everything needed to resume a run lives here, so a restarted runner (or another instance) picks it up:

    queued ──claim (lease)──▶ running ──▶ completed
      ▲  ▲                     │ ├──step.sleep──▶ sleeping ──wake_at passed──▶ (claimed again)
      │  └── error: attempt+1, ┘ ├──PermanentError / retries spent──▶ failed (on_failure called)
      │      backoff           │ └──a matching cancel event──▶ cancelled (also from queued, sleeping)
      └── lease lapsed (the instance stopped or died) ──┘

A run whose function begins with a sleep its event settles (`Workflow.sleeps_first`) is created sleeping, with
that sleep step already recorded, as the first execution would have left it.

`next_run_at` is when the run next needs attention: when it falls due (queued), wakes (sleeping), or when
its lease lapses (running), so one index finds all due work. `steps` maps the sha1 hex of each step id (Mongo
keys may not contain dots) to `{"id": step_id, "data": <json>}`, or `{"id": step_id, "wake_at": <datetime>}`
for a sleep. `key` ("<function_id> <event_id>") is unique: an event starts at most one run of each function.
(One string key, not a compound unique index: on the embedded store a compound unique index makes every
write to the collection scan it.)
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class RunStatus(StrEnum):
    QUEUED = "queued"  # due at next_run_at (first try, or a retry)
    RUNNING = "running"  # claimed by a runner until lease_until
    SLEEPING = "sleeping"  # in step.sleep until next_run_at
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


WAITING_STATUSES = (RunStatus.QUEUED, RunStatus.SLEEPING)
OPEN_STATUSES = (RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.RUNNING)


def run_key(function_id: str, event_id: str) -> str:
    return f"{function_id} {event_id}"


class WorkflowRun(Document):
    key: str  # run_key(function_id, event_id): the idempotency key
    function_id: str
    event_id: str  # the outbox event's id: with function_id, the idempotency key
    event_name: str
    event_data: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = RunStatus.QUEUED
    steps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    attempt: int = 0  # 0 on the first try; +1 per retry
    next_run_at: datetime = Field(default_factory=utcnow)
    claim: str | None = None  # the token of the runner executing it while running
    lease_until: datetime | None = None
    last_error: str | None = None
    output: Any = None  # the handler's JSON result once completed
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    class Settings:
        name = "workflow_runs"
        indexes = [
            IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
            IndexModel([("status", ASCENDING), ("next_run_at", ASCENDING)], name="status_due"),
        ]
