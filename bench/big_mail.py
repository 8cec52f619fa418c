"""One big mail end to end: a 20 MiB attachment (~27 MiB on the wire) sent over SMTP, stored, parsed and kept.

A whole gateway runs in this process on the embedded store (its child process, as `helpgate serve` runs it). The
bench sends the mail with `smtplib`, then reports how long the 250 took (the raw bytes stored durably), how long
until the message and its attachment were kept, and checks the stored attachment against the bytes sent. The test
suite runs the same path at 6 MiB (tests/inbound/test_mime_pipeline.py).

    uv run python -m bench.big_mail [--mib 20]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import smtplib
import tempfile
import time
from pathlib import Path

from tests.conftest import start_embedded_store, stop_embedded_store
from tests.mail import big_mail

from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import Attachment, Message
from helpgate.tickets import attachments

JWT_SECRET = "bench-secret-of-at-least-thirty-two-bytes"  # noqa: S105 - a throwaway key for a temp store


def send(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        client.sendmail("big@example.org", ["support@localhost"], data)


async def run(store_uri: str, data_dir: Path, mib: int) -> None:
    payload, data = big_mail(mib)
    settings = Settings(
        _env_file=None, data_dir=data_dir, http_port=0, smtp_port=0, mongodb_uri=store_uri, mongodb_database="big",
        jwt_secret=JWT_SECRET, run_workflows=False, max_message_bytes=len(data) + 1024 * 1024,
    )  # fmt: skip
    gateway = Gateway(settings)
    await gateway.start()
    try:
        assert gateway.smtp is not None
        started = time.monotonic()
        await asyncio.to_thread(send, gateway.smtp.port, data)
        accepted = time.monotonic() - started
        await gateway.worker.idle()
        kept = time.monotonic() - started
        message = await Message.find_one({"message_id": "big-1@example.org"})
        stored = await Attachment.find_one({"filename": "disk.img"})
        assert message is not None and stored is not None, "the mail was not kept"
        same = hashlib.sha256(await attachments.read_bytes(stored)).digest() == hashlib.sha256(payload).digest()
    finally:
        await gateway.stop()
    print(f"{mib} MiB attachment, {len(data) / 1024 / 1024:.1f} MiB on the wire")
    print(f"  250 after {accepted:.1f} s (raw bytes stored); message and attachment kept after {kept:.1f} s")
    print(f"  stored attachment identical to the bytes sent: {'yes' if same else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="helpgate-big-mail-") as directory:
        store, uri = start_embedded_store(Path(directory) / "store", synced=True)
        try:
            asyncio.run(run(uri, Path(directory) / "data", args.mib))
        finally:
            stop_embedded_store(store)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
