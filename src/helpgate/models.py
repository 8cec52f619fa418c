"""Every Beanie document, from the domain packages that hold them (for init_beanie and the archive).

Services are the only code that writes them."""

from beanie import Document

from helpgate.accounts.models.password_reset import PasswordResetToken
from helpgate.accounts.models.session import RefreshToken
from helpgate.accounts.models.skill import Skill
from helpgate.accounts.models.user import Role, User
from helpgate.audit.models import AuditAction, AuditEntry
from helpgate.core.rate_window import RateWindow
from helpgate.inbound.models.raw_message import RawMessage, RawStatus
from helpgate.mail_out.models.outbound import DeliveryStatus, OutboundMail, Transition
from helpgate.mail_out.models.suppression import Suppression
from helpgate.mailboxes.models.consent import OAuthConsent
from helpgate.mailboxes.models.lease import Lease
from helpgate.mailboxes.models.mailbox import (
    GrantState,
    ImapSecurity,
    Mailbox,
    MailboxAuth,
    MailboxState,
    OAuthClient,
    OAuthFlow,
    OAuthProvider,
)
from helpgate.outbox.models.event import EventStatus, OutboxEvent
from helpgate.outbox.models.workflow_run import RunStatus, WorkflowRun
from helpgate.tickets.models.attachment import Attachment
from helpgate.tickets.models.category import Category
from helpgate.tickets.models.counter import Counter
from helpgate.tickets.models.message import AttachmentRef, Direction, Message, MessageFlag, MessageKind
from helpgate.tickets.models.ticket import (
    Participant,
    Priority,
    Rating,
    Ticket,
    TicketStatus,
    TriageRecord,
    TriageReview,
)
from helpgate.tickets.models.unfinished_change import UnfinishedChange
from helpgate.workflows.models.triage_model import TriageModel

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
    Category,
    OAuthConsent,
    TriageModel,
    UnfinishedChange,
)

__all__ = [
    "ALL_MODELS",
    "Attachment",
    "AttachmentRef",
    "AuditAction",
    "AuditEntry",
    "Category",
    "Counter",
    "DeliveryStatus",
    "Direction",
    "EventStatus",
    "GrantState",
    "ImapSecurity",
    "Lease",
    "Mailbox",
    "MailboxAuth",
    "MailboxState",
    "Message",
    "MessageFlag",
    "MessageKind",
    "OAuthClient",
    "OAuthConsent",
    "OAuthFlow",
    "OAuthProvider",
    "OutboundMail",
    "OutboxEvent",
    "Participant",
    "PasswordResetToken",
    "Priority",
    "RateWindow",
    "Rating",
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
    "TriageModel",
    "TriageRecord",
    "TriageReview",
    "UnfinishedChange",
    "User",
    "WorkflowRun",
]
