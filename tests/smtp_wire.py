"""An SMTP client that writes exactly the bytes it is given, for tests of what the listener does with them.

smtplib rewrites the line endings of str and dot-stuffs for us; these tests need the raw bytes on the wire
(bare LF, a lone CR, a smuggled end of data), so they talk over an asyncio stream and read each reply whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

REPLY_SECONDS = 15.0  # a reply that takes longer is a failure, never a wait that decides the outcome


@dataclass(frozen=True)
class Reply:
    code: int
    text: bytes  # every line of the reply, codes included, joined by LF

    def __str__(self) -> str:
        return self.text.decode(errors="replace")


class WireClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: Reply) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = banner

    @classmethod
    async def connect(cls, port: int, *, source: str = "127.0.0.1") -> WireClient:
        """Connect from `source` (any 127/8 address reaches the listener on 127.0.0.1) and read the banner."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        client = cls(reader, writer, Reply(0, b""))
        client.banner = await client.reply()
        return client

    async def reply(self) -> Reply:
        """The next reply, all of its lines; code 0 when the server closed the connection instead."""
        lines: list[bytes] = []
        async with asyncio.timeout(REPLY_SECONDS):
            while True:
                line = await self.reader.readline()
                if not line:
                    return Reply(0, b"\n".join(lines))
                lines.append(line.rstrip(b"\r\n"))
                if line[3:4] != b"-":
                    return Reply(int(line[:3]), b"\n".join(lines))

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: bytes) -> Reply:
        await self.write(line + b"\r\n")
        return await self.reply()

    async def envelope(self, *, sender: bytes = b"jane@example.org", recipients: tuple[bytes, ...] = ()) -> None:
        """EHLO, MAIL and RCPT, each of which must be accepted."""
        for line in (
            b"EHLO client.example",
            b"MAIL FROM:<" + sender + b">",
            *(b"RCPT TO:<" + rcpt + b">" for rcpt in recipients or (b"support@localhost",)),
        ):
            reply = await self.command(line)
            assert reply.code == 250, (line, str(reply))

    async def data(self, payload: bytes) -> Reply:
        """DATA, then `payload` exactly as given (its end-of-data line included), then the reply to it."""
        reply = await self.command(b"DATA")
        assert reply.code == 354, str(reply)
        await self.write(payload)
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def deliver(port: int, payload: bytes, *, source: str = "127.0.0.1") -> Reply:
    """One transaction on a new connection: the reply to `payload`, sent as raw DATA bytes."""
    client = await WireClient.connect(port, source=source)
    try:
        await client.envelope()
        return await client.data(payload)
    finally:
        await client.close()
