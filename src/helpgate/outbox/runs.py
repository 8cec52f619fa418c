"""Workflow runs of the local runner: create once per event, claim with a lease, and move through their states.

A runner claims a due run atomically (a fresh claim token, `running`, a lease); every later write is
conditional on that token and on `running`, so a runner that lost its claim (lease lapsed, run cancelled)
changes nothing. Runs are addressed by `_id` wherever possible: on the embedded store a filter on any other
field scans the collection (see docs/architecture.md), so only `due` and `cancel_matching` query by fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from helpgate.models import RunStatus, WorkflowRun
from helpgate.outbox.models.workflow_run import run_key

ERROR_LIMIT = 4000  # characters of an error text kept on the run

type Steps = dict[str, dict[str, Any]]  # step key (the sha1 hex of its id) -> its memoised record

_OPEN = [str(status) for status in (RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.RUNNING)]


@dataclass(frozen=True)
class RunRef:
    """A run as the runner plans work: enough to schedule it, nothing loaded."""

    id: PydanticObjectId
    function_id: str
    event_id: str


def _collection() -> AsyncCollection[dict[str, Any]]:
    collection: AsyncCollection[dict[str, Any]] = WorkflowRun.get_pymongo_collection()
    return collection


@dataclass(frozen=True)
class NewRun:
    function_id: str
    event_id: str
    event_name: str
    event_data: dict[str, Any]
    wake_at: datetime | None = None  # stored sleeping until then, never claimed by its creator
    steps: Steps = field(default_factory=dict)  # memoised at once (with `wake_at`: the sleep it begins with)


async def create_many(new: list[NewRun], *, now: datetime, lease: timedelta | None = None) -> list[WorkflowRun]:
    """The runs of one event, in one write; those that existed already (the same event again) left out.

    With a `lease`, the runs are stored already claimed by the caller (running, each under its own claim token,
    as `claim` leaves a run): the runner that creates a run executes it without claiming it again. Otherwise
    they are queued and due now. A run with a `wake_at` is stored sleeping until then, as `suspend` leaves a run,
    whatever the lease."""
    if not new:
        return []
    created = [_new(item, now=now, lease=lease) for item in new]
    try:
        await WorkflowRun.insert_many(created, ordered=False)
    except BulkWriteError as error:
        existing = {
            int(failure["index"]) for failure in error.details.get("writeErrors", []) if failure.get("code") == 11000
        }
        if len(existing) != len(error.details.get("writeErrors", [])):
            raise
        created = [run for index, run in enumerate(created) if index not in existing]
    return created


def _new(item: NewRun, *, now: datetime, lease: timedelta | None) -> WorkflowRun:
    until = None if lease is None or item.wake_at is not None else now + lease
    if item.wake_at is not None:
        status, next_run_at = RunStatus.SLEEPING, item.wake_at
    elif until is not None:
        status, next_run_at = RunStatus.RUNNING, until
    else:
        status, next_run_at = RunStatus.QUEUED, now
    return WorkflowRun(
        id=PydanticObjectId(),  # known before the insert, which does not set it on the documents
        key=run_key(item.function_id, item.event_id),
        function_id=item.function_id,
        event_id=item.event_id,
        event_name=item.event_name,
        event_data=item.event_data,
        steps=dict(item.steps),
        status=status,
        claim=None if until is None else uuid.uuid4().hex,
        lease_until=until,
        next_run_at=next_run_at,
        created_at=now,
        updated_at=now,
    )


async def get(run_id: PydanticObjectId) -> WorkflowRun | None:
    return await WorkflowRun.get(run_id)


def _due(now: datetime, function_ids: list[str]) -> dict[str, Any]:
    """Queued or sleeping runs whose time came, and running ones whose runner's lease lapsed."""
    return {"status": {"$in": _OPEN}, "next_run_at": {"$lte": now}, "function_id": {"$in": function_ids}}


def _ref(document: dict[str, Any]) -> RunRef:
    return RunRef(
        id=PydanticObjectId(document["_id"]),
        function_id=str(document["function_id"]),
        event_id=str(document["event_id"]),
    )


async def due(*, now: datetime, function_ids: list[str], limit: int) -> list[RunRef]:
    """Due runs of these functions, the longest due first."""
    projection = {"function_id": 1, "event_id": 1}
    cursor = _collection().find(_due(now, function_ids), projection).sort("next_run_at", 1).limit(limit)
    return [_ref(document) async for document in cursor]


