"""An IMAP mailbox helpgate imports support mail from, with its cursor and status."""

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class ImapSecurity(StrEnum):
    TLS = "tls"  # IMAPS, implicit TLS (port 993)
    NONE = "none"  # plain text: only for a server on the same host


class MailboxState(BaseModel):
    """Where the poller stands: the IMAP cursor and what happened last."""

    uidvalidity: int | None = None
    last_uid: int = 0
    last_poll_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    connected: bool = False
    imported: int = 0


class Mailbox(Document):
    address: str  # the support address mail in this mailbox was sent to; lower-cased, unique
    display_name: str = ""
    imap_host: str
    imap_port: int = 993
    imap_security: ImapSecurity = ImapSecurity.TLS
    imap_verify_tls: bool = True
    username: str
    password_encrypted: str  # Fernet token; the clear password is never stored or returned
    folder: str = "INBOX"
    after_import: str = "seen"  # "seen" or "move:<folder>"
    import_history: bool = False  # first connection: also import mail already marked \Seen
    poll_interval_seconds: float = 60.0  # used when the server has no IDLE
    # Which Authentication-Results of this mailbox's provider to believe (inbound/authresults.py), beside
    # HELPGATE_TRUSTED_AUTHSERV_IDS: its authserv-ids (Google: mx.google.com), or the topmost header whatever its
    # id (Microsoft 365 writes none).
    authserv_ids: list[str] = Field(default_factory=list)
    trust_first_authentication_results: bool = False
    enabled: bool = True
    state: MailboxState = Field(default_factory=MailboxState)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "mailboxes"
        indexes = [IndexModel([("address", ASCENDING)], unique=True, name="address_unique")]

    @property
    def move_to(self) -> str | None:
        return self.after_import.removeprefix("move:") if self.after_import.startswith("move:") else None
