"""Settings read once from the environment (and a `.env` file), then passed down explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from helpgate.core.mail.transport import SmtpSecurity

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of helpgate; the README's table lists the same names."""

    model_config = SettingsConfigDict(
        env_prefix="HELPGATE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Path(".helpgate")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    support_addresses: Annotated[list[str], NoDecode] = ["support@localhost"]
    max_message_bytes: int = Field(default=25 * MIB, gt=0)
    mongodb_uri: str | None = Field(default=None, validation_alias=AliasChoices("MONGODB_URI", "mongodb_uri"))
    mongodb_database: str = "helpgate"
    jwt_secret: str | None = Field(default=None, validation_alias=AliasChoices("JWT_SECRET", "jwt_secret"))
    secret_key: str | None = Field(
        default=None, validation_alias=AliasChoices("HELPGATE_SECRET_KEY", "secret_key")
    )  # encrypts stored IMAP passwords, signs Message-IDs and reply addresses
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
    # Outbound mail. With no SMTP_HOST, mail is written as .eml files to <data dir>/outbox/ instead.
    trusted_authserv_ids: Annotated[list[str], NoDecode] = []  # empty: trust any Authentication-Results
    quarantine_dmarc_fail: bool = False  # quarantine mail whose sender fails DMARC instead of flagging it
    mail_from: str | None = None  # "Name <address>"; unset: the first support address
    outbound_smtp_host: str | None = Field(
        default=None, validation_alias=AliasChoices("SMTP_HOST", "outbound_smtp_host")
    )
    outbound_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias=AliasChoices("SMTP_PORT", "outbound_smtp_port")
    )  # unset: 587 for starttls, 465 for tls, 25 for none
    outbound_smtp_username: str | None = Field(
        default=None, validation_alias=AliasChoices("SMTP_USERNAME", "outbound_smtp_username")
    )
    outbound_smtp_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SMTP_PASSWORD", "outbound_smtp_password")
    )
    outbound_smtp_security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS, validation_alias=AliasChoices("SMTP_SECURITY", "outbound_smtp_security")
    )
    outbound_smtp_ca_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("SMTP_CA_FILE", "outbound_smtp_ca_file")
    )  # trust this CA for the relay's certificate instead of the system's
    outbound_connections: int = Field(default=4, ge=1, le=64)
    outbound_retry_seconds: float = Field(default=30.0, gt=0)  # first retry; doubles per attempt, at most 1 h
    outbound_max_attempts: int = Field(default=10, ge=1)
    outbound_lease_seconds: float = Field(default=300.0, gt=0)
    max_reply_attachment_bytes: int = Field(default=10 * MIB, ge=0)
    # AI triage. With no GEMINI_API_KEY the heuristic triage runs instead.
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "gemini_api_key")
    )
    gemini_model: str = Field(default="gemini-2.5-flash", validation_alias=AliasChoices("GEMINI_MODEL", "gemini_model"))
    gemini_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_BASE_URL", "gemini_base_url")
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
    inngest_dev: str | None = Field(default=None, validation_alias=AliasChoices("INNGEST_DEV", "inngest_dev"))
    inngest_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("INNGEST_BASE_URL", "inngest_base_url")
    )
    inngest_event_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("INNGEST_EVENT_KEY", "inngest_event_key")
    )
    inngest_signing_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("INNGEST_SIGNING_KEY", "inngest_signing_key")
    )

    @field_validator("support_addresses", "trusted_authserv_ids", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(item).strip().lower() for item in value if str(item).strip()]
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

    @property
    def uses_inngest(self) -> bool:
        """Inngest runs the workflows when any of its variables is set; else the local runner does."""
        return bool(self.inngest_dev or self.inngest_base_url or self.inngest_signing_key)

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_uri
