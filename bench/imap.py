"""IMAP import rate: helpgate's poller against a bare aioimaplib fetch loop, on the same Dovecot, same run.

Puts N messages (default 2,000) in a real Dovecot (Debian dovecot-imapd, as the tests use it), then
1. a bare loop fetches each with ``UID FETCH n BODY.PEEK[]`` over one connection and throws it away;
2. helpgate's poller imports them: fetch, store the raw bytes durably (embedded store), mark \\Seen.
Reports messages/s for both and the ratio. Ticket processing runs after import and is reported apart.

    uv run python -m bench.imap [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aioimaplib import aioimaplib
from tests.dovecot import PASSWORD, Dovecot
from tests.mail import make_mail

from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mailboxes import mailboxes
from helpgate.models import ImapSecurity, RawMessage, RawStatus


def _messages(count: int) -> list[bytes]:
    body = "A printer question with enough text to look like real mail. " * 60  # ~3.6 KB
    return [
        bytes(make_mail(subject=f"Bench {n}", body=body, message_id=f"<bench{n}@example.org>")) for n in range(count)
    ]


async def bare_fetch(dovecot: Dovecot, count: int) -> float:
    client = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.imap_port, timeout=30)
    await client.wait_hello_from_server()
    await client.login("test", PASSWORD)
    await client.select("INBOX")
    start = time.perf_counter()
    for uid in range(1, count + 1):
        response = await client.uid("FETCH", str(uid), "(UID FLAGS BODY.PEEK[])")
        assert any(isinstance(line, bytearray) for line in response.lines)
    elapsed = time.perf_counter() - start
    await client.logout()
    return count / elapsed


async def helpgate_import(dovecot: Dovecot, count: int, data_dir: Path) -> tuple[float, float]:
    settings = Settings(_env_file=None, data_dir=data_dir, http_port=0, smtp_port=0)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await mailboxes.create(
            actor=None,
            box=gateway.box, address="support@localhost", imap_host="127.0.0.1", imap_port=dovecot.imap_port,
            imap_security=ImapSecurity.NONE, username="test", password=PASSWORD,
        )  # fmt: skip
        start = time.perf_counter()
        assert gateway.imap is not None
        await gateway.imap.reconcile()
        [poller] = gateway.imap.pollers
        last = -1
        while poller.mailbox.state.imported < count:
            await asyncio.sleep(0.5)
            if poller.mailbox.state.imported // 200 != last // 200:
                last = poller.mailbox.state.imported
                print(f"  imported {last}/{count}", file=sys.stderr, flush=True)
        imported = time.perf_counter() - start
        while await RawMessage.find({"status": RawStatus.PROCESSED}).count() < count:
            await asyncio.sleep(1)
            done = await RawMessage.find({"status": RawStatus.PROCESSED}).count()
            print(f"  processed into tickets {done}/{count}", file=sys.stderr, flush=True)
        processed = time.perf_counter() - start
    finally:
        await gateway.stop()
    return count / imported, count / processed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    dovecot = Dovecot()
    dovecot.start()
    try:
        print(f"appending {args.messages} messages to Dovecot ...", file=sys.stderr, flush=True)
        await asyncio.to_thread(dovecot.append, _messages(args.messages))
        print("bare aioimaplib fetch loop ...", file=sys.stderr, flush=True)
        bare = await bare_fetch(dovecot, args.messages)
        print("helpgate import ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="helpgate-bench-imap-") as directory:
            imported, processed = await helpgate_import(dovecot, args.messages, Path(directory))
    finally:
        dovecot.close()
    print(f"messages: {args.messages}")
    print(f"bare aioimaplib fetch:            {bare:8.1f} msg/s")
    print(f"helpgate import (stored, \\Seen):  {imported:8.1f} msg/s   ratio {imported / bare:.2f}")
    print(f"helpgate import + tickets made:   {processed:8.1f} msg/s")


if __name__ == "__main__":
    asyncio.run(main())
