"""Raw inbound mail as it arrived, stored before it is acknowledged; bytes in GridFS."""

from datetime import datetime
from enum import StrEnum

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class RawStatus(StrEnum):
    RECEIVED = "received"  # stored, not processed yet (also: processing was interrupted)
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # a copy of a mail stored before (the same Message-ID and content; inbound/copies.py)
    IGNORED = "ignored"
    QUARANTINED = "quarantined"  # could not be processed; kept for a person and for replay


class RawMessage(Document):
    sha256: str
    size: int
    data: bytes | None = None  # the message itself, when small enough to keep inline
    gridfs_id: PydanticObjectId | None = None  # else where GridFS keeps it
    source: str  # "smtp" or "imap:<mailbox>"
    mailbox: str  # the support address it was delivered to
    envelope_from: str = ""
    envelope_to: list[str] = Field(default_factory=list)
    peer: str = ""
    normalised: bool = False  # arrived with bare-LF line endings, stored with CRLF (sha256 is of what is stored)
    status: RawStatus = RawStatus.RECEIVED
    reason: str | None = None
    ticket_number: int | None = None
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    purged_at: datetime | None = None  # retention removed the bytes (data and gridfs_id are None since)
    # Processing claims the message (inbound/raw_messages.claim): which instance, until when. Cleared with
    # its outcome; a claim left by an instance that died lapses by itself.
    claimed_by: str | None = None
    claim_until: datetime | None = None

    class Settings:
        name = "raw_messages"
        indexes = [
            IndexModel([("status", ASCENDING), ("received_at", ASCENDING)], name="status_received"),
            IndexModel([("sha256", ASCENDING)], name="sha256"),
        ]
