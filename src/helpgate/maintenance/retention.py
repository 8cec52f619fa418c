"""Retention: remove the bytes of old raw mail and old attachments, keep every record that they existed;
delete the workflow history (finished runs, delivered outbox events) once it is old.

Tickets and messages stay whole; a purged RawMessage or Attachment keeps its size, sha256 and dates and
gains `purged_at`, and so does each message's reference to a purged attachment, so readers answer
"purged on <date> by retention" (errors.ContentPurged, HTTP 410) instead of failing on missing bytes.

Never purged: raw mail not yet processed (`received`) or quarantined (it is waiting for a person and
for replay; once replayed it is processed, ignored or a duplicate and ages like the rest), attachment
bytes that a newer attachment shares (identical content is stored once), and attachments of a reply
still waiting to be sent.

Workflow history is bookkeeping, not the ticket's record: a finished run and a delivered event only stop the
same event from being delivered or run twice, which can only happen within minutes. Deleting them keeps the
collections the relay, the runner and the live feed read from growing forever. Runs still queued, running or
sleeping (an SLA wait) and events not yet delivered are never deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.collection import AsyncCollection

from helpgate.core.clock import utcnow
from helpgate.inbound import raw_messages
from helpgate.mail_out.models.outbound import FINAL_STATUSES
from helpgate.models import Attachment, Message, OutboundMail, OutboxEvent, RawMessage, RawStatus, WorkflowRun
from helpgate.outbox.models.event import EventStatus
from helpgate.outbox.models.workflow_run import OPEN_STATUSES
from helpgate.tickets import attachments

log = logging.getLogger(__name__)

#: What may lose its bytes: mail whose processing is over. RECEIVED and QUARANTINED are never purged.
PURGEABLE = (RawStatus.PROCESSED, RawStatus.DUPLICATE, RawStatus.IGNORED)
BATCH = 200
#: How often `helpgate serve` purges.
INTERVAL = timedelta(hours=1)

#: Called after each batch: (what, items so far).
Progress = Callable[[str, int], None]


def _quiet(what: str, count: int) -> None:
    """A Progress that reports nothing."""


@dataclass(frozen=True)
class Retention:
    """Days to keep bytes (and workflow history) for; 0 keeps them forever."""

    raw_mail_days: int = 0
    attachment_days: int = 0
    history_days: int = 0

    @property
    def enabled(self) -> bool:
        return self.raw_mail_days > 0 or self.attachment_days > 0 or self.history_days > 0


@dataclass
class PurgeReport:
    dry_run: bool
    raw_messages: int = 0
    raw_bytes: int = 0
    attachments: int = 0  # records whose bytes are gone
    attachment_files: int = 0  # distinct stored files removed (identical content is stored once)
    attachment_bytes: int = 0
    attachments_kept_shared: int = 0  # old records whose bytes newer mail (or a queued reply) still uses
    workflow_runs: int = 0  # finished runs deleted
    outbox_events: int = 0  # delivered events deleted

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        return (
            f"{verb} {self.raw_messages} raw message(s) ({self.raw_bytes} bytes) and "
            f"{self.attachments} attachment(s) in {self.attachment_files} file(s) ({self.attachment_bytes} bytes); "
            f"{self.attachments_kept_shared} old attachment(s) kept: newer mail shares their content; "
            f"workflow history: {self.workflow_runs} finished run(s), {self.outbox_events} delivered event(s)"
        )


async def purge(
    policy: Retention, *, now: datetime | None = None, dry_run: bool = False, progress: Progress = _quiet
) -> PurgeReport:
    now = now or utcnow()
    report = PurgeReport(dry_run=dry_run)
    if policy.raw_mail_days > 0:
        await _purge_raw(now - timedelta(days=policy.raw_mail_days), now, report, progress)
    if policy.attachment_days > 0:
        await _purge_attachments(now - timedelta(days=policy.attachment_days), now, report, progress)
    if policy.history_days > 0:
        await _purge_history(now - timedelta(days=policy.history_days), report, progress)
    log.info("retention.%s %s", "dry_run" if dry_run else "purged", report.summary())
    return report


async def _pages(
    collection: AsyncCollection[dict[str, Any]], query: dict[str, Any], fields: dict[str, int]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Matching documents in batches, by _id: the same walk whether or not the batches get changed."""
    last: ObjectId | None = None
    while True:
        page = {**query, "_id": {"$gt": last}} if last is not None else query
        batch = await collection.find(page, fields).sort("_id", 1).limit(BATCH).to_list()
        if not batch:
            return
        yield batch
        last = batch[-1]["_id"]


