"""Beanie documents. Services are the only code that writes them."""

from beanie import Document

from helpgate.core.models.counter import Counter
from helpgate.core.models.mailbox import ImapSecurity, Mailbox, MailboxState
from helpgate.core.models.message import Direction, Message, MessageKind
from helpgate.core.models.raw_message import RawMessage, RawStatus
from helpgate.core.models.session import RefreshToken
from helpgate.core.models.ticket import Participant, Priority, Ticket, TicketStatus
from helpgate.core.models.user import Role, User

ALL_MODELS: tuple[type[Document], ...] = (User, Ticket, Message, RawMessage, Counter, RefreshToken, Mailbox)

__all__ = [
    "ALL_MODELS",
    "Counter",
    "Direction",
    "ImapSecurity",
    "Mailbox",
    "MailboxState",
    "Message",
    "MessageKind",
    "Participant",
    "Priority",
    "RawMessage",
    "RawStatus",
    "RefreshToken",
    "Role",
    "Ticket",
    "TicketStatus",
    "User",
]
