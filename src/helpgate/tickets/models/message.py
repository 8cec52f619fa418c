"""One message of a ticket: an inbound or outbound email, or an internal note."""

from datetime import datetime
from enum import StrEnum

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"  # a note: never mailed, never shown to the customer


class MessageFlag(StrEnum):
    """Facts about an inbound message that staff should see."""

    REUSED_MESSAGE_ID = "reused_message_id"  # another, different mail came with the same Message-ID before
    UNVERIFIED_STAFF_SENDER = "unverified_staff_sender"  # From names staff, but the mail is not authenticated
    MIXED_SCRIPT_SENDER = "mixed_script_sender"  # the sender's domain mixes scripts (a look-alike address)
    ATTACHMENTS_OMITTED = "attachments_omitted"  # more parts than HELPGATE_MAX_ATTACHMENTS: the rest is in the raw mail


class MessageKind(StrEnum):
    EMAIL = "email"
    NOTE = "note"


class AttachmentRef(BaseModel):
    """A file kept in GridFS (bucket ``attachments``), as a message refers to it."""

    filename: str
    content_type: str
    size: int
    sha256: str
    gridfs_id: PydanticObjectId
    purged_at: datetime | None = None  # retention removed the bytes


class Message(Document):
    ticket_id: PydanticObjectId
    ticket_number: int
    direction: Direction
    kind: MessageKind = MessageKind.EMAIL
    from_email: str
    from_name: str = ""
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    subject: str = ""
    text: str = ""
    full_text: str = ""  # inbound mail: the whole text body; `text` is the reply without quoted history and signature
    html: str = ""  # inbound: the HTML body; outbound: as written by an agent. Sanitised again wherever it is shown
    attachments: list[AttachmentRef] = Field(default_factory=list)
    author_id: PydanticObjectId | None = None  # the agent who wrote a reply or note
    message_id: str | None = None  # the RFC 5322 Message-ID, without angle brackets
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    raw_message_id: PydanticObjectId | None = None
    auto_reply_block: str | None = None  # inbound: why helpgate must not answer it automatically (loop guards)
    authentication: dict[str, str] = Field(default_factory=dict)  # inbound: spf/dkim/dmarc verdicts received
    # Unique per message, so a second delivery cannot add a copy. Inbound mail: "<Message-ID> <fingerprint>"
    # (stored before 2026-12: "<mailbox> <Message-ID>").
    dedupe_key: str
    fingerprint: str | None = None  # inbound: inbound/fingerprint.py of the raw bytes; None on mail stored before
    delivered_to: list[str] = Field(default_factory=list)  # inbound: the support addresses copies of it reached
    flags: list[str] = Field(default_factory=list)  # inbound: what staff should know (MessageFlag values)
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "messages"
        indexes = [
            IndexModel([("dedupe_key", ASCENDING)], unique=True, name="dedupe_unique"),
            IndexModel([("message_id", ASCENDING)], name="message_id"),
            IndexModel([("ticket_number", ASCENDING), ("created_at", ASCENDING)], name="ticket_created"),
            # Reading a ticket goes by ticket_id: the embedded store matches ObjectIds through an index, not numbers.
            IndexModel([("ticket_id", ASCENDING), ("created_at", ASCENDING)], name="ticket_id_created"),
        ]
