"""The outbound queue: one OutboundMail per email helpgate sends, with its delivery state and history.

Status transitions (each one appended to ``history``):

    queued ──claim──▶ sending ──250──▶ sent
      ▲                 │ ├──4xx / connection error──▶ queued (later, with backoff) … failed (attempts spent)
      │                 │ ├──5xx──▶ failed (the server's answer kept)
      └─its sender      │ ├──a recipient is suppressed──▶ suppressed
        stopped, not ───┘ └──its sender stopped with the mail in its journal──▶ uncertain (never resent automatically)
        in its journal

A worker claims mail in batches and lists each mail in its sender journal before DATA
(mail_out/senders.py); recovery reads that journal to tell the two endings apart.
``key`` (the Message-ID) is the idempotency key: one document per mail, whatever retries or restarts do.
"""

from datetime import datetime
from enum import StrEnum

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow
from helpgate.tickets.models.message import AttachmentRef


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # waiting for its turn (or for its next attempt)
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"  # the server answered 250 to DATA
    FAILED = "failed"  # a permanent refusal (5xx), or every attempt spent
    SUPPRESSED = "suppressed"  # a recipient's address is suppressed (it bounced): not sent
    UNCERTAIN = "uncertain"  # the worker stopped during DATA: maybe delivered, so never resent automatically
    CANCELLED = "cancelled"  # the reply it belonged to was never stored (a crash between the two writes)


FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.UNCERTAIN,
        DeliveryStatus.CANCELLED,
    }
)


class Transition(BaseModel):
    status: DeliveryStatus
    at: datetime
    detail: str = ""


class OutboundMail(Document):
    key: str  # the Message-ID without angle brackets; unique
    template: str  # the template kind it was rendered from
    automatic: bool  # automatic mail carries Auto-Submitted and is rate-limited per recipient
    ticket_id: PydanticObjectId | None = None
    ticket_number: int | None = None
    message_ref: PydanticObjectId | None = None  # the ticket Message it delivers, when there is one
    mail_from: str  # envelope sender and From address
    via_mailbox: PydanticObjectId | None = None  # sent through this mailbox's own SMTP; None: the global relay
    from_name: str = ""
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: str
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str
    html: str
    attachments: list[AttachmentRef] = Field(default_factory=list)
    # The composed message (mail_out/compose.py), built when queued unless it has attachments (their bytes
    # stay in GridFS; such mail is composed when sent). Every attempt sends these bytes; dropped once the mail
    # is sent, failed, uncertain, suppressed or cancelled.
    data: bytes | None = None
    date: datetime = Field(default_factory=utcnow)  # the Date header: fixed, so every attempt sends the same mail
    status: DeliveryStatus = DeliveryStatus.QUEUED
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claim: str | None = None  # the token of the worker holding it while `sending`
    lease_until: datetime | None = None
    # Set just before DATA by workers older than the sender journal; still read when recovering their mail.
    data_started_at: datetime | None = None
    last_error: str | None = None
    smtp_reply: str | None = None  # the server's final answer (or the file the file transport wrote)
    history: list[Transition] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None

    class Settings:
        name = "outbound_mail"
        indexes = [
            IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="status_due"),
            IndexModel([("ticket_number", ASCENDING)], name="ticket_number"),
        ]

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *(address for address in self.cc if address not in self.to)]
