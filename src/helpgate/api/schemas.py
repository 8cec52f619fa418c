"""Request and response bodies of the API. Nothing here carries a password hash or a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from helpgate.core.models import (
    Direction,
    Message,
    MessageKind,
    Participant,
    Priority,
    Ticket,
    TicketStatus,
    User,
)

Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    skills: list[str]
    active: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=str(user.id),
            email=user.email,
            name=user.name,
            role=user.role,
            skills=user.skills,
            active=user.active,
        )


class PersonOut(BaseModel):
    email: str
    name: str

    @classmethod
    def of(cls, person: Participant | None) -> PersonOut | None:
        return None if person is None else cls(email=person.email, name=person.name)


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    direction: Direction
    kind: MessageKind
    from_: PersonOut = Field(serialization_alias="from")
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    message_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            direction=message.direction,
            kind=message.kind,
            from_=PersonOut(email=message.from_email, name=message.from_name),
            to=message.to,
            cc=message.cc,
            subject=message.subject,
            text=message.text,
            message_id=message.message_id,
            created_at=message.created_at,
        )


class TicketOut(BaseModel):
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

    @classmethod
    def fields_of(cls, ticket: Ticket) -> dict[str, object]:
        requester = PersonOut.of(ticket.requester)
        assert requester is not None
        return {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category,
            "skills": ticket.skills,
            "requester": requester,
            "assignee": PersonOut.of(ticket.assignee),
            "message_count": ticket.message_count,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
        }

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        return cls.model_validate(cls.fields_of(ticket))


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    page_size: int
