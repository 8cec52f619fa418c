"""Attachments of inbound mail: the bytes in GridFS (once per distinct content), one record per message part.

Storing is idempotent: an attachment is keyed by its message's dedupe key and its part index, so processing the
same raw message again (a replay, a retry after a crash) finds the records it wrote before instead of adding
copies. Identical content (the logo in every signature) is uploaded once and shared by its sha256.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from beanie import PydanticObjectId
from bson import ObjectId
from gridfs import AsyncGridFSBucket
from pymongo.errors import DuplicateKeyError

from helpgate.core.errors import ContentPurged
from helpgate.models import Attachment, AttachmentRef

log = logging.getLogger(__name__)

BUCKET = "attachments"
#: 1 MiB chunks rather than GridFS's 255 KiB: a 20 MB file is 20 inserts instead of 80, which matters on the
#: embedded store, where each chunk insert checks the unique (files_id, n) index by scanning the collection.
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class NewAttachment:
    """One part of a message to keep as a file."""

    part_index: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    sniffed_type: str | None = None
    content_id: str | None = None
    inline: bool = False


def _bucket() -> AsyncGridFSBucket:
    database = Attachment.get_pymongo_collection().database
    return AsyncGridFSBucket(database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES)


async def store(*, message_key: str, ticket_number: int | None, files: Sequence[NewAttachment]) -> list[Attachment]:
    """Keep every file of one message; the ones kept before for the same message are returned as they are."""
    if not files:
        return []
    bucket = _bucket()
    existing = {a.key: a for a in await Attachment.find({"message_key": message_key}).to_list()}
    kept: list[Attachment] = []
    for file in files:
        key = f"{message_key}#{file.part_index}"
        if key in existing:
            kept.append(existing[key])
            continue
        kept.append(await _store_one(bucket, key=key, message_key=message_key, ticket_number=ticket_number, file=file))
    return kept


async def _store_one(
    bucket: AsyncGridFSBucket, *, key: str, message_key: str, ticket_number: int | None, file: NewAttachment
) -> Attachment:
    gridfs_id, uploaded = await _content(bucket, file)
    attachment = Attachment(
        key=key,
        message_key=message_key,
        part_index=file.part_index,
        ticket_number=ticket_number,
        filename=file.filename,
        content_type=file.content_type,
        sniffed_type=file.sniffed_type,
        size=len(file.data),
        sha256=file.sha256,
        gridfs_id=PydanticObjectId(gridfs_id),
        content_id=file.content_id,
        inline=file.inline,
    )
    try:
        await attachment.insert()
    except DuplicateKeyError:  # a concurrent run of the same message got there first
        if uploaded:
            await bucket.delete(gridfs_id)
        found = await Attachment.find_one({"key": key})
        assert found is not None
        return found
    log.info(
        "attachment.stored key=%s filename=%r declared=%s sniffed=%s size=%d reused=%s",
        key,
        file.filename,
        file.content_type,
        file.sniffed_type,
        len(file.data),
        not uploaded,
    )
    return attachment


async def _content(bucket: AsyncGridFSBucket, file: NewAttachment) -> tuple[ObjectId, bool]:
    """The GridFS file holding these bytes, uploaded now (True) or found from before (False)."""
    async for stored in bucket.find({"metadata.sha256": file.sha256}).limit(1):
        return ObjectId(stored._id), False
    metadata = {"sha256": file.sha256, "content_type": file.content_type}
    return await bucket.upload_from_stream(file.filename, file.data, metadata=metadata), True


async def read_bytes(attachment: Attachment | AttachmentRef) -> bytes:
    """The file's bytes (kept once per content); ContentPurged when retention removed them."""
    if attachment.purged_at is not None:
        raise ContentPurged(
            f"attachment {attachment.filename!r}: its bytes were purged on {attachment.purged_at:%Y-%m-%d} by retention"
        )
    stream = await _bucket().open_download_stream(attachment.gridfs_id)
    return await stream.read()


async def of_message(message_key: str) -> list[Attachment]:
    return await Attachment.find({"message_key": message_key}).sort("part_index").to_list()
