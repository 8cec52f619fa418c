"""Request and response bodies of the API. Nothing here carries a password hash or a secret."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpgate.api import examples
from helpgate.core.models import (
    AuditAction,
    AuditEntry,
    DeliveryStatus,
    Direction,
    ImapSecurity,
    Lease,
    Mailbox,
    Message,
    MessageKind,
    OutboundMail,
    Participant,
    Priority,
    Role,
    Skill,
    Ticket,
    TicketStatus,
    User,
)
from helpgate.core.services.paging import MAX_PAGE_SIZE
from helpgate.core.services.queue import Stats, TicketFilter, TicketSort

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_line_breaks(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("no control characters or line breaks")
    return value


Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
MAX_BASE64_CHARS = 20 * 1024 * 1024  # one attachment's base64; the total decoded size is capped by a setting


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.LOGIN]})
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REFRESH]})
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TOKENS]})
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class SignupRequest(BaseModel):
    """A customer account for yourself. No password here: the address gets a code to confirm it and choose one."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "jane@example.org", "name": "Jane"}]}
    )
    email: Email
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REFRESH]})
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PASSWORD_CHANGE]})
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "jane@example.org"}]})
    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PASSWORD_RESET_CONFIRM]})
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Accepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ACCEPTED]})
    detail: str


class TokenForm(BaseModel):
    """The OAuth2 password grant (RFC 6749 section 4.3.2): `username` is the email address."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.TOKEN_FORM]})
    grant_type: Literal["password"] | None = None
    username: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    scope: Annotated[str, StringConstraints(max_length=1024)] = ""  # no scopes: the role decides
    client_id: Annotated[str, StringConstraints(max_length=256)] | None = None  # sent by some clients; unused
    client_secret: Annotated[str, StringConstraints(max_length=256)] | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ME]})
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
    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [examples.REPLY_MESSAGE]})
    id: str
    direction: Direction
    kind: MessageKind
    from_: PersonOut = Field(serialization_alias="from")
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    message_id: str | None
    attachments: list[AttachmentOut]
    delivery: DeliveryOut | None  # outbound mail, for agents and admins: queued, sent, failed (with reason)...
    created_at: datetime

    @classmethod
    def of(cls, message: Message, delivery: OutboundMail | None = None) -> MessageOut:
        return cls(
            id=str(message.id),
            direction=message.direction,
            kind=message.kind,
            from_=PersonOut(email=message.from_email, name=message.from_name),
            to=message.to,
            cc=message.cc,
            subject=message.subject,
            text=message.text,
            message_id=message.message_id,
            attachments=[
                AttachmentOut(
                    filename=ref.filename, content_type=ref.content_type, size=ref.size, purged_at=ref.purged_at
                )
                for ref in message.attachments
            ],
            delivery=DeliveryOut.of(delivery) if delivery is not None else None,
            created_at=message.created_at,
        )


class TicketOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET]})
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


class TriageOut(BaseModel):
    """What triage decided and how (staff only): `source` is gemini or heuristic."""

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


class TicketPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET_PAGE]})
    items: list[TicketOut]
    total: int
    page: int
    page_size: int


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


Category = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_no_line_breaks)]


class TicketPatch(BaseModel):
    """Only the fields sent change; `"assignee": null` unassigns, `"priority": null` clears."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.TICKET_PATCH]})
    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee: Email | None = None
    category: Category | None = None

    @field_validator("status")
    @classmethod
    def _status_not_null(cls, value: TicketStatus | None) -> TicketStatus:
        if value is None:
            raise ValueError("a ticket always has a status")
        return value


# --- the ticket queue: filters, counts, tickets and answers written by customers -------------------------


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC (UTC when it has no offset). A moment UTC cannot express, such as year 1 at +01:00,
    is refused here rather than failing when the store encodes it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the range of dates (in UTC, years 1 to 9999)") from None


Moment = Annotated[datetime, AfterValidator(_in_utc)]


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
        if not folded or _CONTROL.search(folded):
            raise ValueError("a subject is one line of text without control characters")
        return folded


