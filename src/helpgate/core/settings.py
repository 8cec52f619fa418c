"""Settings read once from the environment (and a `.env` file), then passed down explicitly."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

MIB = 1024 * 1024


def _shown(text: str) -> JsonDict:
    """How docs/settings.md shows a default that the value alone would not explain (see settings_reference)."""
    return {"default_text": text}


def default_instance_id() -> str:
    """host-pid-random: unique per process, and readable in logs and /healthz."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class SmtpSecurity(StrEnum):
    """How helpgate connects to its outbound SMTP relay."""

    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (required, never optional)
    TLS = "tls"  # implicit TLS from the first byte (port 465)
    NONE = "none"  # plain text: only for a relay on the same host or network


def _secret(value: SecretStr | None) -> str:
    """A secret's value, empty when unset (compose passes an unset `${VAR:-}` as empty)."""
    return value.get_secret_value() if value is not None else ""


class TriageProvider(StrEnum):
    """Who triages new tickets and drafts replies."""

    GEMINI = "gemini"
    OPENAI = "openai"  # any OpenAI-compatible chat-completions endpoint
    HEURISTIC = "heuristic"  # the keyword tables: no AI, no drafts


OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class _DocumentedNames(PydanticBaseSettingsSource):
    """The environment (or `.env`) as docs/settings.md names it: a field with an alias only by that alias.

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
    """Every setting of helpgate, each with its description: docs/settings.md is generated from these fields
    (`uv run python -m helpgate.core.settings_reference > docs/settings.md`)."""

    model_config = SettingsConfigDict(
        env_prefix="HELPGATE_",
        env_file=".env",
        extra="ignore",
        validate_by_name=True,  # Settings(outbound_smtp_host=...) in code; the environment: see _DocumentedNames
        validate_by_alias=True,
    )

    # Where things are kept, and where the API and the SMTP listener listen.
    data_dir: Path = Field(
        default=Path(".helpgate"),
        description="embedded store, generated JWT secret",
        json_schema_extra=_shown("`./.helpgate`"),
    )
    http_host: str = Field(default="127.0.0.1", description="the address the API listens on")
    http_port: int = Field(default=8000, ge=0, le=65535, description="the port the API listens on")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the address people reach helpgate's console at (`https://support.example.com`), for links in "
        "mail (the customer's rating links); unset: `http://HELPGATE_HTTP_HOST:HELPGATE_HTTP_PORT`, which suits a "
        "trial on one machine only",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.1"],
        description="comma-separated addresses or networks (`10.0.0.0/8`, `*` for any) of reverse proxies whose"
        " `X-Forwarded-For` (and `X-Forwarded-Proto`) names the client; empty: believe none. The per-address login"
        " and sign-up limits count that client address, so set it to your proxy's when it runs on another host, or"
        " every client shares the proxy's limit",
    )
    smtp_host: str = Field(default="127.0.0.1", description="the address the SMTP listener listens on")
    smtp_port: int = Field(default=2525, ge=0, le=65535, description="the port the SMTP listener listens on")
    smtp_hostname: str = Field(
        default_factory=socket.getfqdn,
        min_length=1,
        max_length=253,
        pattern=r"^[!-~]+$",
        description="the name in the SMTP banner and EHLO reply, as Postfix's `myhostname` (was `helpgate`)",
        json_schema_extra=_shown("the machine's FQDN"),
    )
    smtp_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain: with `HELPGATE_SMTP_TLS_KEY`, the listener offers STARTTLS; set both or"
        " neither; a renewed file is used from the next connection on",
        json_schema_extra=_shown("unset: no STARTTLS"),
    )
    smtp_tls_key: Path | None = Field(
        default=None,
        description="PEM key of `HELPGATE_SMTP_TLS_CERT`; set both or neither; a renewed file is used from the next"
        " connection on",
        json_schema_extra=_shown("unset: no STARTTLS"),
    )
    smtp_max_sessions: int = Field(
        default=100,
        ge=1,
        description="SMTP sessions open at once, in all; one more is answered `421`. One listener holds at most this"
        " many times `HELPGATE_MAX_MESSAGE_BYTES` of mail being received",
    )
    smtp_max_sessions_per_client: int = Field(
        default=20,
        ge=1,
        description="SMTP sessions open at once per IPv4 address or IPv6 /64; one more is answered `421` (a Postfix"
        " in front opens up to 20)",
    )
    smtp_max_recipients: int = Field(default=100, ge=1, description="recipients per message; one more gets `452`")
    smtp_idle_timeout_seconds: float = Field(
        default=300.0, gt=0, description="an SMTP session without a command this long is closed with `421`"
    )
    smtp_data_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="a DATA that takes longer (from the `354` to the end of data) gets `451` and is not stored; the"
        " session is closed",
    )
    support_addresses: Annotated[list[str], NoDecode] = Field(
        default=["support@localhost"], description="comma-separated addresses the listener accepts mail for"
    )
    max_message_bytes: int = Field(
        default=25 * MIB,
        gt=0,
        description="largest message accepted, as sent on the wire (a 20 MB attachment is ~27 MiB)",
        json_schema_extra=_shown("`26214400` (25 MiB)"),
    )
    max_attachments: int = Field(
        default=100,
        ge=0,
        description="attachments kept per inbound message; the rest stay in the raw mail and the message is flagged"
        " `attachments_omitted`. Mail over 2 MiB or with over 50 parts is processed in a lane of its own, so it"
        " never holds up ordinary mail",
    )
    # The store, and the keys.
    mongodb_uri: str | None = Field(
        default=None,
        validation_alias="MONGODB_URI",
        description="a MongoDB connection string",
        json_schema_extra=_shown("unset: embedded store"),
    )
    mongodb_database: str = Field(default="helpgate", description="database name")
    jwt_secret: str | None = Field(
        default=None,
        validation_alias="JWT_SECRET",
        description="HS256 signing key, at least 32 bytes",
        json_schema_extra=_shown("unset: generated once into `<data dir>/jwt_secret`, with a warning"),
    )
    secret_key: str | None = Field(
        default=None,
        description="encrypts stored IMAP passwords, signs our Message-IDs and reply addresses; at least 32 bytes;"
        " keep it with your backups",
        json_schema_extra=_shown("unset: generated once into `<data dir>/secret_key`, with a warning"),
    )
    # Accounts and tokens.
    jwt_issuer: str = Field(default="helpgate", description="token `iss`")
    jwt_audience: str = Field(default="helpgate-api", description="token `aud`")
    access_token_minutes: int = Field(default=15, gt=0, description="access token lifetime")
    refresh_token_days: int = Field(default=14, gt=0, description="refresh token lifetime")
    allow_signup: bool = Field(
        default=True, description="`false`: no self-service sign-up (`POST /api/auth/signup` answers 403)"
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="failed logins within the window before the account gets 429 until the window ends",
    )
    login_failures_per_ip: int = Field(
        default=20,
        ge=1,
        description="failed logins within the window before the client address gets 429 until the window ends",
    )
    login_failure_window_minutes: int = Field(default=15, ge=1, description="the window failed logins are counted in")
    password_reset_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="how long a mailed password reset token works"
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="how long a stop waits for mail being stored and processed (and for HTTP requests still running)",
    )
    # Observability: the log format, who may read /metrics, when /readyz calls a stalled outbox not ready.
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: every log line is one JSON object, with the ticket and Message-ID it concerns (see"
        " [Metrics and logs](operations.md#metrics-and-logs))",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="`DEBUG`, `INFO`, `WARNING` or `ERROR` (`--log-level` overrides it); aiosmtpd's line per SMTP"
        " command shows only at `DEBUG`",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="when set, `GET /metrics` needs `Authorization: Bearer <token>`",
        json_schema_extra=_shown("unset: `/metrics` is open"),
    )
    ready_outbox_max_age_seconds: float = Field(
        default=600.0,
        gt=0,
        description="`/readyz` answers 503 when an outbox event waits longer than this for delivery (on an instance"
        " that runs the workflows)",
    )
    # The live feed, GET /api/events (server-sent events).
    events_poll_seconds: float = Field(
        default=1.5,
        gt=0,
        le=60,
        description="`GET /api/events`: how often the store is read for events that other instances stored",
    )
    events_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="a `: heartbeat` comment after this much silence on an event stream, to keep proxies from"
        " closing it (FastAPI adds its own `: ping` after 15 s of silence, so a longer value changes little)",
    )
    events_recheck_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="how often a quiet event stream checks again that its account is active, its role unchanged and"
        " its token valid",
    )
    events_streams_per_user: int = Field(
        default=5,
        ge=1,
        le=100,
        description="event streams one account may have open at once on one instance",
    )
    # Who sent it.
    trusted_authserv_ids: Annotated[list[str], NoDecode] = Field(  # read by inbound/authresults.py
        default=[],
        description="comma-separated authserv-ids (your receiving MTA or mailbox provider, e.g. `mx.google.com`)"
        " whose `Authentication-Results` count in full; a `fail` counts from any header (it only stops"
        " acknowledgements), a `pass` only from these, since any sender can write such a header. IMAP mailboxes"
        " can add their provider's ids (`authserv_ids`) or believe its topmost header"
        " (`trust_first_authentication_results`, for Microsoft 365): see [security.md](security.md)",
        json_schema_extra=_shown("unset: no `pass` verdict counts"),
    )
    quarantine_dmarc_fail: bool = Field(
        default=False, description="quarantine mail that failed DMARC instead of flagging its ticket"
    )
    # Outbound mail. With no SMTP_HOST, mail is written as .eml files to <data dir>/outbox/ instead.
    mail_from: str | None = Field(
        default=None,
        description="From of every mail we send, `Name <address>`; its domain names our Message-IDs",
        json_schema_extra=_shown("the first support address"),
    )
    outbound_smtp_host: str | None = Field(
        default=None,
        validation_alias="SMTP_HOST",
        description="the relay outbound mail goes through (Mailtrap: `sandbox.smtp.mailtrap.io`)",
        json_schema_extra=_shown("unset: write `.eml` files to `<data dir>/outbox/`"),
    )
    outbound_smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        validation_alias="SMTP_PORT",
        description="the relay's port (Mailtrap: `2525`)",
        json_schema_extra=_shown("`587` (starttls), `465` (tls), `25` (none)"),
    )
    outbound_smtp_username: str | None = Field(
        default=None, validation_alias="SMTP_USERNAME", description="AUTH user name at the relay"
    )
    outbound_smtp_password: SecretStr | None = Field(
        default=None, validation_alias="SMTP_PASSWORD", description="AUTH password at the relay"
    )
    outbound_smtp_security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS,
        validation_alias="SMTP_SECURITY",
        description="`starttls` (required, never opportunistic), `tls` (implicit TLS) or `none`",
    )
    outbound_smtp_ca_file: Path | None = Field(
        default=None,
        validation_alias="SMTP_CA_FILE",
        description="trust this certificate file for the relay instead (a self-signed relay)",
        json_schema_extra=_shown("unset: the system's CAs"),
    )
    outbound_connections: int = Field(default=4, ge=1, le=64, description="SMTP sessions sending in parallel")
    outbound_retry_seconds: float = Field(
        default=30.0, gt=0, description="first retry delay (doubling, at most an hour, ±25% jitter)"
    )
    outbound_max_attempts: int = Field(default=10, ge=1, description="attempts before a mail fails")
    outbound_lease_seconds: float = Field(
        default=300.0, gt=0, description="how long a stopped worker's mail stays claimed before it is recovered"
    )
    max_reply_attachment_bytes: int = Field(
        default=10 * MIB,
        ge=0,
        description="total size of a reply's attachments",
        json_schema_extra=_shown("`10485760` (10 MiB)"),
    )
    max_request_bytes: int = Field(
        default=MIB,
        ge=1024,
        description="an API request body; a larger one is refused with 413 before it is read whole (a reply may add"
        " its attachments' allowance in base64)",
        json_schema_extra=_shown("`1048576` (1 MiB)"),
    )
    # Retention: `helpgate purge`, and `serve` hourly, drop older bytes and keep the records.
    raw_mail_retention_days: int = Field(
        default=0,
        ge=0,
        description="raw mail older than this loses its bytes (see [Retention](operations.md#retention)); never mail"
        " not yet processed or quarantined",
        json_schema_extra=_shown("`0`: keep forever"),
    )
    attachment_retention_days: int = Field(
        default=0,
        ge=0,
        description="attachments older than this lose their bytes, unless newer mail or a reply waiting to be sent"
        " shares them",
        json_schema_extra=_shown("`0`: keep forever"),
    )
    workflow_history_days: int = Field(
        default=30,
        ge=0,
        description="workflow runs finished and outbox events delivered longer ago than this are deleted (see"
        " [Retention](operations.md#retention)); `0` keeps them forever. Runs still waiting (an SLA sleep) and"
        " events not yet delivered are never deleted",
    )
    # AI triage: Gemini, an OpenAI-compatible endpoint, or (with neither configured) the heuristic triage.
    triage_provider: TriageProvider | None = Field(
        default=None,
        description="`gemini`, `openai` (any OpenAI-compatible endpoint: OpenAI, Azure OpenAI, Ollama, vLLM, LM"
        " Studio) or `heuristic` (the keyword tables: no AI, no reply drafts); a provider named here but not"
        " configured stops helpgate at start-up",
        json_schema_extra=_shown(
            "unset: `gemini` when `GEMINI_API_KEY` is set, else `openai` when `OPENAI_BASE_URL` is set, else"
            " `heuristic`"
        ),
    )
    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="GEMINI_API_KEY",
        description="Gemini API key for triage",
        json_schema_extra=_shown("unset: no Gemini"),
    )
    gemini_model: str = Field(
        default="gemini-2.5-flash", validation_alias="GEMINI_MODEL", description="the model triage asks"
    )
    gemini_base_url: str | None = Field(
        default=None,
        validation_alias="GEMINI_BASE_URL",
        description="a proxy (or a test server) in front of the Gemini API",
        json_schema_extra=_shown("unset: Google's endpoint"),
    )
    openai_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        validation_alias="OPENAI_BASE_URL",
        description="an OpenAI-compatible API, up to and including its version (Ollama: `http://localhost:11434/v1`;"
        " Azure OpenAI: `https://<resource>.openai.azure.com/openai/v1`); setting it chooses this provider when"
        " there is no `GEMINI_API_KEY`",
        json_schema_extra=_shown(f"unset: `{OPENAI_DEFAULT_BASE_URL}` when `HELPGATE_TRIAGE_PROVIDER=openai`"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="OPENAI_API_KEY",
        description="the API key sent as `Authorization: Bearer`; servers on your own machine (Ollama, LM Studio)"
        " need none. A key alone does not choose OpenAI: set `HELPGATE_TRIAGE_PROVIDER=openai` too",
    )
    openai_model: str = Field(
        default="gpt-4o-mini",
        min_length=1,
        validation_alias="OPENAI_MODEL",
        description="the model triage asks (Azure OpenAI: the deployment name; Ollama: `llama3.2`, say)",
    )
    triage_timeout_seconds: float = Field(
        default=30.0, gt=0, description="how long one call to the AI (Gemini or OpenAI-compatible) may take"
    )
    triage_attempts: int = Field(
        default=3, ge=1, le=10, description="calls to the AI before the heuristic takes over (or a draft fails)"
    )
    triage_retrain_hours: float = Field(
        default=24.0,
        ge=0,
        le=720,
        description="hours between trainings of the learned triage (a classifier trained on the tickets staff"
        " reviewed; it answers where the keyword tables would, once it beats them); `0`: no learned triage",
    )
    # First-response targets per priority.
    sla_high_hours: float = Field(
        default=1.0,
        gt=0,
        description="first-response target of a high-priority ticket; past it with no agent reply, priority goes up"
        " and admins are mailed",
    )
    sla_medium_hours: float = Field(
        default=8.0,
        gt=0,
        description="first-response target of a medium-priority ticket; past it with no agent reply, priority goes"
        " up and admins are mailed",
    )
    sla_low_hours: float = Field(
        default=24.0,
        gt=0,
        description="first-response target of a low-priority ticket; past it with no agent reply, priority goes up"
        " and admins are mailed",
    )
    # Workflows. With none of the INNGEST_* variables set, the local durable runner runs them in-process.
    run_workflows: bool = Field(default=True, description="`false`: this instance stores events but runs no workflows")
    workflow_concurrency: int = Field(default=4, ge=1, le=64, description="local runner: runs executing at once")
    inngest_dev: str | None = Field(
        default=None,
        validation_alias="INNGEST_DEV",
        description="`1` (or the dev server's URL): run the workflows on the Inngest dev server, unsigned",
    )
    inngest_base_url: str | None = Field(
        default=None,
        validation_alias="INNGEST_BASE_URL",
        description="the Inngest server (dev server: `http://127.0.0.1:8288`)",
        json_schema_extra=_shown("unset: Inngest Cloud"),
    )
    inngest_event_key: SecretStr | None = Field(
        default=None,
        validation_alias="INNGEST_EVENT_KEY",
        description="Inngest Cloud event key, to send events to Inngest Cloud (with `INNGEST_SIGNING_KEY`)",
    )
    inngest_signing_key: SecretStr | None = Field(
        default=None,
        validation_alias="INNGEST_SIGNING_KEY",
        description="Inngest Cloud signing key; setting it switches the workflows to Inngest (production mode,"
        " signed requests)",
    )
    # Several instances on one store: each IMAP mailbox is polled by one of them at a time, under a lease, and work
    # claimed by an instance that died stays claimed this long before another instance takes it over.
    instance_id: str = Field(
        default_factory=default_instance_id,
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="names this instance in mailbox leases, claims and `/healthz`; must differ between instances"
        " sharing a store",
        json_schema_extra=_shown("`<hostname>-<pid>-<random>`"),
    )
    mailbox_lease_seconds: float = Field(  # see mailboxes/leases.py
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="an IMAP mailbox is polled by one instance at a time under a lease of this length, renewed every"
        " third of it; a dead instance's mailboxes are taken over after it lapses",
    )
    inbound_claim_seconds: float = Field(
        default=120.0,
        ge=1.0,
        description="how long a stored message being processed stays claimed by an instance that died",
    )
    workflow_lease_seconds: float = Field(
        default=300.0,
        ge=3.0,
        description="local runner: how long a run stays claimed by an instance that died (renewed every third of it"
        " while the run executes)",
    )
    outbox_lease_seconds: float = Field(
        default=120.0,
        ge=1.0,
        description="how long an outbox event being delivered stays claimed by an instance that died",
    )

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

    @field_validator("triage_provider", "openai_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes `${VAR:-}` as an empty string: the same as not setting it.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("triage_provider", mode="before")
    @classmethod
    def _provider_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

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

    @model_validator(mode="after")
    def _chosen_provider_configured(self) -> Settings:
        if self.triage_provider is TriageProvider.GEMINI and not _secret(self.gemini_api_key):
            raise ValueError("HELPGATE_TRIAGE_PROVIDER=gemini needs GEMINI_API_KEY")
        if self.triage_provider is TriageProvider.OPENAI and not (self.openai_base_url or _secret(self.openai_api_key)):
            raise ValueError(
                "HELPGATE_TRIAGE_PROVIDER=openai needs OPENAI_BASE_URL (an OpenAI-compatible server such as Ollama)"
                " or OPENAI_API_KEY (OpenAI itself)"
            )
        return self

    @property
    def triage_by(self) -> TriageProvider:
        """The provider chosen: HELPGATE_TRIAGE_PROVIDER, else Gemini with a key, else OpenAI-compatible with a base
        URL, else the heuristic. An OpenAI key alone never sends customer mail to OpenAI: other tools set it too."""
        if self.triage_provider is not None:
            return self.triage_provider
        if _secret(self.gemini_api_key):
            return TriageProvider.GEMINI
        if self.openai_base_url:
            return TriageProvider.OPENAI
        return TriageProvider.HEURISTIC

    @property
    def uses_inngest(self) -> bool:
        """Inngest runs the workflows when any of its variables is set; else the local runner does."""
        return bool(self.inngest_dev or self.inngest_base_url or self.inngest_signing_key)

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_uri
