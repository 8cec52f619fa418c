"""An IMAP mailbox helpgate imports support mail from, with its cursor and status, and how it logs in: a password, or
OAuth2 (XOAUTH2) with the provider's client and the grant it gave (mailboxes/oauth.py)."""

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow
from helpgate.core.settings import SmtpSecurity


class ImapSecurity(StrEnum):
    TLS = "tls"  # IMAPS, implicit TLS (port 993)
    NONE = "none"  # plain text: only for a server on the same host


class MailboxAuth(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a kind of login, not a password
    OAUTH2 = "oauth2"


class OAuthProvider(StrEnum):
    MICROSOFT = "microsoft"  # Entra ID: tenant-specific endpoints
    GOOGLE = "google"
    GENERIC = "generic"  # any OAuth2 server: its endpoints and scopes given


class OAuthFlow(StrEnum):
    """How the grant is obtained: an admin's consent in the browser (with PKCE), a code typed on another device,
    or no user at all (Microsoft app-only access to a shared mailbox)."""

    AUTHORIZATION_CODE = "authorization_code"
    DEVICE_CODE = "device_code"
    CLIENT_CREDENTIALS = "client_credentials"


class OAuthClient(BaseModel):
    """The app registered with the provider. The secret is encrypted (Fernet) and never returned."""

    provider: OAuthProvider
    flow: OAuthFlow = OAuthFlow.AUTHORIZATION_CODE
    client_id: str
    client_secret_encrypted: str = ""
    # Or a certificate (Entra ID): its private key and certificate in PEM, encrypted; tokens are then asked for with
    # a signed client assertion (RFC 7523) instead of the secret.
    client_certificate_encrypted: str = ""
    tenant_id: str = ""  # Microsoft: the directory (tenant) id or domain; never "common" for app-only
    authorization_url: str = ""  # generic providers
    token_url: str = ""
    device_authorization_url: str = ""
    scopes: list[str] = Field(default_factory=list)  # empty: the provider's (oauth_providers.py)


class GrantState(StrEnum):
    NOT_CONNECTED = "not_connected"  # no token yet: an admin connects the mailbox
    OK = "ok"
    NEEDS_CONSENT = "needs_consent"  # the provider refused the grant or the client: an admin must act


class OAuthGrant(BaseModel):
    """What the provider granted, tokens encrypted; `version` moves with each write, so a refresh never overwrites
    a newer one."""

    state: GrantState = GrantState.NOT_CONNECTED
    access_token_encrypted: str = ""
    refresh_token_encrypted: str = ""
    expires_at: datetime | None = None
    refreshed_at: datetime | None = None
    error: str | None = None  # the provider's words when it refused
    error_at: datetime | None = None
    connected_by: str | None = None  # who gave consent (an admin's id, or cli:<user>)
    version: int = 0


class MailboxSmtp(BaseModel):
    """Where mail about this mailbox's tickets goes out: the provider's submission server, as the mailbox.

    It logs in as the mailbox does: XOAUTH2 with the mailbox's token, or a password (its own, else the IMAP one).
    """

    host: str
    port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    verify_tls: bool = True
    username: str = ""  # empty: the IMAP username
    password_encrypted: str = ""  # empty: the IMAP password


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
    auth: MailboxAuth = MailboxAuth.PASSWORD
    password_encrypted: str = ""  # Fernet token; the clear password is never stored or returned
    oauth: OAuthClient | None = None  # with auth oauth2
    grant: OAuthGrant = Field(default_factory=OAuthGrant)
    smtp: MailboxSmtp | None = None  # None: mail about its tickets goes through the global relay (SMTP_*)
    default_sender: bool = False  # mail about no ticket goes out through this mailbox when there is no global relay
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
    applied: list[str] = Field(default_factory=list)  # the audit marks of the last changes written (audit.marked)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "mailboxes"
        indexes = [IndexModel([("address", ASCENDING)], unique=True, name="address_unique")]

    @property
    def move_to(self) -> str | None:
        return self.after_import.removeprefix("move:") if self.after_import.startswith("move:") else None
