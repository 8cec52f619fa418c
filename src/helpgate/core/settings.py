"""Settings read once from the environment (and a `.env` file), then passed down explicitly."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from helpgate.core.mail.transport import SmtpSecurity

MIB = 1024 * 1024


def default_instance_id() -> str:
    """host-pid-random: unique per process, and readable in logs and /healthz."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class _DocumentedNames(PydanticBaseSettingsSource):
    """The environment (or `.env`) as the README's table names it: a field with an alias only by that alias.

    `validate_by_name` lets code write `Settings(outbound_smtp_host=...)`, but pydantic-settings then also
    reads the field's own name from the environment (any case, with or without the prefix): a platform's
    generic `SECRET_KEY` or `OUTBOUND_SMTP_HOST` would configure helpgate. Values found that way are dropped.
    """

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._source = source
        self._aliased = {name for name, field in settings_cls.model_fields.items() if field.validation_alias}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {key: value for key, value in self._source().items() if key not in self._aliased}


class Settings(BaseSettings):
    """Every setting of helpgate; the README's table lists the same names."""

    model_config = SettingsConfigDict(
        env_prefix="HELPGATE_",
        env_file=".env",
        extra="ignore",
        validate_by_name=True,  # Settings(outbound_smtp_host=...) in code; the environment: see _DocumentedNames
        validate_by_alias=True,
    )

    data_dir: Path = Path(".helpgate")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or networks, "*" for any;
    # empty: none. The per-address login and sign-up limits count the client address this yields.
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1"]
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = Field(
        default_factory=socket.getfqdn, min_length=1, max_length=253, pattern=r"^[!-~]+$"
    )  # the name in the SMTP banner and EHLO reply, as Postfix's myhostname
    # STARTTLS is offered when both are set: PEM files, read again when they change (a renewal needs no restart).
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    # What one SMTP listener holds at most: sessions x HELPGATE_MAX_MESSAGE_BYTES of mail being received.
    smtp_max_sessions: int = Field(default=100, ge=1)  # open at once; one more is answered 421 and closed
    smtp_max_sessions_per_client: int = Field(default=20, ge=1)  # per IPv4 address or IPv6 /64; Postfix opens up to 20
    smtp_max_recipients: int = Field(default=100, ge=1)  # per message; one more gets 452
    smtp_idle_timeout_seconds: float = Field(default=300.0, gt=0)  # no command for this long: 421, closed
    smtp_data_timeout_seconds: float = Field(default=600.0, gt=0)  # 354 to the end of data: else 451, closed
    support_addresses: Annotated[list[str], NoDecode] = ["support@localhost"]
    max_message_bytes: int = Field(default=25 * MIB, gt=0)
    max_attachments: int = Field(default=100, ge=0)  # kept per inbound message; the rest stays in the raw mail
    mongodb_uri: str | None = Field(default=None, validation_alias="MONGODB_URI")
    mongodb_database: str = "helpgate"
    jwt_secret: str | None = Field(default=None, validation_alias="JWT_SECRET")
    secret_key: str | None = None  # encrypts stored IMAP passwords, signs Message-IDs and reply addresses
    jwt_issuer: str = "helpgate"
    jwt_audience: str = "helpgate-api"
    access_token_minutes: int = Field(default=15, gt=0)
    refresh_token_days: int = Field(default=14, gt=0)
    allow_signup: bool = True  # customers may create their own accounts (POST /api/auth/signup)
    login_failures_per_account: int = Field(default=5, ge=1)  # within the window, then 429 until it ends
    login_failures_per_ip: int = Field(default=20, ge=1)
    login_failure_window_minutes: int = Field(default=15, ge=1)
    password_reset_minutes: int = Field(default=30, ge=1, le=24 * 60)  # how long a mailed reset token works
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Observability: the log format, who may read /metrics, when /readyz calls a stalled outbox not ready.
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line, with ticket and message_id
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # `--log-level` overrides it
    metrics_token: SecretStr | None = None  # set: GET /metrics needs "Authorization: Bearer <token>"
    ready_outbox_max_age_seconds: float = Field(default=600.0, gt=0)  # oldest undelivered event allowed
    # The live feed, GET /api/events (server-sent events).
    events_poll_seconds: float = Field(default=1.5, gt=0, le=60)  # how soon events stored by other instances show
    events_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)  # a comment line keeps proxies open
    events_recheck_seconds: float = Field(default=30.0, gt=0, le=3600)  # the account re-read between events
    events_streams_per_user: int = Field(default=5, ge=1, le=100)  # open at once per account, per instance
    # Outbound mail. With no SMTP_HOST, mail is written as .eml files to <data dir>/outbox/ instead.
    trusted_authserv_ids: Annotated[list[str], NoDecode] = []  # empty: no `pass` verdict counts (authresults.py)
    quarantine_dmarc_fail: bool = False  # quarantine mail whose sender fails DMARC instead of flagging it
    mail_from: str | None = None  # "Name <address>"; unset: the first support address
    outbound_smtp_host: str | None = Field(default=None, validation_alias="SMTP_HOST")
    outbound_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias="SMTP_PORT"
    )  # unset: 587 for starttls, 465 for tls, 25 for none
    outbound_smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME")
    outbound_smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    outbound_smtp_security: SmtpSecurity = Field(default=SmtpSecurity.STARTTLS, validation_alias="SMTP_SECURITY")
    outbound_smtp_ca_file: Path | None = Field(
        default=None, validation_alias="SMTP_CA_FILE"
    )  # trust this CA for the relay's certificate instead of the system's
    outbound_connections: int = Field(default=4, ge=1, le=64)
    outbound_retry_seconds: float = Field(default=30.0, gt=0)  # first retry; doubles per attempt, at most 1 h
    outbound_max_attempts: int = Field(default=10, ge=1)
    outbound_lease_seconds: float = Field(default=300.0, gt=0)
    max_reply_attachment_bytes: int = Field(default=10 * MIB, ge=0)
    max_request_bytes: int = Field(default=MIB, ge=1024)  # an API request body; replies add their attachments
    # Retention (0: keep forever): `helpgate purge`, and `serve` hourly, drop older bytes, keep the records.
    raw_mail_retention_days: int = Field(default=0, ge=0)
    attachment_retention_days: int = Field(default=0, ge=0)
    workflow_history_days: int = Field(default=30, ge=0)  # finished runs and delivered events; 0: keep forever
    # AI triage. With no GEMINI_API_KEY the heuristic triage runs instead.
    gemini_api_key: SecretStr | None = Field(default=None, validation_alias="GEMINI_API_KEY")
    gemini_model: str = Field(default="gemini-2.5-flash", validation_alias="GEMINI_MODEL")
    gemini_base_url: str | None = Field(
        default=None, validation_alias="GEMINI_BASE_URL"
    )  # a proxy or a test server instead of Google's endpoint
    triage_timeout_seconds: float = Field(default=30.0, gt=0)  # per Gemini call
    triage_attempts: int = Field(default=3, ge=1, le=10)  # Gemini calls before the heuristic takes over
    # First-response targets per priority (hours): past it with no agent reply, priority goes up, admins are told.
    sla_high_hours: float = Field(default=1.0, gt=0)
    sla_medium_hours: float = Field(default=8.0, gt=0)
    sla_low_hours: float = Field(default=24.0, gt=0)
    # Workflows. With none of the INNGEST_* variables set, the local durable runner runs them in-process.
    run_workflows: bool = True  # false: this instance only stores events; another one runs the workflows
    workflow_concurrency: int = Field(default=4, ge=1, le=64)  # local runner: runs executing at once
    inngest_dev: str | None = Field(default=None, validation_alias="INNGEST_DEV")
    inngest_base_url: str | None = Field(default=None, validation_alias="INNGEST_BASE_URL")
    inngest_event_key: SecretStr | None = Field(default=None, validation_alias="INNGEST_EVENT_KEY")
    inngest_signing_key: SecretStr | None = Field(default=None, validation_alias="INNGEST_SIGNING_KEY")
    # Several instances on one store: each IMAP mailbox is polled by one of them at a time, under a lease.
    instance_id: str = Field(
        default_factory=default_instance_id, min_length=1, max_length=200, pattern=r"^[!-~]+$"
    )  # names this process in leases and /healthz; must differ between instances
    mailbox_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)  # see core/services/leases.py
    # How long work claimed by an instance that died stays claimed before another instance takes it over.
    inbound_claim_seconds: float = Field(default=120.0, ge=1.0)  # a stored message being processed
    workflow_lease_seconds: float = Field(default=300.0, ge=3.0)  # a workflow run (renewed while it executes)
    outbox_lease_seconds: float = Field(default=120.0, ge=1.0)  # an outbox event being delivered

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _DocumentedNames(settings_cls, env_settings),
            _DocumentedNames(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    @field_validator("support_addresses", "trusted_authserv_ids", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(item).strip().lower() for item in value if str(item).strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(item).strip() for item in value if str(item).strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ValueError(f"{proxy!r} is neither an IP address, a network nor *") from None
        return value

    @field_validator("support_addresses")
    @classmethod
    def _require_addresses(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one support address is needed")
        for address in value:
            if address.count("@") != 1:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @model_validator(mode="after")
    def _tls_files_in_pairs(self) -> Settings:
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            raise ValueError("set both HELPGATE_SMTP_TLS_CERT and HELPGATE_SMTP_TLS_KEY, or neither")
        return self

    @property
    def uses_inngest(self) -> bool:
        """Inngest runs the workflows when any of its variables is set; else the local runner does."""
        return bool(self.inngest_dev or self.inngest_base_url or self.inngest_signing_key)

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_uri
