"""One message of a ticket: an inbound or outbound email, or an internal note."""

from datetime import datetime
from enum import StrEnum

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.models.clock import utcnow


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageKind(StrEnum):
    EMAIL = "email"
    NOTE = "note"


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
    message_id: str | None = None  # the RFC 5322 Message-ID, without angle brackets
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    raw_message_id: PydanticObjectId | None = None
    # Unique per message: "<mailbox> <Message-ID>" for inbound mail, so a second delivery cannot add a copy.
    dedupe_key: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "messages"
        indexes = [
            IndexModel([("dedupe_key", ASCENDING)], unique=True, name="dedupe_unique"),
            IndexModel([("message_id", ASCENDING)], name="message_id"),
            IndexModel([("ticket_number", ASCENDING), ("created_at", ASCENDING)], name="ticket_created"),
        ]
