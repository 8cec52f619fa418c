"""Flood of the SMTP listener: what sessions that hold memory, recipients and connections cost `helpgate serve`.

A real ``helpgate serve`` child process (embedded store, temp data dir, free ports on 127.0.0.1, see
``bench/ingest.py``); the clients run here, on asyncio, from 127.0.0.1 and other 127/8 source addresses (all of
127/8 reaches a listener on 127.0.0.1 through lo). The serving process's memory is read from
``/proc/<pid>/status`` (VmRSS now, VmHWM the peak) before, during and after each scenario:

1. **DATA without its end**: ``--sessions`` sessions (spread over 4 source addresses, so the per-client cap does
   not refuse them) each send ``--megabytes`` MiB of DATA and never the final dot; RSS while they hold it, then
   after they close, once RSS has stopped falling.
2. **Recipients**: one session sends ``--rcpts`` RCPT TO for a support address: how many are accepted (250),
   how many refused (452), and whether the session still delivers a mail afterwards.
3. **Idle connections**: ``--idle`` connections from one address that send nothing: how many are greeted (220),
   how many refused (421), and whether a mail from another address still gets through; then as many from 100
   other addresses (the total cap), and a mail from yet another address.

Every count and wait is bounded (``--timeout`` in all). Nothing is asserted: it prints figures for docs/smtp.md.

Run::

    uv run python -m bench.smtp_flood
    uv run python -m bench.smtp_flood --sessions 4 --megabytes 8 --rcpts 1000 --idle 200   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.ingest import HOST, Helpgate, say

MIB = 1024 * 1024
GREETING_SECONDS = 15.0
SETTLE_SECONDS = 2.0  # RSS counts as settled once it has not fallen for this long
LINE = b"x" * 998 + b"\r\n"  # RFC 5321's longest line: few reads per megabyte, so the server's CPU is not the bench


def rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def settled_rss(pid: int, limit: float = 30.0) -> tuple[float, float]:
    """RSS once it has stopped falling (freed sessions are released asynchronously); (MiB, seconds waited)."""
    started = time.monotonic()
    lowest, lowest_at = rss(pid)[0], started
    while time.monotonic() - lowest_at < SETTLE_SECONDS and time.monotonic() - started < limit:
        await asyncio.sleep(0.2)
        now = rss(pid)[0]
        if now < lowest - 0.5:
            lowest, lowest_at = now, time.monotonic()
    return rss(pid)[0], time.monotonic() - started


class Client:
    """A bare SMTP client over an asyncio stream (writes exactly what it is given)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, source: str) -> tuple[Client, int]:
        reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
        client = cls(reader, writer)
        return client, await client.reply()

    async def reply(self) -> int:
        """The reply's code; 0 when the connection closed instead."""
        while True:
            line = await self.reader.readline()
            if not line:
                return 0
            if line[3:4] != b"-":
                return int(line[:3])

    async def command(self, line: bytes) -> int:
        self.writer.write(line + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def envelope(self) -> bool:
        codes = [await self.command(line) for line in (b"EHLO bench", b"MAIL FROM:<flood@example.org>")]
        codes.append(await self.command(b"RCPT TO:<support@localhost>"))
        return codes == [250, 250, 250]

    def close(self) -> None:
        self.writer.close()


async def data_without_end(port: int, source: str, megabytes: int) -> Client | None:
    client, greeting = await Client.connect(port, source)
    if greeting != 220 or not await client.envelope() or await client.command(b"DATA") != 354:
        client.close()
        return None
    block = LINE * (MIB // len(LINE))
    for _ in range(megabytes):
        client.writer.write(block)
        await client.writer.drain()
    return client


async def flood_data(serve: Helpgate, pid: int, sessions: int, megabytes: int) -> None:
    say(f"\n1. {sessions} sessions x {megabytes} MiB of DATA without the final dot (4 source addresses)")
    before = rss(pid)[0]
    started = time.monotonic()
    clients = await asyncio.gather(
        *(data_without_end(serve.smtp_port, f"127.0.0.{11 + n % 4}", megabytes) for n in range(sessions))
    )
    held = [client for client in clients if client is not None]
    # The server may still be reading the last bytes sent: wait until RSS stops growing.
    during, _ = await settled_rss(pid)
    say(f"   sent {len(held)} x {megabytes} MiB in {time.monotonic() - started:.1f} s")
    say(f"   RSS before {before:.0f} MiB, while held {during:.0f} MiB ({during - before:+.0f})")
    for client in held:
        client.close()
    after, waited = await settled_rss(pid)
    say(f"   RSS after they closed {after:.0f} MiB ({after - before:+.0f} on before, settled in {waited:.1f} s)")


async def flood_recipients(serve: Helpgate, pid: int, count: int) -> None:
    say(f"\n2. one session, {count:,} RCPT TO")
    client, _ = await Client.connect(serve.smtp_port, "127.0.0.21")
    try:
        await client.command(b"EHLO bench")
        await client.command(b"MAIL FROM:<flood@example.org>")
        codes: dict[int, int] = {}
        for n in range(count):
            code = await client.command(b"RCPT TO:<support+%d@localhost>" % n)
            codes[code] = codes.get(code, 0) + 1
            if code in (0, 421):
                break
        say(f"   replies: {', '.join(f'{code}: {number:,}' for code, number in sorted(codes.items()))}")
        if await client.command(b"DATA") == 354:
            client.writer.write(b"Subject: after the flood\r\n\r\nstill here\r\n.\r\n")
            say(f"   the mail that follows: {await client.reply()}")
    finally:
        client.close()
    say(f"   RSS {rss(pid)[0]:.0f} MiB")


async def idle_connection(port: int, source: str, gate: asyncio.Semaphore) -> tuple[Client | None, int]:
    """A connection that sends nothing, and the code it was greeted with (-1: no connection; -2: no greeting
    within GREETING_SECONDS). `gate` spaces the attempts out: a burst larger than the listen backlog loses SYNs."""
    async with gate:
        try:
            async with asyncio.timeout(GREETING_SECONDS):
                return await Client.connect(port, source)
        except OSError:
            return None, -1
        except TimeoutError:
            return None, -2


async def deliver_from(port: int, source: str) -> str:
    """One mail from `source`: its greeting and its reply to DATA (0: none, the connection was closed)."""
    async with asyncio.timeout(GREETING_SECONDS):
        client, greeting = await Client.connect(port, source)
        delivered = 0
        if greeting == 220 and await client.envelope() and await client.command(b"DATA") == 354:
            client.writer.write(b"Subject: from another client\r\n\r\nhello\r\n.\r\n")
            delivered = await client.reply()
        client.close()
    return f"greeting {greeting}, DATA {delivered}"


def tally(results: Sequence[tuple[Client | None, int]]) -> str:
    codes: dict[int, int] = {}
    for _, code in results:
        codes[code] = codes.get(code, 0) + 1
    return ", ".join(f"{code}: {number}" for code, number in sorted(codes.items()))


async def flood_idle(serve: Helpgate, pid: int, count: int) -> None:
    say(f"\n3. {count} idle connections from 127.0.0.31, then {count} from the 100 addresses 127.0.0.32-127.0.0.131")
    before = rss(pid)[0]
    gate = asyncio.Semaphore(50)
    one = await asyncio.gather(*(idle_connection(serve.smtp_port, "127.0.0.31", gate) for _ in range(count)))
    say(f"   from one address: {tally(one)}")
    say(f"   meanwhile a mail from 127.0.0.200: {await deliver_from(serve.smtp_port, '127.0.0.200')}")
    many = await asyncio.gather(
        *(idle_connection(serve.smtp_port, f"127.0.0.{32 + n % 100}", gate) for n in range(count))
    )
    say(f"   from 100 addresses: {tally(many)}")
    say(f"   RSS with them open {rss(pid)[0]:.0f} MiB ({rss(pid)[0] - before:+.0f})")
    say(f"   meanwhile a mail from 127.0.0.201: {await deliver_from(serve.smtp_port, '127.0.0.201')}")
    for opened, _ in (*one, *many):
        if opened is not None:
            opened.close()
    after, waited = await settled_rss(pid)
    say(f"   RSS after they closed {after:.0f} MiB (settled in {waited:.1f} s)")


async def run(serve: Helpgate, args: argparse.Namespace) -> None:
    assert serve.process is not None
    pid = serve.process.pid
    say(f"helpgate serve pid {pid}, SMTP {HOST}:{serve.smtp_port}")
    client, _ = await Client.connect(serve.smtp_port, "127.0.0.1")  # warm-up: one mail through
    if await client.envelope() and await client.command(b"DATA") == 354:
        client.writer.write(b"Subject: warm-up\r\n\r\nhello\r\n.\r\n")
        await client.reply()
    client.close()
    start, _ = await settled_rss(pid)
    say(f"RSS at start {start:.0f} MiB")
    await flood_data(serve, pid, args.sessions, args.megabytes)
    await flood_recipients(serve, pid, args.rcpts)
    await flood_idle(serve, pid, args.idle)
    now, peak = rss(pid)
    say(f"\nRSS at the end {now:.0f} MiB (start {start:.0f}), peak {peak:.0f} MiB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--megabytes", type=int, default=24)
    parser.add_argument("--rcpts", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=800)
    parser.add_argument("--timeout", type=float, default=600.0, help="the whole run, seconds")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="helpgate-smtp-flood-") as directory:
        serve = Helpgate(Path(directory), args.log_level)
        serve.start()
        try:
            asyncio.run(asyncio.wait_for(run(serve, args), args.timeout))
        finally:
            serve.stop()
            with contextlib.suppress(OSError):
                say(f"\nlog: {serve.log_tail(5)}")


if __name__ == "__main__":
    main()
