"""A file that came with a message (or an inline image of its HTML); the bytes live in GridFS."""

from datetime import datetime

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow
from helpgate.tickets.models.message import AttachmentRef


class Attachment(Document):
    # "<message dedupe key>#<part index>": re-processing the same raw message finds the same attachment.
    key: str
    message_key: str  # the dedupe_key of the Message it came with
    part_index: int
    ticket_number: int | None = None
    filename: str  # sanitised: no path parts, no control characters, length-capped
    content_type: str  # as declared by the sender
    sniffed_type: str | None = None  # from the bytes themselves
    size: int
    sha256: str
    gridfs_id: PydanticObjectId
    content_id: str | None = None  # without angle brackets; the HTML refers to it as cid:<content_id>
    inline: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    purged_at: datetime | None = None  # retention removed the bytes; gridfs_id points at nothing since

    class Settings:
        name = "attachments"
        indexes = [
            IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
            IndexModel([("message_key", ASCENDING)], name="message_key"),
            IndexModel([("ticket_number", ASCENDING)], name="ticket_number"),
            IndexModel([("sha256", ASCENDING)], name="sha256"),
        ]

    def ref(self) -> AttachmentRef:
        """How the message it came with lists it."""
        return AttachmentRef(
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
            sha256=self.sha256,
            gridfs_id=self.gridfs_id,
            purged_at=self.purged_at,
        )
