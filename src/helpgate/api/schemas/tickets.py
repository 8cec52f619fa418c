"""Tickets as the API shows them: messages, triage, deliveries, attachments, pages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from helpgate.api import examples
from helpgate.core import safe_html
from helpgate.models import (
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    OutboundMail,
    Participant,
    Priority,
    Ticket,
    TicketStatus,
)
from helpgate.tickets.ticket_list import Stats


class PersonOut(BaseModel):
    email: str
    name: str

    @classmethod
    def of(cls, person: Participant | None) -> PersonOut | None:
        return None if person is None else cls(email=person.email, name=person.name)


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [examples.REPLY_MESSAGE]})
    id: str
    direction: Direction
    kind: MessageKind
    from_: PersonOut = Field(serialization_alias="from")
    to: list[str]
    cc: list[str]
    subject: str
    text: str  # the reply itself: inbound mail without the history it quotes and the signature under it
    full_text: str  # the whole text body, signature and quoted history included (inbound mail; else `text`)
    html: str  # the HTML body, sanitised (no scripts, event handlers or javascript: links); "" when none
    remote_images: int  # images in `html` whose source was moved to `data-remote-src`, so nothing is fetched
    message_id: str | None
    attachments: list[AttachmentOut]
    delivery: DeliveryOut | None  # outbound mail, for agents and admins: queued, sent, failed (with reason)...
    # Agents and admins only (null for customers): the spf/dkim/dmarc verdicts the mail arrived with, what staff
    # should know of it (`reused_message_id`: another mail came with its Message-ID before), our addresses it reached.
    authentication: dict[str, str] | None = None
    flags: list[str] | None = None
    delivered_to: list[str] | None = None
    created_at: datetime

    @classmethod
    def of(
        cls, message: Message, delivery: OutboundMail | None = None, *, staff: bool = True, our_address: str = ""
    ) -> MessageOut:
        """As `staff` or the customer sees it: to a customer, mail an agent wrote is from `our_address` (as the
        mail they got was), under the agent's name; never from the agent's own address."""
        shown = safe_html.for_display(message.html)
        from_email = message.from_email
        if not staff and message.direction is not Direction.INBOUND:
            from_email = our_address
        return cls(
            id=str(message.id),
            direction=message.direction,
            kind=message.kind,
            from_=PersonOut(email=from_email, name=message.from_name),
            to=message.to,
            cc=message.cc,
            subject=message.subject,
            text=message.text,
            full_text=message.full_text or message.text,
            html=shown.html,
            remote_images=shown.remote_images,
            message_id=message.message_id,
            attachments=[
                AttachmentOut(
                    filename=ref.filename, content_type=ref.content_type, size=ref.size, purged_at=ref.purged_at
                )
                for ref in message.attachments
            ],
            delivery=DeliveryOut.of(delivery) if delivery is not None else None,
            authentication=message.authentication if staff else None,
            flags=message.flags if staff else None,
            delivered_to=message.delivered_to if staff else None,
            created_at=message.created_at,
        )


class TicketOut(BaseModel):
    """A ticket. Triage and assignment (`priority`, `category`, `skills`, `assignee`) are for agents and
    admins: customers get them null (`skills` empty), whatever the ticket holds."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET, examples.TICKET_AS_CUSTOMER]})
    number: int
    subject: str
    status: TicketStatus
    priority: Priority | None
    category: str | None
    skills: list[str]
    requester: PersonOut
    assignee: PersonOut | None
    message_count: int
    created_at: datetime
    updated_at: datetime
    merged_into: int | None = None  # merged into that ticket: closed, its messages are there now
    merged_from: list[int] = Field(default_factory=list)  # tickets merged into this one

    @classmethod
    def fields_of(cls, ticket: Ticket, *, staff: bool) -> dict[str, object]:
        requester = PersonOut.of(ticket.requester)
        assert requester is not None
        return {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority if staff else None,
            "category": ticket.category if staff else None,
            "skills": ticket.skills if staff else [],
            "requester": requester,
            "assignee": PersonOut.of(ticket.assignee) if staff else None,
            "message_count": ticket.message_count,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
            "merged_into": ticket.merged_into,
            "merged_from": ticket.merged_from,
        }

    @classmethod
    def of(cls, ticket: Ticket, *, staff: bool) -> TicketOut:
        return cls.model_validate(cls.fields_of(ticket, staff=staff))


class TriageOut(BaseModel):
    """What triage decided and how (staff only): `source` is gemini, openai (an OpenAI-compatible AI), learned (the
    classifier trained on the agents' reviews) or heuristic (the keyword tables)."""

    source: str
    model: str | None
    summary: str
    helpful_notes: str
    language: str
    sentiment: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: int
    fallback_reason: str | None
    at: datetime


class TicketDetailOut(TicketOut):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET_DETAIL]})
    messages: list[MessageOut]
    triage: TriageOut | None = None  # staff only
    response_due_at: datetime | None = None  # staff only: the first-response target
    first_response_at: datetime | None = None
    escalated_at: datetime | None = None
    # Staff only: the opening mail failed DMARC (possible spoofing); what else to know of it (`unverified_staff_sender`,
    # `mixed_script_sender`, `reused_message_id`, `attachments_omitted`); tickets it referred to but could not join.
    auth_failed: bool | None = None
    flags: list[str] | None = None
    linked_tickets: list[int] | None = None


class TicketPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET_PAGE]})
    items: list[TicketOut]
    total: int
    page: int
    page_size: int


class TicketStatsOut(BaseModel):
    """The agent's sidebar. `open` counts new, open and pending tickets; `open_by_priority` splits them
    (`none`: not triaged yet); `mine` are the open ones assigned to the caller."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.STATS]})

    by_status: dict[TicketStatus, int]
    open_by_priority: dict[Literal["high", "medium", "low", "none"], int]
    open: int
    mine: int

    @classmethod
    def of(cls, stats: Stats) -> TicketStatsOut:
        return cls.model_validate(
            {
                "by_status": stats.by_status,
                "open_by_priority": {str(key or "none"): value for key, value in stats.open_by_priority.items()},
                "open": stats.open,
                "mine": stats.mine,
            }
        )


class DeliveryOut(BaseModel):
    status: DeliveryStatus
    attempts: int
    reason: str | None  # why it is not sent (yet): the last error, the suppression, the uncertainty
    smtp_reply: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, mail: OutboundMail) -> DeliveryOut:
        return cls(
            status=mail.status,
            attempts=mail.attempts,
            reason=None if mail.status is DeliveryStatus.SENT else mail.last_error,
            smtp_reply=mail.smtp_reply,
            next_attempt_at=mail.next_attempt_at if mail.status is DeliveryStatus.QUEUED else None,
            sent_at=mail.sent_at,
        )


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int
    purged_at: datetime | None = None  # retention removed the bytes then; the record stays


class DraftOut(BaseModel):
    """A reply drafted by the AI, for the agent to edit; never sent by itself."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.DRAFT]})
    text: str
    model: str | None = Field(description="the AI model that wrote it")
