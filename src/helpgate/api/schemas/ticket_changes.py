"""What agents and customers send about tickets: replies, notes, changes, queue filters, new tickets."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpgate.api import examples
from helpgate.api.schemas.admin import MAX_SKILLS, SkillName
from helpgate.api.schemas.fields import CONTROL, MAX_BASE64_CHARS, Email, Moment, no_line_breaks
from helpgate.core.paging import MAX_PAGE_SIZE
from helpgate.models import Priority, TicketStatus
from helpgate.tickets.ticket_list import TicketFilter, TicketSort

# --- agent actions on a ticket (replies, notes, changes) ------------------------------------------------

Text = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
_CONTENT_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$"
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\:]")


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(pattern=_CONTENT_TYPE)] = "application/octet-stream"
    content_base64: Annotated[str, StringConstraints(max_length=MAX_BASE64_CHARS)]

    @field_validator("filename")
    @classmethod
    def _safe_filename(cls, value: str) -> str:
        # No path parts and no control characters: the name goes into a MIME header and onto disks.
        cleaned = _UNSAFE_FILENAME.sub("_", value).strip(". ")
        if not cleaned:
            raise ValueError("a file name is needed")
        return cleaned

    @field_validator("content_base64")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
        return value

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.content_base64)


class ReplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REPLY]})
    text: Text
    html: Annotated[str, StringConstraints(max_length=500_000)] | None = None
    cc: list[Email] = Field(default_factory=list, max_length=20)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    status: TicketStatus = TicketStatus.PENDING  # where the ticket goes: waiting for the customer, by default


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.NOTE]})
    text: Text


Category = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(no_line_breaks)]


class TicketMerge(BaseModel):
    """Where a ticket is merged: the number of the ticket that remains."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.TICKET_MERGE]})
    into: int = Field(ge=1, le=2**63 - 1, description="the ticket that remains")


class TicketPatch(BaseModel):
    """Only the fields sent change; `"assignee": null` unassigns, `"priority": null` clears."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.TICKET_PATCH]})
    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee: Email | None = None
    category: Category | None = None
    skills: list[SkillName] | None = Field(default=None, max_length=MAX_SKILLS, description="from the skill catalog")

    @field_validator("status")
    @classmethod
    def _status_not_null(cls, value: TicketStatus | None) -> TicketStatus:
        if value is None:
            raise ValueError("a ticket always has a status")
        return value

    @field_validator("skills")
    @classmethod
    def _skills_not_null(cls, value: list[str] | None) -> list[str]:
        if value is None:
            raise ValueError("send [] for no skills")
        return value


# --- the ticket queue: filters, counts, tickets and answers written by customers -------------------------


class TicketQuery(BaseModel):
    """Filters, order and page of `GET /api/tickets`. `status` and `priority` repeat (any of them)."""

    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 25
    status: list[TicketStatus] = Field(default_factory=list, max_length=len(TicketStatus))
    priority: list[Priority] = Field(default_factory=list, max_length=len(Priority))
    assignee: Annotated[str, StringConstraints(pattern=r"^(me|none|[0-9a-f]{24})$")] | None = Field(
        default=None, description="`me`, `none` (unassigned) or a user id"
    )
    category: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    requester: Email | None = Field(default=None, description="the requester's email address")
    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = Field(
        default=None,
        description="literal text (any case) in the subject or in the first 2,000 characters of the opening message",
    )
    created_after: Moment | None = Field(default=None, description="inclusive; UTC when no offset is given")
    created_before: Moment | None = Field(default=None, description="exclusive; UTC when no offset is given")
    sort: TicketSort = TicketSort.CREATED_DESC

    @field_validator("q", mode="before")
    @classmethod
    def _blank_is_no_search(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def to_filter(self) -> TicketFilter:
        return TicketFilter(
            statuses=tuple(dict.fromkeys(self.status)),
            priorities=tuple(dict.fromkeys(self.priority)),
            assignee=self.assignee,
            category=self.category,
            requester=self.requester,
            q=self.q,
            created_after=self.created_after,
            created_before=self.created_before,
        )


Subject = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class TicketCreate(BaseModel):
    """A new ticket, as if mailed in by the requester: the caller, or (agents and admins only) `requester`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [examples.TICKET_CREATE]},
    )
    subject: Subject
    text: Text
    requester: Email | None = None

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # The subject goes into mail headers (acknowledgement, replies): line breaks never get that far.
        folded = " ".join(value.split())
        if not folded or CONTROL.search(folded):
            raise ValueError("a subject is one line of text without control characters")
        return folded


class RequesterMessage(BaseModel):
    """The requester's answer on their own ticket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REQUESTER_MESSAGE]})
    text: Text
