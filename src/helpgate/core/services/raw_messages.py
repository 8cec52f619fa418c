"""Raw inbound mail: stored durably before acknowledgement, read back for processing and replay."""

from __future__ import annotations

import hashlib
import logging

from beanie import PydanticObjectId
from gridfs import AsyncGridFSBucket

from helpgate.core.models import RawMessage, RawStatus
from helpgate.core.models.clock import utcnow

log = logging.getLogger(__name__)

BUCKET = "raw_mail"


def _bucket() -> AsyncGridFSBucket:
    return AsyncGridFSBucket(RawMessage.get_pymongo_collection().database, bucket_name=BUCKET)


async def store(
    *,
    data: bytes,
    source: str,
    mailbox: str,
    envelope_from: str = "",
    envelope_to: list[str] | None = None,
    peer: str = "",
) -> RawMessage:
    """Write the bytes, then the record that points at them. On failure nothing half-written remains."""
    digest = hashlib.sha256(data).hexdigest()
    bucket = _bucket()
    gridfs_id = await bucket.upload_from_stream(f"{digest}.eml", data, metadata={"sha256": digest})
    raw = RawMessage(
        sha256=digest,
        size=len(data),
        gridfs_id=PydanticObjectId(gridfs_id),
        source=source,
        mailbox=mailbox,
        envelope_from=envelope_from,
        envelope_to=envelope_to or [],
        peer=peer,
    )
    try:
        await raw.insert()
    except BaseException:
        await bucket.delete(gridfs_id)
        raise
    log.info("raw.stored id=%s sha256=%s size=%d source=%s", raw.id, digest, len(data), source)
    return raw


async def read_bytes(raw: RawMessage) -> bytes:
    stream = await _bucket().open_download_stream(raw.gridfs_id)
    return await stream.read()


async def mark(raw: RawMessage, status: RawStatus, *, reason: str | None = None, ticket: int | None = None) -> None:
    raw.status = status
    raw.reason = reason
    raw.ticket_number = ticket
    raw.processed_at = utcnow()
    await raw.save()


async def unprocessed() -> list[RawMessage]:
    """Messages stored but never finished, oldest first (a crash or shutdown interrupted them)."""
    return await RawMessage.find({"status": RawStatus.RECEIVED}).sort("received_at").to_list()


async def get(raw_id: PydanticObjectId) -> RawMessage | None:
    return await RawMessage.get(raw_id)
