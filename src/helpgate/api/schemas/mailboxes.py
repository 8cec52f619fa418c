"""Admin bodies for IMAP mailboxes: settings in, status and test results out; never a password."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from helpgate.api import examples
from helpgate.api.schemas.fields import Email, no_line_breaks
from helpgate.core.settings import SmtpSecurity
from helpgate.mailboxes.mailboxes import OAuthSettings, SmtpSettings
from helpgate.models import ImapSecurity, Lease, Mailbox, MailboxAuth, OAuthFlow, OAuthProvider

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
        return no_line_breaks(value)
    raise ValueError("'seen' or 'move:<folder>'")


ImapName = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_imap_atom)]
FolderName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"\S"), AfterValidator(no_line_breaks)
]
ImapHost = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_HOST)]
ImapPort = Annotated[int, Field(ge=1, le=65535)]
ImapPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(no_line_breaks)]
AfterImport = Annotated[str, StringConstraints(max_length=260), AfterValidator(_after_import)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(no_line_breaks)]
PollInterval = Annotated[float, Field(ge=1, le=3600, description="seconds between polls when the server has no IDLE")]
AuthservId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[!-~]+$")]
AuthservIds = Annotated[
    list[AuthservId],
    Field(
        max_length=20,
        description="authserv-ids of this mailbox's provider whose Authentication-Results are believed "
        "(Google Workspace: mx.google.com), beside HELPGATE_TRUSTED_AUTHSERV_IDS",
    ),
]
TrustFirst = Annotated[
    bool,
    Field(
        description="believe the topmost Authentication-Results header whatever its authserv-id "
        "(Microsoft 365 writes none); only for a provider that always adds its own header on top"
    ),
]


OAuthUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]
OAuthText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[!-~]*$")]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[!-~]+$")]


class OAuthIn(BaseModel):
    """The app registered with the provider. `microsoft`: `tenant_id` and `client_id`, and `client_secret` for
    `client_credentials` (app-only, a shared mailbox) or a confidential app; `google`: `client_id` and
    `client_secret`; `generic`: also its endpoints and scopes. Endpoints set here win over the provider's (a
    national cloud). The secret is stored encrypted and never returned; left out on a change, it is kept."""

    model_config = ConfigDict(extra="forbid")
    provider: OAuthProvider
    flow: OAuthFlow = OAuthFlow.AUTHORIZATION_CODE
    client_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[!-~]+$")
    ]
    client_secret: ImapPassword | None = None
    client_certificate: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] | None = Field(
        default=None,
        description="Microsoft: instead of a secret, the app's certificate credential: an unencrypted RSA private key "
        "and its certificate, in PEM; stored encrypted, never returned",
    )
    tenant_id: OAuthText = ""
    authorization_url: OAuthUrl | None = None
    token_url: OAuthUrl | None = None
    device_authorization_url: OAuthUrl | None = None
    scopes: Annotated[list[Scope], Field(max_length=20)] = []

    def settings(self) -> OAuthSettings:
        return OAuthSettings(
            provider=self.provider,
            flow=self.flow,
            client_id=self.client_id,
            client_secret=self.client_secret,
            client_certificate=self.client_certificate,
            tenant_id=self.tenant_id,
            authorization_url=self.authorization_url or "",
            token_url=self.token_url or "",
            device_authorization_url=self.device_authorization_url or "",
            scopes=tuple(self.scopes),
        )


class OAuthOut(BaseModel):
    """The app, never its secret nor its certificate's key: only `has_client_secret`, `has_client_certificate`."""

    provider: OAuthProvider
    flow: OAuthFlow
    client_id: str
    tenant_id: str
    authorization_url: str
    token_url: str
    device_authorization_url: str
    scopes: list[str]
    has_client_secret: bool
    has_client_certificate: bool


class SmtpIn(BaseModel):
    """The mailbox's own submission server, for mail about the tickets that came in through it (Microsoft 365:
    `smtp.office365.com`, port 587, starttls; Google: `smtp.gmail.com`). It logs in as the mailbox: XOAUTH2 with
    the mailbox's token, or the password given here, else the IMAP password."""

    model_config = ConfigDict(extra="forbid")
    host: ImapHost
    port: ImapPort | None = Field(default=None, description="587 with starttls, 465 with tls, 25 with none")
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    verify_tls: bool = True
    username: Annotated[str, StringConstraints(max_length=255, pattern=r"^[!-~]*$")] = ""
    password: ImapPassword | None = None

    def settings(self) -> SmtpSettings:
        return SmtpSettings(
            host=self.host,
            port=self.port,
            security=self.security,
            verify_tls=self.verify_tls,
            username=self.username,
            password=self.password,
        )


class SmtpOut(BaseModel):
    host: str
    port: int
    security: SmtpSecurity
    verify_tls: bool
    username: str
    has_password: bool


