"""Beanie documents. Services are the only code that writes them."""

from beanie import Document

from helpgate.core.models.attachment import Attachment
from helpgate.core.models.audit import AuditAction, AuditEntry
from helpgate.core.models.counter import Counter
from helpgate.core.models.event import EventStatus, OutboxEvent
from helpgate.core.models.lease import Lease
from helpgate.core.models.mailbox import ImapSecurity, Mailbox, MailboxState
from helpgate.core.models.message import AttachmentRef, Direction, Message, MessageFlag, MessageKind
from helpgate.core.models.outbound import DeliveryStatus, OutboundMail, Transition
from helpgate.core.models.password_reset import PasswordResetToken
from helpgate.core.models.rate_limit import RateWindow
from helpgate.core.models.raw_message import RawMessage, RawStatus
from helpgate.core.models.session import RefreshToken
from helpgate.core.models.skill import Skill
from helpgate.core.models.suppression import Suppression
from helpgate.core.models.ticket import Participant, Priority, Ticket, TicketStatus, TriageRecord
from helpgate.core.models.user import Role, User
from helpgate.core.models.workflow_run import RunStatus, WorkflowRun

ALL_MODELS: tuple[type[Document], ...] = (
    User,
    Ticket,
    Message,
    RawMessage,
    Counter,
    RefreshToken,
    Mailbox,
    Attachment,
    OutboundMail,
    Suppression,
    RateWindow,
    OutboxEvent,
    WorkflowRun,
    Skill,
    PasswordResetToken,
    AuditEntry,
    Lease,
)

__all__ = [
    "ALL_MODELS",
    "Attachment",
    "AttachmentRef",
    "AuditAction",
    "AuditEntry",
    "Counter",
    "DeliveryStatus",
    "Direction",
    "EventStatus",
    "ImapSecurity",
    "Lease",
    "Mailbox",
    "MailboxState",
    "Message",
    "MessageFlag",
    "MessageKind",
    "OutboundMail",
    "OutboxEvent",
    "Participant",
    "PasswordResetToken",
    "Priority",
    "RateWindow",
    "RawMessage",
    "RawStatus",
    "RefreshToken",
    "Role",
    "RunStatus",
    "Skill",
    "Suppression",
    "Ticket",
    "TicketStatus",
    "Transition",
    "TriageRecord",
    "User",
    "WorkflowRun",
]
