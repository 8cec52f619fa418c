"""A ticket: one conversation with one requester. Kept small; message bodies live in `messages`."""

from datetime import datetime
from enum import StrEnum

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from helpgate.core.clock import utcnow

APPLIED_KEPT = 20  # message keys a ticket remembers as applied (Ticket.applied)


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: How the queue sorts by priority (high first); a ticket with no priority yet ranks lowest.
PRIORITY_RANK: dict[Priority | None, int] = {Priority.HIGH: 3, Priority.MEDIUM: 2, Priority.LOW: 1, None: 0}
SEARCH_TEXT_CHARS = 2000


class Participant(BaseModel):
    user_id: PydanticObjectId
    email: str
    name: str = ""


class TriageRecord(BaseModel):
    """What the triage decided and how: shown to agents beside the ticket."""

    source: str  # "gemini", "openai" (any OpenAI-compatible endpoint), "learned" or "heuristic"
    model: str | None = None
    summary: str = ""
    helpful_notes: str = ""
    language: str = "und"
    sentiment: str = "neutral"
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int = 0
    attempts: int = 0  # calls to the AI made
    fallback_reason: str | None = None  # why the heuristic ran
    at: datetime = Field(default_factory=utcnow)


class TriageReview(BaseModel):
    """What staff made of a ticket's triage: changed its category, priority or skills (`corrected`: what triage
    said is kept in `said_*`, what staff left in the others), or solved it as triaged (`confirmed`)."""

    outcome: str  # "corrected" or "confirmed"
    source: str  # the triage's source and model, as recorded then
    model: str | None = None
    said_category: str | None = None
    said_priority: str | None = None
    said_skills: list[str] = Field(default_factory=list)
    category: str | None = None
    priority: str | None = None
    skills: list[str] = Field(default_factory=list)
    by: PydanticObjectId | None = None
    by_email: str = ""
    at: datetime = Field(default_factory=utcnow)


class Rating(BaseModel):
    """The customer's rating of how their ticket was solved, from the links in the `ticket_solved` mail."""

    score: str  # "good" or "bad"
    comment: str = ""
    at: datetime = Field(default_factory=utcnow)
    agent_email: str | None = None  # the assignee when it was rated
    solved_at: datetime | None = None  # the solving it rates


class Ticket(Document):
    number: int
    subject: str
    status: TicketStatus = TicketStatus.NEW
    priority: Priority | None = None
    category: str | None = None
    skills: list[str] = Field(default_factory=list)
    requester: Participant
    assignee: Participant | None = None
    mailbox: str | None = None  # the support address the ticket was opened through
    message_count: int = 0
    # The dedupe key of the message that opened the ticket: re-processing that message finds this ticket.
    origin_key: str
    # Who may thread into this ticket by its [#number] subject token: requester, Cc'd people, repliers.
    participants: list[str] = Field(default_factory=list)
    subject_key: str = ""  # the normalised subject, for the same-sender subject fallback
    thread_roots: list[str] = Field(default_factory=list)  # Outlook Thread-Index conversation roots
    # The dedupe keys of the newest messages counted on the ticket (at most APPLIED_KEPT): a message's change to
    # the ticket (its count, participants, status) is applied once, also when its delivery is resumed.
    applied: list[str] = Field(default_factory=list)
    auth_failed: bool = False  # the opening mail failed DMARC at the receiving server (possible spoofing)
    flags: list[str] = Field(default_factory=list)  # what staff should know of the opening mail (MessageFlag values)
    merged_into: int | None = None  # merged into that ticket: closed, its messages moved there, mail to it goes there
    merged_from: list[int] = Field(default_factory=list)  # tickets merged into this one
    linked_tickets: list[int] = Field(default_factory=list)  # tickets the opening mail referred to but may not join
    triage: TriageRecord | None = None
    triage_review: TriageReview | None = None  # staff's verdict on the triage (none until they change or solve it)
    rating: Rating | None = None  # the customer's, from the solved mail's links (rating again replaces it)
    assigned_at: datetime | None = None
    first_response_at: datetime | None = None  # an agent's first reply to the customer
    response_due_at: datetime | None = None  # first-response target from the priority (SLA)
    solved_at: datetime | None = None  # when staff last marked it solved (its `ticket/solved` is keyed by it)
    escalated_at: datetime | None = None  # the target passed unanswered: priority raised, admins told
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Derived, kept in step by services.tickets.apply_update: PRIORITY_RANK of `priority`, because the enum's
    # strings do not sort by urgency.
    priority_rank: int = 0
    # Subject and the opening message's text, lower-cased, at most SEARCH_TEXT_CHARS: what `q` searches. The
    # embedded store has no $text, and a regex over the messages collection would decode every message body.
    search_text: str = ""

    class Settings:
        name = "tickets"
        indexes = [
            # Not unique: numbers come from an atomic counter. A unique index on a number costs a full
            # collection scan per insert on the embedded store (mongoeco 4.11 checks numeric keys by scanning).
            IndexModel([("number", ASCENDING)], name="number"),
            IndexModel([("origin_key", ASCENDING)], unique=True, name="origin_unique"),
            IndexModel([("requester.user_id", ASCENDING), ("number", DESCENDING)], name="requester_number"),
            IndexModel([("subject_key", ASCENDING), ("requester.email", ASCENDING)], name="subject_requester"),
            IndexModel([("thread_roots", ASCENDING)], name="thread_roots"),
            IndexModel([("assignee.user_id", ASCENDING), ("status", ASCENDING)], name="assignee_status"),
        ]