class RequesterMessage(BaseModel):
    """The requester's answer on their own ticket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REQUESTER_MESSAGE]})
    text: Text


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


# --- admin: accounts and the skill catalog --------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
SkillName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
MAX_SKILLS = 200  # per agent, and in the catalog


class UserAdminOut(UserOut):
    """An account as admins see it (still no password hash)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.AGENT]})

    away: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserAdminOut:
        return cls.model_validate({**UserOut.of(user).model_dump(), "away": user.away, "created_at": user.created_at})


class UserPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.USER_PAGE]})
    items: list[UserAdminOut]
    total: int
    page: int
    page_size: int


class UserCreate(BaseModel):
    """A new account; without a password it cannot log in until one is set."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.USER_CREATE]})
    email: Email
    name: Name = ""
    role: Role
    password: Password | None = None
    skills: list[SkillName] = Field(default_factory=list, max_length=MAX_SKILLS)


class UserPatch(BaseModel):
    """Only the fields sent change; none of them may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.USER_PATCH]})
    name: Name | None = None
    role: Role | None = None
    skills: list[SkillName] | None = Field(default=None, max_length=MAX_SKILLS)
    active: bool | None = None
    away: bool | None = None

    @field_validator("name", "role", "skills", "active", "away")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class SkillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.SKILL]})
    name: SkillName
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class SkillOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SKILL]})
    name: str
    description: str

    @classmethod
    def of(cls, skill: Skill) -> SkillOut:
        return cls(name=skill.name, description=skill.description)


# --- admin: IMAP mailboxes --------------------------------------------------------------------------------

# aioimaplib sends the LOGIN username as an IMAP atom, unquoted (RFC 3501 section 9): printable ASCII without
# spaces and without the characters that would start another token. Folder names may be anything but control
# characters: the poller encodes and quotes them (inbound/imap_names.py).
_IMAP_ATOM = re.compile(r"[\x21-\x7e]+")
_ATOM_SPECIALS = set('(){}%*"\\]')
_HOST = r"^([A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f:.]{2,45})$"


def _imap_atom(value: str) -> str:
    if not _IMAP_ATOM.fullmatch(value) or _ATOM_SPECIALS & set(value):
        raise ValueError('printable ASCII without spaces or any of ( ) { } % * " \\ ]')
    return value


def _after_import(value: str) -> str:
    if value == "seen":
        return value
    if value.startswith("move:") and value.removeprefix("move:").strip():
        return _no_line_breaks(value)
    raise ValueError("'seen' or 'move:<folder>'")


ImapName = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_imap_atom)]
FolderName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"\S"), AfterValidator(_no_line_breaks)
]
ImapHost = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_HOST)]
ImapPort = Annotated[int, Field(ge=1, le=65535)]
ImapPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_no_line_breaks)]
AfterImport = Annotated[str, StringConstraints(max_length=260), AfterValidator(_after_import)]
DisplayName = Annotated[Name, AfterValidator(_no_line_breaks)]
PollInterval = Annotated[float, Field(ge=1, le=3600, description="seconds between polls when the server has no IDLE")]


class MailboxCreate(BaseModel):
    """An IMAP mailbox to import support mail from. The password is stored encrypted and never returned."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "address": "support@example.com",
                    "imap_host": "imap.example.com",
                    "username": "support@example.com",
                    "password": "app-password",
                    "after_import": "move:Imported",
                }
            ]
        },
    )
    address: Email = Field(description="the support address whose mail lands in this mailbox")
    display_name: DisplayName = ""
    imap_host: ImapHost
    imap_port: ImapPort | None = Field(default=None, description="993 with tls, 143 with none, when left out")
    imap_security: ImapSecurity = Field(
        default=ImapSecurity.TLS, description="tls: IMAPS (implicit TLS); none: plain text, only for this host"
    )
    imap_verify_tls: bool = True
    username: ImapName
    password: ImapPassword
    folder: FolderName = "INBOX"
    after_import: AfterImport = Field(default="seen", description="`seen` or `move:<folder>`")
    import_history: bool = Field(default=False, description="first connection: also import mail already read")
    poll_interval_seconds: PollInterval = 60.0
    enabled: bool = True


class MailboxPatch(BaseModel):
    """Only the fields sent change; none of them may be null. A new `password` replaces the stored one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})
    address: Email | None = None
    display_name: DisplayName | None = None
    imap_host: ImapHost | None = None
    imap_port: ImapPort | None = None
    imap_security: ImapSecurity | None = None
    imap_verify_tls: bool | None = None
    username: ImapName | None = None
    password: ImapPassword | None = None
    folder: FolderName | None = None
    after_import: AfterImport | None = None
    import_history: bool | None = None
    poll_interval_seconds: PollInterval | None = None
    enabled: bool | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class MailboxStatusOut(BaseModel):
    """What the poller last recorded: connection, last poll and error, messages imported, the IMAP cursor;
    and which instance polls the mailbox (`owner`, null when none holds its lease) until when."""

    connected: bool
    last_poll_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    imported: int
    uidvalidity: int | None
    last_uid: int
    owner: str | None
    lease_expires_at: datetime | None


