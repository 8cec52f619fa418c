"""Admin bodies for IMAP mailboxes: settings in, status and test results out; never a password."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpgate.api import examples
from helpgate.api.schemas.fields import Email, no_line_breaks
from helpgate.models import ImapSecurity, Lease, Mailbox

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
    authserv_ids: AuthservIds = []
    trust_first_authentication_results: TrustFirst = False


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
    authserv_ids: AuthservIds | None = None
    trust_first_authentication_results: TrustFirst | None = None

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
    authserv_ids: list[str]
    trust_first_authentication_results: bool
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
