"""The audit log: who changed what among accounts, skills, mailboxes and tickets, and when."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from helpgate.core.clock import utcnow


class AuditAction(StrEnum):
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    SKILLS_REPLACED = "skills.replaced"
    CATEGORIES_REPLACED = "categories.replaced"
    MAILBOX_CREATED = "mailbox.created"
    MAILBOX_UPDATED = "mailbox.updated"
    MAILBOX_DELETED = "mailbox.deleted"
    MAILBOX_CONNECTED = "mailbox.connected"  # an admin gave OAuth2 consent
    TICKET_UPDATED = "ticket.updated"
    TICKET_MERGED = "ticket.merged"
    SUPPRESSION_LIFTED = "suppression.lifted"


class AuditEntry(Document):
    actor_id: PydanticObjectId | None
    actor_email: str  # or, for the command line, "cli:<operating-system user>"
    action: AuditAction
    target_type: str  # user, skills, mailbox, ticket
    target_id: str  # the document id, or the ticket number
    target_label: str = ""  # what a person recognises: the email, the mailbox address, the subject
    changes: dict[str, Any] = Field(default_factory=dict)  # field -> new value; secrets only as "(changed)"
    at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "audit_log"
        indexes = [
            IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="at"),
            IndexModel([("actor_id", ASCENDING), ("at", DESCENDING)], name="actor_at"),
            IndexModel([("action", ASCENDING), ("at", DESCENDING)], name="action_at"),
        ]
