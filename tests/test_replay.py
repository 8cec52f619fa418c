"""`helpgate quarantine` and `helpgate replay` as an operator runs them, against the test store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from helpgate.core.settings import Settings
from helpgate.inbound import raw_messages
from helpgate.models import Message, RawMessage, RawStatus
from tests.mail import make_mail


def _helpgate(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        MONGODB_URI=settings.mongodb_uri or "",
        HELPGATE_MONGODB_DATABASE=settings.mongodb_database,
        HELPGATE_DATA_DIR=str(settings.data_dir),
    )
    command = [sys.executable, "-m", "helpgate", "--log-level", "WARNING", *args]
    return subprocess.run(
        command, env=env, cwd=Path(settings.data_dir).parent, capture_output=True, text=True, timeout=60
    )


async def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_helpgate, settings, *args)


async def test_quarantine_lists_reason_and_replay_is_idempotent(store: object, settings: Settings) -> None:
    bad = await raw_messages.store(
        data=b"Subject: who?\r\n\r\nno sender\r\n", source="smtp", mailbox="support@localhost"
    )
    await raw_messages.mark(bad, RawStatus.QUARANTINED, reason="no usable From address")
    interrupted = await raw_messages.store(data=bytes(make_mail()), source="smtp", mailbox="support@localhost")

    listing = await run(settings, "quarantine")
    assert listing.returncode == 0
    assert str(bad.id) in listing.stdout and "no usable From address" in listing.stdout
    assert str(interrupted.id) not in listing.stdout

    still_bad = await run(settings, "replay")
    assert still_bad.returncode == 1  # the cause is not fixed: it stays quarantined, with its reason
    assert "[1/1]" in still_bad.stdout and "1 quarantined" in still_bad.stdout

    first = await run(settings, "replay", "--status", "received")
    assert first.returncode == 0 and "1 processed" in first.stdout
    again = await run(settings, "replay", str(interrupted.id))
    assert again.returncode == 0 and "1 duplicate" in again.stdout
    assert await Message.find_all().count() == 1
    stored = await RawMessage.get(interrupted.id)
    assert stored is not None and stored.status is RawStatus.DUPLICATE and stored.ticket_number == 1

    unknown = await run(settings, "replay", "not-an-id")
    assert unknown.returncode == 1 and "not a raw message id" in unknown.stderr
