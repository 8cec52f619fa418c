"""The tickets documents (Beanie)."""

from helpgate.tickets.models.attachment import Attachment
from helpgate.tickets.models.counter import Counter
from helpgate.tickets.models.message import AttachmentRef, Direction, Message, MessageFlag, MessageKind
from helpgate.tickets.models.ticket import Participant, Priority, Ticket, TicketStatus, TriageRecord

__all__ = [
    "Attachment",
    "AttachmentRef",
    "Counter",
    "Direction",
    "Message",
    "MessageFlag",
    "MessageKind",
    "Participant",
    "Priority",
    "Ticket",
    "TicketStatus",
    "TriageRecord",
]