Smtp = Annotated[
    SmtpIn | None,
    Field(description="send mail about this mailbox's tickets through its own server, as its address (null: the "
          "global relay)"),
]  # fmt: skip
DefaultSender = Annotated[
    bool, Field(description="mail about no ticket goes out through this mailbox when there is no global relay")
]


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
    auth: MailboxAuth = Field(
        default=MailboxAuth.PASSWORD, description="`password`, or `oauth2` (XOAUTH2) with `oauth`"
    )
    password: ImapPassword | None = Field(default=None, description="with auth password")
    oauth: OAuthIn | None = Field(default=None, description="with auth oauth2")
    smtp: Smtp = None
    default_sender: DefaultSender = False
    folder: FolderName = "INBOX"
    after_import: AfterImport = Field(default="seen", description="`seen` or `move:<folder>`")
    import_history: bool = Field(default=False, description="first connection: also import mail already read")
    poll_interval_seconds: PollInterval = 60.0
    enabled: bool = True
    authserv_ids: AuthservIds = []
    trust_first_authentication_results: TrustFirst = False

    @model_validator(mode="after")
    def _login(self) -> MailboxCreate:
        if self.auth is MailboxAuth.PASSWORD and self.password is None:
            raise ValueError("auth password needs the password")
        if self.auth is MailboxAuth.OAUTH2 and self.oauth is None:
            raise ValueError("auth oauth2 needs oauth (provider, client_id...)")
        return self


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
    auth: MailboxAuth | None = None
    password: ImapPassword | None = None
    oauth: OAuthIn | None = Field(default=None, description="replaces the app; a left-out client_secret is kept")
    smtp: Smtp = Field(default=None, description="replaces the server (a left-out password is kept); null removes it")
    default_sender: DefaultSender | None = None
    folder: FolderName | None = None
    after_import: AfterImport | None = None
    import_history: bool | None = None
    poll_interval_seconds: PollInterval | None = None
    enabled: bool | None = None
    authserv_ids: AuthservIds | None = None
    trust_first_authentication_results: TrustFirst | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name != "smtp":
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
    auth_state: str | None = Field(
        description="OAuth2 mailboxes: `ok`, `not_connected` (an admin connects it) or `needs_consent` (the provider "
        "refused: `auth_error` says why); null with a password"
    )
    auth_error: str | None
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None


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
    auth: MailboxAuth
    oauth: OAuthOut | None
    smtp: SmtpOut | None
    default_sender: bool
    folder: str
    after_import: str
    import_history: bool
    poll_interval_seconds: float
    enabled: bool
    authserv_ids: list[str]
    trust_first_authentication_results: bool
    has_password: bool
    status: MailboxStatusOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, mailbox: Mailbox, lease: Lease | None = None) -> MailboxOut:
        fields = mailbox.model_dump(exclude={"id", "password_encrypted", "state", "oauth", "grant", "smtp"})
        held = {"owner": lease.owner if lease else None, "lease_expires_at": lease.expires_at if lease else None}
        oauth = mailbox.auth is MailboxAuth.OAUTH2 and mailbox.oauth is not None
        grant = mailbox.grant
        auth = {
            "auth_state": str(grant.state) if oauth else None,
            "auth_error": grant.error if oauth else None,
            "token_expires_at": grant.expires_at if oauth else None,
            "token_refreshed_at": grant.refreshed_at if oauth else None,
        }
        client = None
        if oauth and mailbox.oauth is not None:
            client = {
                **mailbox.oauth.model_dump(exclude={"client_secret_encrypted", "client_certificate_encrypted"}),
                "has_client_secret": bool(mailbox.oauth.client_secret_encrypted),
                "has_client_certificate": bool(mailbox.oauth.client_certificate_encrypted),
            }
        return cls.model_validate(
            {
                **fields,
                "id": str(mailbox.id),
                "oauth": client,
                "smtp": None
                if mailbox.smtp is None
                else {
                    **mailbox.smtp.model_dump(exclude={"password_encrypted"}),
                    "has_password": bool(mailbox.smtp.password_encrypted),
                },
                "has_password": bool(mailbox.password_encrypted),
                "status": {**mailbox.state.model_dump(), **held, **auth},
            }
        )


class MailboxTestOut(BaseModel):
    """`detail`: what worked, or the server's error, in plain words."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.MAILBOX_TEST]})

    ok: bool
    detail: str


class OAuthStartOut(BaseModel):
    """Open `authorization_url` in a browser within `expires_in` seconds; the provider sends you back to helpgate."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.OAUTH_START]})

    authorization_url: str
    redirect_uri: str
    expires_in: int


class OAuthConnectedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.OAUTH_CONNECTED]})

    address: str
    auth_state: str
