"""Build the outbound parts from Settings, for the composition root (the Gateway): nothing is chosen at import."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from helpgate.core.settings import Settings
from helpgate.mail_out.outgoing import Handover, Outgoing, Route
from helpgate.mail_out.templates import Templates
from helpgate.mail_out.transport import DEFAULT_PORTS, FileTransport, SmtpConfig, SmtpTransport, Transport
from helpgate.mail_out.worker import OutboundWorker, RetryPolicy, Routes

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"


def make_transport(settings: Settings) -> Transport:
    """SMTP when SMTP_HOST is set (Mailtrap, any relay), else .eml files in `<data dir>/outbox/`."""
    if not settings.outbound_smtp_host:
        outbox = settings.data_dir / OUTBOX_DIR
        log.warning("mail.file_transport path=%s: no SMTP_HOST, mail is written there, not sent", outbox)
        return FileTransport(outbox)
    security = settings.outbound_smtp_security
    password = settings.outbound_smtp_password
    return SmtpTransport(
        SmtpConfig(
            host=settings.outbound_smtp_host,
            port=settings.outbound_smtp_port or DEFAULT_PORTS[security],
            security=security,
            username=settings.outbound_smtp_username,
            password=password.get_secret_value() if password is not None else None,
            ca_file=settings.outbound_smtp_ca_file,
        )
    )


def make_outgoing(
    settings: Settings,
    *,
    secret: str,
    wake: Callable[[], None],
    handover: Callable[[], Handover | None] | None = None,
    route: Route | None = None,
) -> Outgoing:
    """`route`: which mailbox sends which mail (mailboxes/senders.py); without it the global relay sends all."""
    address, name = Outgoing.parse_from(settings.mail_from or settings.support_addresses[0])
    extra: dict[str, Any] = {}
    if handover is not None:
        extra["handover"] = handover
    if route is not None:
        extra["route"] = route
    return Outgoing(
        from_address=address,
        from_name=name,
        secret=secret,
        templates=Templates(settings.data_dir),
        max_attachment_bytes=settings.max_reply_attachment_bytes,
        public_url=(settings.public_url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/"),
        wake=wake,
        **extra,
    )


def make_worker(
    settings: Settings, transport: Transport, *, loop_marker: str, routes: Routes | None = None
) -> OutboundWorker:
    """`routes`: the transports of mailboxes that send their own mail (mailboxes/senders.py)."""
    return OutboundWorker(
        transport=transport,
        loop_marker=loop_marker,
        routes=routes,
        connections=settings.outbound_connections,
        retry=RetryPolicy(base_seconds=settings.outbound_retry_seconds, max_attempts=settings.outbound_max_attempts),
        lease_seconds=settings.outbound_lease_seconds,
    )
