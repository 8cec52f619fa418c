"""The SMTP listener (aiosmtpd): accept mail for our support addresses, store it, then say 250.

The handler stays thin: RCPT checks the recipient, DATA stores the raw bytes durably and hands the
stored message to the inbound worker. Parsing never runs during the SMTP conversation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aiosmtpd.smtp import SMTP, Envelope, Session

from helpgate.core import metrics
from helpgate.inbound import raw_messages, replies
from helpgate.inbound.certificates import RenewingContext
from helpgate.inbound.smtp_protocol import SupportEnvelope, SupportSmtp, peer_of
from helpgate.inbound.smtp_sessions import SessionLimits, SessionSlots
from helpgate.mail_out import message_ids
from helpgate.models import RawMessage

log = logging.getLogger(__name__)


class SupportHandler:
    def __init__(
        self,
        *,
        support_addresses: list[str],
        on_stored: Callable[[RawMessage], None],
        claim: Callable[[], tuple[str, datetime] | None] = lambda: None,
        max_recipients: int = 100,
    ) -> None:
        self._addresses = {address.lower() for address in support_addresses}
        self._on_stored = on_stored
        self._claim = claim  # the inbound worker's claim for mail it is handed at once (InboundWorker.claim_new)
        self._max_recipients = max_recipients
        self.in_flight = 0
        self.accepted = 0
        self.drained = asyncio.Event()
        self.drained.set()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # Mail comes from MTAs and mail clients delivering to us, never from accounts that log in: no AUTH
        # (aiosmtpd would offer one that always fails once TLS is up).
        session.host_name = hostname
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            # 452, not 5xx (RFC 5321 §4.5.3.1.8): the client sends the rest in another transaction.
            log.info("smtp.rejected rcpt=%s peer=%s reason=too many recipients", address, session.peer)
            metrics.INBOUND_REJECTED.labels(reason="too_many_recipients").inc()
            return replies.TOO_MANY_RECIPIENTS
        # support+<tag>@domain (a ticket's reply address) is delivered to support@domain.
        if message_ids.base_address(address.lower()) not in self._addresses:
            log.info("smtp.rejected rcpt=%s peer=%s reason=unknown recipient", address, session.peer)
            metrics.INBOUND_REJECTED.labels(reason="unknown_recipient").inc()
            return replies.UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return replies.RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content
        normalised = isinstance(envelope, SupportEnvelope) and envelope.normalised
        if not isinstance(data, bytes) or not envelope.rcpt_tos:
            metrics.INBOUND_REJECTED.labels(reason="no_recipients").inc()
            return replies.NO_RECIPIENTS
        self.in_flight += 1
        self.drained.clear()
        try:
            raw = await raw_messages.store(
                data=data,
                source="smtp",
                mailbox=message_ids.base_address(envelope.rcpt_tos[0].lower()),
                envelope_from=envelope.mail_from or "",
                envelope_to=[rcpt.lower() for rcpt in envelope.rcpt_tos],
                peer=peer_of(session),
                normalised=normalised,
                claim=self._claim(),
            )
        except Exception:
            log.exception("smtp.store_failed peer=%s size=%d: answered 451", peer_of(session), len(data))
            metrics.INBOUND_REJECTED.labels(reason="store_failed").inc()
            return replies.STORE_FAILED
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.drained.set()
        assert raw.id is not None
        if normalised:
            metrics.INBOUND_NORMALISED.inc()
        self.accepted += 1
        self._on_stored(raw)
        return replies.OK


class SmtpListener:
    """aiosmtpd on the application's own event loop, so it shares the database client."""

    def __init__(
        self,
        handler: SupportHandler,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        hostname: str,
        tls: RenewingContext | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self._max = max_message_bytes
        self._tls = tls
        self.limits = limits or SessionLimits()
        self.slots = SessionSlots(total=self.limits.sessions, per_client=self.limits.sessions_per_client)
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, host=self.host, port=self.port)
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        log.info(
            "smtp.listening address=%s:%d hostname=%s starttls=%s",
            self.host,
            self.port,
            self.hostname,
            "yes" if self._tls else "no",
        )

    def _session(self) -> SupportSmtp:
        """The protocol for one new connection, with the TLS certificate as it is on disk now."""
        return SupportSmtp(
            self.handler,
            slots=self.slots,
            limits=self.limits,
            data_size_limit=self._max,
            hostname=self.hostname,
            ident="helpgate ESMTP",
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self._tls.current() if self._tls is not None else None,
        )

    async def stop(self, grace: float) -> None:
        """Stop accepting, let stores in flight finish (they end in 250 or 451), then close sessions."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(self.handler.drained.wait(), grace)
        except TimeoutError:
            log.warning("smtp.stop_timeout in_flight=%d: sessions cut, clients retry", self.handler.in_flight)
        server.close_clients()
        await server.wait_closed()
        log.info("smtp.stopped")