class MailboxOut(BaseModel):
    """A mailbox as admins see it: never the password nor its ciphertext, only `has_password`."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.MAILBOX]})

    id: str
    address: str
    display_name: str
    imap_host: str
    imap_port: int
    imap_security: ImapSecurity
    imap_verify_tls: bool
    username: str
    folder: str
    after_import: str
    import_history: bool
    poll_interval_seconds: float
    enabled: bool
    has_password: bool
    status: MailboxStatusOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, mailbox: Mailbox, lease: Lease | None = None) -> MailboxOut:
        fields = mailbox.model_dump(exclude={"id", "password_encrypted", "state"})
        held = {"owner": lease.owner if lease else None, "lease_expires_at": lease.expires_at if lease else None}
        return cls.model_validate(
            {
                **fields,
                "id": str(mailbox.id),
                "has_password": bool(mailbox.password_encrypted),
                "status": {**mailbox.state.model_dump(), **held},
            }
        )


class MailboxTestOut(BaseModel):
    """`detail`: what worked, or the server's error, in plain words."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.MAILBOX_TEST]})

    ok: bool
    detail: str


# --- admin: the audit log ----------------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    id: str
    at: datetime
    actor_id: str | None
    actor_email: str
    action: AuditAction
    target_type: str
    target_id: str
    target_label: str
    changes: dict[str, object] = Field(description='field -> new value; secrets only as "(changed)"')

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=str(entry.id),
            at=entry.at,
            actor_id=str(entry.actor_id) if entry.actor_id else None,
            actor_email=entry.actor_email,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            target_label=entry.target_label,
            changes=entry.changes,
        )


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.AUDIT_PAGE]})
    items: list[AuditEntryOut]
    total: int
    page: int
    page_size: int


# --- errors and health ---------------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    """One way a request does not fit the schema, as FastAPI reports it: where (`loc`) and what (`msg`)."""

    type: str
    loc: list[str | int]
    msg: str
    input: object = None
    ctx: dict[str, object] | None = None


class ErrorOut(BaseModel):
    """The body of every error answer. `detail` says what is wrong in a sentence; when the request does not
    fit the schema (422), it lists the problems instead."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ERROR, examples.VALIDATION_ERROR]})
    detail: str | list[FieldProblem]


class HealthOut(BaseModel):
    """`status` ok (200) or degraded (503), then one object per part (store, smtp, http, inbound, outbound,
    workflows, imap), each with `ok` and what that part reports."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [examples.HEALTH]})
    status: Literal["ok", "degraded"]


class ReadinessCheckOut(BaseModel):
    """One condition of readiness: whether it holds, and what was found."""

    ok: bool
    detail: str


class ReadinessOut(BaseModel):
    """`ready` (200) or `not ready` (503), the names of the conditions that fail, and every condition checked
    (store, smtp, http, relay)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "not ready",
                    "not_ready": ["relay"],
                    "checks": {
                        "store": {"ok": True, "detail": "answers ping"},
                        "smtp": {"ok": True, "detail": "listening on 0.0.0.0:2525"},
                        "http": {"ok": True, "detail": "serving on 0.0.0.0:8000"},
                        "relay": {
                            "ok": False,
                            "detail": "running; the oldest undelivered outbox event is 742 s old (limit 600 s)",
                        },
                    },
                }
            ]
        }
    )
    status: Literal["ready", "not ready"]
    not_ready: list[str]
    checks: dict[str, ReadinessCheckOut]
