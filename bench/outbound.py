"""Outbound delivery rate: helpgate's outbound worker against a bare aiosmtplib send loop, same sink, same run.

Both send to the same local Mailtrap-like sink (tests/mail_capture.py: aiosmtpd with STARTTLS and AUTH
required, a self-signed certificate) on 127.0.0.1, the same composed messages:

1. bare loop: one aiosmtplib connection (STARTTLS + AUTH once), ``sendmail`` the N messages one by one;
2. bare ``aiosmtplib.send`` per message (a new connection, TLS handshake and AUTH each time), as naive code does;
3. helpgate: N agent replies queued through ``replies.reply`` on the embedded store (reported as queue rate),
   then the outbound worker delivers them, from queued to recorded as sent: batch claims, checks, compose,
   STARTTLS/AUTH sessions kept open, the journal write before DATA and the `sent` marks, both in group commits
   (reported as delivery rate, the figure compared; a mail counts once its `sent` mark is stored).

Prints mails/s for each, the ratio of helpgate's delivery rate to the bare loop's (target >= 0.5), the store
commands per mail (writes and reads), the CPU each side spends per mail (this process, and the embedded store's
process), and the load average the run had (other processes share the 2 cores). On the embedded store the store's
CPU sets the rate; the ratio of this process's CPU per mail (bare / helpgate) is what the rate ratio would be if
the store cost nothing beyond its client's work, which is the case to expect on MongoDB: a projection, printed
as one, not a measurement.

    uv run python -m bench.outbound [--mails 500] [--connections 4] [--store-uri mongodb://...]

With ``--store-uri`` the queue lives in that MongoDB (a database named ``helpgate_bench_outbound_<random>``,
dropped at the end) instead of a fresh embedded store, to measure the worker on a production store.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import secrets
import ssl
import tempfile
import time
from pathlib import Path

import aiosmtplib
from pymongo import monitoring
from tests.mail_capture import PASSWORD, USERNAME, CaptureServer, make_certificate

from helpgate.accounts import users
from helpgate.core import db
from helpgate.mail_out import compose
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import Templates
from helpgate.mail_out.transport import SmtpConfig, SmtpTransport
from helpgate.mail_out.worker import OutboundWorker
from helpgate.models import ALL_MODELS, DeliveryStatus, Direction, OutboundMail, Role
from helpgate.tickets import replies, tickets
from helpgate.tickets.tickets import NewMessage

TARGET_RATIO = 0.5
PROGRESS_SECONDS = 3.0
SECRET = "bench-secret-key-of-at-least-32-bytes!!"  # noqa: S105 - a throwaway key for a temp store


class _Commands(monitoring.CommandListener):
    """Counts the store commands helpgate sends (a bulk write or update_many of N mails is one command)."""

    WRITES = frozenset({"insert", "update", "delete", "findAndModify"})

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts["write" if event.command_name in self.WRITES else "read"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def _store_cpu(pid: int | None) -> float:
    """CPU seconds the embedded store's process has used (user + system), 0 when it is not ours to read."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Cpu:
    """CPU milliseconds per mail spent by this process (client and sink alike) and by the store, over a phase."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.own = time.process_time()
        self.store = _store_cpu(pid)

    def per_mail(self, mails: int) -> tuple[float, float]:
        return (
            (time.process_time() - self.own) * 1000 / mails,
            (_store_cpu(self.pid) - self.store) * 1000 / mails,
        )


def _progress(label: str, done: int, total: int, started: float, last: list[float]) -> None:
    now = time.perf_counter()
    if now - last[0] >= PROGRESS_SECONDS:
        last[0] = now
        print(f"  {label}: {done}/{total} ({done / (now - started):.0f}/s)", flush=True)


async def _bare_loop(sink: CaptureServer, messages: list[tuple[bytes, list[str]]], tls: ssl.SSLContext) -> float:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=sink.port, username=USERNAME, password=PASSWORD, start_tls=True, tls_context=tls
    )
    started, last = time.perf_counter(), [time.perf_counter()]
    await client.connect()
    for index, (data, recipients) in enumerate(messages, start=1):
        await client.sendmail("help@acme.test", recipients, data)
        _progress("bare loop", index, len(messages), started, last)
    await client.quit()
    return time.perf_counter() - started


async def _bare_send(sink: CaptureServer, messages: list[tuple[bytes, list[str]]], tls: ssl.SSLContext) -> float:
    started, last = time.perf_counter(), [time.perf_counter()]
    for index, (data, recipients) in enumerate(messages, start=1):
        await aiosmtplib.send(
            data,
            sender="help@acme.test",
            recipients=recipients,
            hostname="127.0.0.1",
            port=sink.port,
            username=USERNAME,
            password=PASSWORD,
            start_tls=True,
            tls_context=tls,
        )
        _progress("bare send", index, len(messages), started, last)
    return time.perf_counter() - started


async def _queue(count: int, outgoing: Outgoing) -> tuple[list[OutboundMail], float]:
    agent = await users.create(actor=None, email="agent@acme.test", role=Role.AGENT, password="bench-password")  # noqa: S106
    customer = await users.get_or_create_customer(email="jane@example.org", name="Jane")
    first = NewMessage(
        dedupe_key="bench first", direction=Direction.INBOUND, from_email=customer.email, message_id="first@example.org"
    )
    ticket = await tickets.open_ticket(requester=customer, subject="Printer on fire", mailbox=None, first=first)
    queued: list[OutboundMail] = []
    started, last = time.perf_counter(), [time.perf_counter()]
    for index in range(count):
        _message, mail = await replies.reply(
            author=agent, number=ticket.number, text=f"Reply {index}: unplug it.\n\nRegards", outgoing=outgoing
        )
        queued.append(mail)
        _progress("queue", index + 1, count, started, last)
    return queued, time.perf_counter() - started


async def _deliver(sink: CaptureServer, worker: OutboundWorker, count: int, before: int, commands: _Commands) -> float:
    commands.counts.clear()
    started, last = time.perf_counter(), [time.perf_counter()]
    await worker.start()
    worker.wake()
    while worker.sent < count:
        await asyncio.sleep(0.02)  # often enough to time the last mail, rarely enough to cost little CPU
        _progress("helpgate", worker.sent, count, started, last)
        if time.perf_counter() - started > 600:
            raise SystemExit("helpgate did not deliver everything in 10 minutes")
    elapsed = time.perf_counter() - started
    print(
        f"  store commands per mail while delivering: {commands.counts['write'] / count:.2f} writes, "
        f"{commands.counts['read'] / count:.2f} reads",
        flush=True,
    )
    await worker.stop(10)
    if len(sink.received) - before != count:
        raise SystemExit(f"the sink got {len(sink.received) - before} mails from helpgate, expected {count}")
    unsent = await OutboundMail.find({"status": {"$ne": str(DeliveryStatus.SENT)}}).count()
    if unsent:
        raise SystemExit(f"{unsent} mails are not recorded as sent")
    return elapsed


async def run(mails: int, connections: int, store_uri: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-outbound-") as directory:
        root = Path(directory)
        store = db.EmbeddedStore(root / "data")
        commands = _Commands()
        monitoring.register(commands)  # for the clients made from here on
        client = db.make_client(store_uri or await store.start())
        database = f"helpgate_bench_outbound_{secrets.token_hex(4)}" if store_uri else "helpgate"
        print(f"store: {'MongoDB at ' + store_uri if store_uri else 'embedded (mongoeco on SQLite)'}", flush=True)
        sink = CaptureServer(make_certificate(root)).start()
        try:
            await db.init_models(client, database, ALL_MODELS)
            tls = ssl.create_default_context(cafile=str(sink.certificate.cert))
            outgoing = Outgoing(
                from_address="help@acme.test", from_name="Acme Support", secret=SECRET, templates=Templates(root)
            )
            print(f"queueing {mails} agent replies ...", flush=True)
            queued, queue_seconds = await _queue(mails, outgoing)
            messages = [
                (compose.build(mail, [], loop_marker="help@acme.test").as_bytes(), mail.recipients) for mail in queued
            ]
            size = sum(len(data) for data, _ in messages) / len(messages)
            print(f"bare aiosmtplib loop, one connection, {mails} mails of ~{size:.0f} bytes ...", flush=True)
            cpu = _Cpu(store.pid)
            bare_seconds = await _bare_loop(sink, messages, tls)
            bare_cpu = cpu.per_mail(mails)
            print("bare aiosmtplib.send, a connection per mail ...", flush=True)
            send_seconds = await _bare_send(sink, messages, tls)
            transport = SmtpTransport(
                SmtpConfig(
                    host="127.0.0.1",
                    port=sink.port,
                    username=USERNAME,
                    password=PASSWORD,
                    ca_file=sink.certificate.cert,
                )
            )
            worker = OutboundWorker(transport=transport, loop_marker="help@acme.test", connections=connections)
            print(f"helpgate outbound worker, {connections} connections ...", flush=True)
            cpu = _Cpu(store.pid)
            deliver_seconds = await _deliver(sink, worker, mails, before=len(sink.received), commands=commands)
            ours_cpu = cpu.per_mail(mails)
        finally:
            sink.stop()
            if store_uri:
                await client.drop_database(database)
            await client.close()
            await store.stop()
    bare, naive, ours = mails / bare_seconds, mails / send_seconds, mails / deliver_seconds
    print()
    print(f"queue (replies.reply):                      {mails / queue_seconds:8.1f} replies/s")
    print(f"bare aiosmtplib loop, one connection:       {bare:8.1f} mails/s")
    print(f"bare aiosmtplib.send, connection per mail:  {naive:8.1f} mails/s")
    print(f"helpgate worker ({connections} connections):           {ours:8.1f} mails/s")
    print(f"ratio helpgate / bare loop:                 {ours / bare:8.2f}  (target >= {TARGET_RATIO})")
    print(f"ratio helpgate / bare send per mail:        {ours / naive:8.2f}")
    print(f"CPU per mail, this process (sender + sink):  bare loop {bare_cpu[0]:.2f} ms, helpgate {ours_cpu[0]:.2f} ms")
    if store_uri is None:
        print(f"CPU per mail, embedded store process:       helpgate {ours_cpu[1]:.2f} ms")
        print(
            f"ratio of this process's CPU per mail:       {bare_cpu[0] / ours_cpu[0]:8.2f}  (bare / helpgate: the "
            "ratio to expect where the store costs nothing but its client, as on MongoDB; a projection)"
        )
    print(f"load average (1, 5, 15 min) at the end:     {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--store-uri", help="a MongoDB to queue the mail in (default: a fresh embedded store)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.mails, args.connections, args.store_uri))


if __name__ == "__main__":
    main()
