"""helpgate's SMTP protocol: aiosmtpd's, with a DATA phase that accepts what Postfix accepts and no more.

aiosmtpd 1.4.6 splits DATA on CRLF only, so a bare-LF message over 1,001 octets is one "line" and gets
`500 Line too long`, as does any line over 1,000 octets. Here DATA is read up to each LF with the stream's own
small limit (a longer line arrives in pieces), `DataReader` finds the end (CRLF "." CRLF only) and keeps at
most the size limit, and `normalise` turns bare LFs into CRLF once the end is found.

Memory per connection while receiving: the data kept (at most `data_size_limit` octets, plus up to 1/8 that
a growing bytearray reserves) and the stream's read buffer (at most 2 x 1,001 octets plus one socket read of
256 KiB). At the end normalisation makes one copy (at most twice the data, for a message of bare LFs only)
before the received buffer is freed, and the copy is what the handler stores. When the session ends, however
it ends, nothing it held stays referenced (see `_handle_client`). Sessions, their idle time and their DATA time
are capped by `SessionLimits`, so a listener holds at most sessions x the size limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AnyStr, NoReturn

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from helpgate.core import metrics
from helpgate.inbound import replies
from helpgate.inbound.smtp_data import DataReader, normalise
from helpgate.inbound.smtp_sessions import Refusal, SessionLimits, SessionSlots, client_of

log = logging.getLogger(__name__)


def peer_of(session: Session | None) -> str:
    """host:port of the client, as logs and RawMessage.peer show it."""
    peer: Any = session.peer if session is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


class SupportEnvelope(Envelope):
    """aiosmtpd's envelope, plus whether the content was normalised from bare LFs."""

    def __init__(self) -> None:
        super().__init__()
        self.normalised = False


_REFUSALS = {
    Refusal.TOO_MANY_SESSIONS: replies.TOO_MANY_SESSIONS,
    Refusal.TOO_MANY_FROM_CLIENT: replies.TOO_MANY_FROM_CLIENT,
}


class SupportSmtp(SMTP):
    """One connection. Before its greeting it takes a slot in `slots` (or is answered 421 and closed); it is
    closed with 421 after `limits.idle_seconds` without a command, and its DATA may take `limits.data_seconds`
    from the 354 to the end (else 451, nothing stored, connection closed: its bytes cannot be resynchronised).
    """

    def __init__(self, handler: Any, *, slots: SessionSlots, limits: SessionLimits, **options: Any) -> None:
        super().__init__(handler, timeout=limits.idle_seconds, **options)
        self._slots = slots
        self._limits = limits

    def _create_envelope(self) -> Envelope:
        return SupportEnvelope()

    def _set_post_data_state(self) -> None:
        """A new envelope for the next transaction; the last one, and the message it held, are let go."""
        self.envelope = self._create_envelope()

    async def push(self, status: AnyStr) -> None:
        # Counts the 552 to MAIL FROM ... SIZE= as well, which aiosmtpd gives itself (no handler hook sees it).
        if status[:3] in ("552", b"552"):
            metrics.INBOUND_REJECTED.labels(reason="too_large").inc()
        await super().push(status)

    async def _handle_client(self) -> None:
        client = client_of(str(self.session.peer[0])) if self.session and self.session.peer else ""
        refusal = self._slots.admit(client)
        if refusal is not None:
            log.info(
                "smtp.refused peer=%s reason=%s open=%d from_client=%d: answered 421",
                peer_of(self.session),
                refusal,
                self._slots.open,
                self._slots.of(client),
            )
            metrics.INBOUND_REJECTED.labels(reason=refusal.value).inc()
            await self.push(_REFUSALS[refusal])
            assert self.transport is not None
            self.transport.close()
            return
        ended = False
        try:
            await super()._handle_client()
        except (asyncio.CancelledError, ConnectionResetError):
            ended = True  # the connection was lost or closed (aiosmtpd has closed its writer)
        finally:
            self._slots.release(client)
            self._set_post_data_state()  # a message being stored when the connection went is let go now
        if ended:
            # A fresh CancelledError, raised outside the handler: the one caught held the traceback of the
            # frames it went through, and with them any message they were receiving or storing, until Python's
            # cycle collector found the task; dropped here, that memory goes back at once.
            raise asyncio.CancelledError

    def _timeout_cb(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        log.info("smtp.idle_timeout peer=%s seconds=%g: answered 421", peer_of(self.session), self._limits.idle_seconds)
        metrics.INBOUND_REJECTED.labels(reason="idle_timeout").inc()
        self._writer.write(replies.IDLE_TIMEOUT.encode() + b"\r\n")
        self.transport.close()  # after the reply is written; connection_lost then ends the session

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 §4.1.1.4, with the checks aiosmtpd makes before its 354."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, SupportEnvelope)
        if not envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push(replies.DATA_SYNTAX)
            return
        await self.push(replies.START_DATA)
        # The idle timer stops while the data comes (it has its own deadline) and while it is stored.
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            await self._transaction(envelope)
        finally:
            if self.transport is not None and not self.transport.is_closing():
                self._reset_timeout()

    async def _transaction(self, envelope: SupportEnvelope) -> None:
        reader = DataReader(self.data_size_limit)
        try:
            async with asyncio.timeout(self._limits.data_seconds):
                await self._receive(reader)
        except TimeoutError:
            log.info(
                "smtp.data_timeout peer=%s seconds=%g received=%d: answered 451",
                peer_of(self.session),
                self._limits.data_seconds,
                reader.received,
            )
            metrics.INBOUND_REJECTED.labels(reason="data_timeout").inc()
            del reader  # what was received goes now, not when the connection is gone
            await self.push(replies.DATA_TIMEOUT)
            self._hang_up()
        if reader.too_large:
            log.info(
                "smtp.too_large peer=%s received=%d limit=%s", peer_of(self.session), reader.received, reader.limit
            )
            self._set_post_data_state()
            await self.push(replies.TOO_LARGE)
            return
        content, envelope.normalised = normalise(reader.take())
        envelope.content = envelope.original_content = content
        del content  # the envelope holds the only reference, and the next transaction drops it
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _receive(self, reader: DataReader) -> None:
        """Read up to the end of data and not one octet further: what follows it are the next commands."""
        while True:
            try:
                fragment = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as overrun:
                # No LF within the stream's limit: take what is buffered of this line, a piece of it.
                fragment = await self._reader.read(overrun.consumed)
            except asyncio.IncompleteReadError:
                fragment = b""
            if not fragment:
                # The client closed mid-DATA (eof_received normally cancels this task first): nothing to answer.
                self._hang_up()
            if reader.feed(fragment):
                return

    def _hang_up(self) -> NoReturn:
        """Close the connection and end the session here: bytes still buffered are never read as commands."""
        if self.transport is not None:
            self.transport.close()
        raise asyncio.CancelledError
