"""helpgate's SMTP protocol: aiosmtpd's, with a DATA phase that accepts what Postfix accepts and no more.

aiosmtpd 1.4.6 splits DATA on CRLF only, so a bare-LF message over 1,001 octets is one "line" and gets
`500 Line too long`, as does any line over 1,000 octets. Here DATA is read up to each LF with the stream's own
small limit (a longer line arrives in pieces), `DataReader` finds the end (CRLF "." CRLF only) and keeps at
most the size limit, and `normalise` turns bare LFs into CRLF once the end is found.

Memory per connection while receiving: the data kept (at most `data_size_limit` octets, plus up to 1/8 that
a growing bytearray reserves) and the stream's read buffer (at most 2 x 1,001 octets plus one socket read of
256 KiB). At the end normalisation makes one copy (at most twice the data, for a message of bare LFs only)
before the received buffer is freed, and the copy is what the handler stores.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from helpgate.core import metrics
from helpgate.inbound import replies
from helpgate.inbound.smtp_data import DataReader, normalise

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


class SupportSmtp(SMTP):
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
        reader = DataReader(self.data_size_limit)
        await self._receive(reader)
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
                raise asyncio.CancelledError
            if reader.feed(fragment):
                return
