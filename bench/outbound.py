"""Outbound delivery rate: helpgate's outbound worker against a bare aiosmtplib send loop, same sink, same run.

Both send to the same local Mailtrap-like sink (tests/mail_capture.py: aiosmtpd with STARTTLS and AUTH
required, a self-signed certificate) on 127.0.0.1, the same composed messages:

1. bare loop: one aiosmtplib connection (STARTTLS + AUTH once), ``sendmail`` the N messages one by one;
2. bare ``aiosmtplib.send`` per message (a new connection, TLS handshake and AUTH each time), as naive code does;
3. helpgate: N agent replies queued through ``replies.reply`` on the embedded store (reported as queue rate),
   then the outbound worker delivers them: claim, checks, compose, STARTTLS/AUTH session reuse,
   a store write before DATA and after the 250 (reported as delivery rate, the figure compared).

Prints mails/s for each and the ratio of helpgate's delivery rate to the bare loop's (target >= 0.5).

    uv run python -m bench.outbound [--mails 500] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import tempfile
import time
from pathlib import Path

import aiosmtplib
from tests.mail_capture import PASSWORD, USERNAME, CaptureServer, make_certificate

from helpgate.core import db
from helpgate.core.mail import compose
from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import Templates
from helpgate.core.mail.transport import SmtpConfig, SmtpTransport
from helpgate.core.mail.worker import OutboundWorker
from helpgate.core.models import ALL_MODELS, Direction, OutboundMail, Role
from helpgate.core.services import replies, tickets, users
from helpgate.core.services.tickets import NewMessage

TARGET_RATIO = 0.5
PROGRESS_SECONDS = 3.0
SECRET = "bench-secret-key-of-at-least-32-bytes!!"  # noqa: S105 - a throwaway key for a temp store


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
    agent = await users.create(email="agent@acme.test", role=Role.AGENT, password="bench-password")  # noqa: S106
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


async def _deliver(sink: CaptureServer, worker: OutboundWorker, count: int, before: int) -> float:
    started, last = time.perf_counter(), [time.perf_counter()]
    await worker.start()
    worker.wake()
    while worker.sent < count:
        await asyncio.sleep(0.005)
        _progress("helpgate", worker.sent, count, started, last)
        if time.perf_counter() - started > 600:
            raise SystemExit("helpgate did not deliver everything in 10 minutes")
    elapsed = time.perf_counter() - started
    await worker.stop(10)
    if len(sink.received) - before != count:
        raise SystemExit(f"the sink got {len(sink.received) - before} mails from helpgate, expected {count}")
    return elapsed


async def run(mails: int, connections: int) -> None:
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-outbound-") as directory:
        root = Path(directory)
        store = db.EmbeddedStore(root / "data")
        client = db.make_client(await store.start())
        sink = CaptureServer(make_certificate(root)).start()
        try:
            await db.init_models(client, "helpgate", ALL_MODELS)
            tls = ssl.create_default_context(cafile=str(sink.certificate.cert))
            outgoing = Outgoing(
                from_address="help@acme.test", from_name="Acme Support", secret=SECRET, templates=Templates(root)
            )
            print(f"queueing {mails} agent replies (embedded store) ...", flush=True)
            queued, queue_seconds = await _queue(mails, outgoing)
            messages = [
                (compose.build(mail, [], loop_marker="help@acme.test").as_bytes(), mail.recipients) for mail in queued
            ]
            size = sum(len(data) for data, _ in messages) / len(messages)
            print(f"bare aiosmtplib loop, one connection, {mails} mails of ~{size:.0f} bytes ...", flush=True)
            bare_seconds = await _bare_loop(sink, messages, tls)
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
            deliver_seconds = await _deliver(sink, worker, mails, before=len(sink.received))
        finally:
            sink.stop()
            await client.close()
            await store.stop()
    bare, naive, ours = mails / bare_seconds, mails / send_seconds, mails / deliver_seconds
    print()
    print(f"queue (replies.reply, embedded store):      {mails / queue_seconds:8.1f} replies/s")
    print(f"bare aiosmtplib loop, one connection:       {bare:8.1f} mails/s")
    print(f"bare aiosmtplib.send, connection per mail:  {naive:8.1f} mails/s")
    print(f"helpgate worker ({connections} connections):           {ours:8.1f} mails/s")
    print(f"ratio helpgate / bare loop:                 {ours / bare:8.2f}  (target >= {TARGET_RATIO})")
    print(f"ratio helpgate / bare send per mail:        {ours / naive:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.mails, args.connections))


if __name__ == "__main__":
    main()
