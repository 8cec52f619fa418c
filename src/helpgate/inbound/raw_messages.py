"""Raw inbound mail: stored durably before acknowledgement, read back for processing and replay."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from beanie import PydanticObjectId
from gridfs import AsyncGridFSBucket
from pymongo import ReturnDocument

from helpgate.core import metrics
from helpgate.core.clock import utcnow
from helpgate.core.errors import ContentPurged
from helpgate.models import RawMessage, RawStatus

log = logging.getLogger(__name__)

BUCKET = "raw_mail"
#: Mail up to this size is kept inside its RawMessage (one write); larger mail goes to GridFS in chunks.
INLINE_MAX_BYTES = 512 * 1024
CHUNK_BYTES = 1024 * 1024


def _bucket() -> AsyncGridFSBucket:
    # 1 MiB chunks rather than GridFS's 255 KiB: on the embedded store each chunk insert costs a unique-index
    # check, so a 27 MiB message stores four times faster; on MongoDB it makes no difference that matters.
    return AsyncGridFSBucket(
        RawMessage.get_pymongo_collection().database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES
    )


async def store(
    *,
    data: bytes,
    source: str,
    mailbox: str,
    envelope_from: str = "",
    envelope_to: list[str] | None = None,
    peer: str = "",
    normalised: bool = False,
    claim: tuple[str, datetime] | None = None,
) -> RawMessage:
    """Write the bytes (and for large mail the record that points at them); nothing half-written remains.
    With `claim` (owner, until) it is stored claimed for processing, as `claim` leaves it.

    Small mail is one insert. Large mail is written to GridFS first and its record last, so a failure in
    between leaves no record pointing at missing bytes (and the orphaned chunks are deleted).
    """
    digest = hashlib.sha256(data).hexdigest()
    bucket = _bucket()
    gridfs_id = None
    if len(data) > INLINE_MAX_BYTES:
        gridfs_id = await bucket.upload_from_stream(f"{digest}.eml", data, metadata={"sha256": digest})
    raw = RawMessage(
        sha256=digest,
        size=len(data),
        data=None if gridfs_id else data,
        gridfs_id=PydanticObjectId(gridfs_id) if gridfs_id else None,
        source=source,
        mailbox=mailbox,
        envelope_from=envelope_from,
        envelope_to=envelope_to or [],
        peer=peer,
        normalised=normalised,
        claimed_by=None if claim is None else claim[0],
        claim_until=None if claim is None else claim[1],
    )
    try:
        await raw.insert()
    except BaseException:
        if gridfs_id is not None:
            await bucket.delete(gridfs_id)
        raise
    log.info(
        "raw.stored id=%s sha256=%s size=%d source=%s normalised=%s", raw.id, digest, len(data), source, normalised
    )
    metrics.INBOUND_RECEIVED.labels(source=metrics.source_kind(source)).inc()
    return raw


def purged_note(purged_at: datetime) -> str:
    return f"purged on {purged_at:%Y-%m-%d} by retention"


async def read_bytes(raw: RawMessage) -> bytes:
    if raw.purged_at is not None:
        raise ContentPurged(f"raw message {raw.id}: its bytes were {purged_note(raw.purged_at)}")
    if raw.data is not None:
        return raw.data
    assert raw.gridfs_id is not None
    stream = await _bucket().open_download_stream(raw.gridfs_id)
    return await stream.read()


async def mark(raw: RawMessage, status: RawStatus, *, reason: str | None = None, ticket: int | None = None) -> None:
    """Record the outcome and end the claim; a targeted update, so the stored bytes are not written again."""
    raw.status = status
    raw.reason = reason
    raw.ticket_number = ticket
    raw.processed_at = utcnow()
    raw.claimed_by = raw.claim_until = None
    fields = {
        "status": status,
        "reason": reason,
        "ticket_number": ticket,
        "processed_at": raw.processed_at,
        "claimed_by": None,
        "claim_until": None,
    }
    await RawMessage.get_pymongo_collection().update_one({"_id": raw.id}, {"$set": fields})


def _unclaimed(now: datetime, owner: str | None = None) -> dict[str, object]:
    """Not claimed, or claimed by `owner`, or the claim lapsed (its instance died)."""
    free: list[dict[str, object]] = [{"claim_until": None}, {"claim_until": {"$lte": now}}]
    if owner is not None:
        free.append({"claimed_by": owner})
    return {"$or": free}


async def claim(raw_id: PydanticObjectId, *, owner: str, ttl: timedelta, now: datetime) -> RawMessage | None:
    """The message, claimed for processing by `owner` until `now + ttl`, in one write; None when it is processed
    already or another instance holds it. Two instances never process one message at once (unless a claim
    lapses mid-processing, which only risks work done twice, which dedupe turns into one message)."""
    document = await RawMessage.get_pymongo_collection().find_one_and_update(
        {"_id": raw_id, "status": RawStatus.RECEIVED, **_unclaimed(now, owner)},
        {"$set": {"claimed_by": owner, "claim_until": now + ttl}},
        return_document=ReturnDocument.AFTER,
    )
    return None if document is None else RawMessage.model_validate(document)


async def unprocessed() -> list[RawMessage]:
    """Messages stored but never finished, oldest first (a crash or shutdown interrupted them)."""
    return await with_status(RawStatus.RECEIVED)


async def with_status(status: RawStatus, *, limit: int = 0) -> list[RawMessage]:
    return await RawMessage.find({"status": status}).sort("received_at").limit(limit).to_list()


async def received_unclaimed(cutoff: datetime, *, now: datetime, limit: int) -> list[PydanticObjectId]:
    """Ids of messages still `received` that arrived before `cutoff` and that no instance holds a claim on, oldest
    first (by the status index)."""
    cursor = RawMessage.get_pymongo_collection().find(
        {"status": RawStatus.RECEIVED, "received_at": {"$lt": cutoff}, **_unclaimed(now)}, {"_id": 1}
    )
    return [PydanticObjectId(document["_id"]) async for document in cursor.sort("received_at", 1).limit(limit)]


async def get(raw_id: PydanticObjectId) -> RawMessage | None:
    return await RawMessage.get(raw_id)