async def claim(
    run_id: PydanticObjectId, *, now: datetime, lease: timedelta, function_ids: list[str]
) -> WorkflowRun | None:
    """Take this run (queued/sleeping and due, or running with a lapsed lease) under a new claim token."""
    token = uuid.uuid4().hex
    until = now + lease
    # One write that also reads the run (the embedded store reads a conditional write's document by _id).
    document = await _collection().find_one_and_update(
        {"_id": run_id, **_due(now, function_ids)},
        {
            "$set": {
                "status": str(RunStatus.RUNNING),
                "claim": token,
                "lease_until": until,
                "next_run_at": until,
                "updated_at": now,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if document is None else WorkflowRun.model_validate(document)


async def reclaim(run: WorkflowRun, *, now: datetime, lease: timedelta) -> WorkflowRun | None:
    """Take a run this runner created claimed (`create_many` with a lease) under a new claim token and a fresh
    lease, when it waited too long to start on the one it was created with; None when it is no longer ours."""
    token = uuid.uuid4().hex
    until = now + lease
    document = await _collection().find_one_and_update(
        {"_id": run.id, "claim": run.claim, "status": str(RunStatus.RUNNING)},
        {"$set": {"claim": token, "lease_until": until, "next_run_at": until, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    return None if document is None else WorkflowRun.model_validate(document)


async def release(claimed: list[WorkflowRun], *, now: datetime) -> None:
    """Hand back runs created claimed that this runner will not start (it stops): queued and due at once."""
    if not claimed:
        return
    await _collection().update_many(
        {
            "_id": {"$in": [run.id for run in claimed]},
            "claim": {"$in": [run.claim for run in claimed]},
            "status": str(RunStatus.RUNNING),
        },
        {"$set": {"status": str(RunStatus.QUEUED), "claim": None, "lease_until": None, "next_run_at": now}},
    )


async def _move(
    run: WorkflowRun,
    values: dict[str, Any],
    *,
    now: datetime,
    inc: dict[str, int] | None = None,
    steps: Steps | None = None,
) -> bool:
    """One write to a claimed run (with step records not written yet, when given); False (nothing changed) when
    the claim is no longer ours."""
    values = {**values, **{f"steps.{key}": record for key, record in (steps or {}).items()}}
    update: dict[str, Any] = {"$set": {**values, "updated_at": now}}
    if inc:
        update["$inc"] = inc
    result = await _collection().update_one(
        {"_id": run.id, "claim": run.claim, "status": str(RunStatus.RUNNING)}, update
    )
    if result.modified_count and steps:
        run.steps.update(steps)
    return bool(result.modified_count)


async def renew(run: WorkflowRun, *, now: datetime, lease: timedelta) -> bool:
    """Extend the lease of a run still being executed."""
    until = now + lease
    if not await _move(run, {"lease_until": until, "next_run_at": until}, now=now):
        return False
    run.lease_until = run.next_run_at = until
    return True


async def record_steps(run: WorkflowRun, *, steps: Steps, now: datetime) -> bool:
    """Memoise steps' results in one write."""
    return await _move(run, {}, now=now, steps=steps)


async def suspend(
    run: WorkflowRun,
    *,
    key: str,
    record: dict[str, Any] | None,
    wake_at: datetime,
    now: datetime,
    steps: Steps | None = None,
) -> bool:
    """The run sleeps until `wake_at` (and records the sleep step when it is new); the claim is given up."""
    values: dict[str, Any] = {
        "status": str(RunStatus.SLEEPING),
        "next_run_at": wake_at,
        "claim": None,
        "lease_until": None,
    }
    if record is not None:
        values[f"steps.{key}"] = record
    return await _move(run, values, now=now, steps=steps)


async def complete(run: WorkflowRun, *, output: Any, now: datetime, steps: Steps | None = None) -> bool:
    return await _move(
        run,
        {
            "status": str(RunStatus.COMPLETED),
            "output": output,
            "claim": None,
            "lease_until": None,
            "finished_at": now,
        },
        now=now,
        steps=steps,
    )


async def retry(run: WorkflowRun, *, error: str, at: datetime, now: datetime, steps: Steps | None = None) -> bool:
    """Queue the run again for `at`, one attempt later, its memoised steps kept."""
    return await _move(
        run,
        {
            "status": str(RunStatus.QUEUED),
            "next_run_at": at,
            "last_error": error[-ERROR_LIMIT:],
            "claim": None,
            "lease_until": None,
        },
        now=now,
        inc={"attempt": 1},
        steps=steps,
    )


async def fail(run: WorkflowRun, *, error: str, now: datetime, steps: Steps | None = None) -> bool:
    return await _move(
        run,
        {
            "status": str(RunStatus.FAILED),
            "last_error": error[-ERROR_LIMIT:],
            "claim": None,
            "lease_until": None,
            "finished_at": now,
        },
        now=now,
        steps=steps,
    )


async def cancel_matching(
    *, function_id: str, field: str, value: Any, reason: str, except_event_id: str, now: datetime
) -> list[RunRef]:
    """Cancel this function's open runs whose trigger data has `value` at `field` (a dotted path).

    A waiting run is cancelled outright; a running one loses its claim, so its runner stops at the next
    step boundary (the step in flight finishes but is not recorded). Runs of `except_event_id` are spared,
    so an event that both starts and cancels a function does not cancel the run it has just started."""
    query = {
        "function_id": function_id,
        "status": {"$in": _OPEN},
        f"event_data.{field}": value,
        "event_id": {"$ne": except_event_id},
    }
    cursor = _collection().find(query, {"function_id": 1, "event_id": 1})
    candidates = [_ref(document) async for document in cursor]
    cancelled: list[RunRef] = []
    for candidate in candidates:
        result = await _collection().update_one(
            {"_id": candidate.id, "status": {"$in": _OPEN}},
            {
                "$set": {
                    "status": str(RunStatus.CANCELLED),
                    "last_error": reason,
                    "claim": None,
                    "lease_until": None,
                    "finished_at": now,
                    "updated_at": now,
                }
            },
        )
        if result.modified_count:
            cancelled.append(candidate)
    return cancelled