async def _purge_raw(cutoff: datetime, now: datetime, report: PurgeReport, progress: Progress) -> None:
    collection = RawMessage.get_pymongo_collection()
    bucket = AsyncGridFSBucket(collection.database, bucket_name=raw_messages.BUCKET)
    query = {"status": {"$in": [str(s) for s in PURGEABLE]}, "received_at": {"$lt": cutoff}, "purged_at": None}
    async for batch in _pages(collection, query, {"size": 1, "gridfs_id": 1}):
        if not report.dry_run:
            for document in batch:
                if document.get("gridfs_id") is not None:
                    await _delete(bucket, document["gridfs_id"])
            await collection.update_many(
                {"_id": {"$in": [d["_id"] for d in batch]}},
                {"$set": {"data": None, "gridfs_id": None, "purged_at": now}},
            )
        report.raw_messages += len(batch)
        report.raw_bytes += sum(int(d.get("size", 0)) for d in batch)
        progress("raw mail", report.raw_messages)


async def _delete(bucket: AsyncGridFSBucket, file_id: ObjectId) -> bool:
    """Delete a GridFS file and its chunks; False when it was gone already (an interrupted purge)."""
    try:
        await bucket.delete(file_id)
    except NoFile:
        return False
    return True


async def _purge_attachments(cutoff: datetime, now: datetime, report: PurgeReport, progress: Progress) -> None:
    collection = Attachment.get_pymongo_collection()
    bucket = AsyncGridFSBucket(collection.database, bucket_name=attachments.BUCKET)
    query = {"created_at": {"$lt": cutoff}, "purged_at": None}
    async for batch in _pages(collection, query, {"gridfs_id": 1, "sha256": 1, "size": 1, "message_key": 1}):
        needed = await _still_needed(batch, cutoff)
        going = [d for d in batch if d["gridfs_id"] not in needed]
        report.attachments_kept_shared += len(batch) - len(going)
        report.attachments += len(going)
        files = {d["gridfs_id"]: int(d.get("size", 0)) for d in going}
        if report.dry_run:
            report.attachment_files += len(files)
            report.attachment_bytes += sum(files.values())
        else:
            for file_id, size in files.items():
                if await _delete(bucket, file_id):
                    report.attachment_files += 1
                    report.attachment_bytes += size
            await collection.update_many({"_id": {"$in": [d["_id"] for d in going]}}, {"$set": {"purged_at": now}})
            await _mark_references(going, set(files), now)
        progress("attachments", report.attachments + report.attachments_kept_shared)


async def _still_needed(batch: list[dict[str, Any]], cutoff: datetime) -> set[ObjectId]:
    """The batch's stored files that newer attachments share, or that a reply waiting to be sent carries."""
    shas = list({d["sha256"] for d in batch})
    newer = Attachment.get_pymongo_collection().find(
        {"sha256": {"$in": shas}, "created_at": {"$gte": cutoff}}, {"gridfs_id": 1}
    )
    needed = {d["gridfs_id"] async for d in newer}
    files = list({d["gridfs_id"] for d in batch})
    waiting = OutboundMail.get_pymongo_collection().find(
        {"status": {"$nin": [str(s) for s in FINAL_STATUSES]}, "attachments.gridfs_id": {"$in": files}},
        {"attachments.gridfs_id": 1},
    )
    async for mail in waiting:
        needed.update(ref["gridfs_id"] for ref in mail.get("attachments", []))
    return needed


async def _mark_references(going: list[dict[str, Any]], files: set[ObjectId], now: datetime) -> None:
    """Each message that lists a purged attachment says so too (the ticket view reads messages only)."""
    messages = Message.get_pymongo_collection()
    for key in {d["message_key"] for d in going}:
        message = await messages.find_one({"dedupe_key": key}, {"attachments": 1})
        if message is None:
            continue
        refs = message.get("attachments", [])
        for ref in refs:
            if ref.get("gridfs_id") in files and ref.get("purged_at") is None:
                ref["purged_at"] = now
        await messages.update_one({"_id": message["_id"]}, {"$set": {"attachments": refs}})


async def _purge_history(cutoff: datetime, report: PurgeReport, progress: Progress) -> None:
    runs = {"status": {"$nin": [str(s) for s in OPEN_STATUSES]}, "finished_at": {"$lt": cutoff}}
    events = {"status": str(EventStatus.SENT), "sent_at": {"$lt": cutoff}}
    for model, query, field in ((WorkflowRun, runs, "workflow_runs"), (OutboxEvent, events, "outbox_events")):
        collection = model.get_pymongo_collection()
        if report.dry_run:
            count = await collection.count_documents(query)
        else:
            count = (await collection.delete_many(query)).deleted_count
        setattr(report, field, count)
        progress(field.replace("_", " "), count)


async def keep_purging(policy: Retention, *, interval: timedelta = INTERVAL) -> None:
    """Purge now and then every `interval`, until cancelled (run inside `helpgate serve`)."""
    while True:
        try:
            await purge(policy)
        except Exception:  # an edge: one failed run must not stop the next
            log.exception("retention.failed")
        await asyncio.sleep(interval.total_seconds())
