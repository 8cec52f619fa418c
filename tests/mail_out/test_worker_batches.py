"""The outbound worker's batches: workers sharing a store, and a worker killed in the middle of a batch."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.core.loops import ManualClock
from helpgate.mail_out import outbound, senders
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import TemplateKind, Templates
from helpgate.mail_out.transport import SmtpConfig, SmtpTransport
from helpgate.mail_out.worker import POLL_SECONDS, OutboundWorker
from helpgate.models import DeliveryStatus, OutboundMail
from tests.mail_capture import PASSWORD, USERNAME, CaptureServer
from tests.mail_out import worker_process

Store = AsyncMongoClient[dict[str, Any]]
ROOT = Path(__file__).resolve().parents[2]
OUTGOING = Outgoing(
    from_address="help@acme.test", from_name="Acme", secret="s" * 32, templates=Templates(Path("/nonexistent"))
)


async def _queue(count: int) -> list[str]:
    keys = []
    for index in range(count):
        mail = await outbound.prepare(
            outgoing=OUTGOING,
            template=TemplateKind.WELCOME,
            to=[f"user{index}@example.org"],
            subject=f"Welcome {index}",
            context={"user_name": "", "email": "x@y", "role": "customer", "support_address": "help@acme.test"},
            now=utcnow(),
            automatic=True,
        )
        keys.append((await outbound.enqueue(mail, loop_marker=OUTGOING.loop_marker)).key)
    return keys


def _worker(sink: CaptureServer, **options: Any) -> OutboundWorker:
    transport = SmtpTransport(
        SmtpConfig(
            host="127.0.0.1", port=sink.port, username=USERNAME, password=PASSWORD, ca_file=sink.certificate.cert
        )
    )
    return OutboundWorker(transport=transport, loop_marker="help@acme.test", **options)


async def _settled(keys: list[str], timeout: float = 60.0) -> list[OutboundMail]:
    """Every mail once it is neither queued nor being sent."""
    deadline = time.monotonic() + timeout
    while True:
        mails = [mail for key in keys if (mail := await outbound.get(key)) is not None]
        if all(mail.status not in {DeliveryStatus.QUEUED, DeliveryStatus.SENDING} for mail in mails):
            return mails
        if time.monotonic() > deadline:
            raise AssertionError(collections.Counter(str(mail.status) for mail in mails))
        await asyncio.sleep(0.05)


def _received_ids(sink: CaptureServer) -> collections.Counter[str]:
    return collections.Counter(str(mail.message["Message-ID"]).strip("<>") for mail in sink.received)


async def test_two_workers_on_one_store_never_send_the_same_mail(store: Store, sink: CaptureServer) -> None:
    keys = await _queue(30)
    workers = [_worker(sink, connections=2, batch=4) for _ in range(2)]
    for worker in workers:
        await worker.start()
    try:
        mails = await _settled(keys)
    finally:
        for worker in workers:
            await worker.stop(5)

    assert {mail.status for mail in mails} == {DeliveryStatus.SENT}
    assert _received_ids(sink) == collections.Counter(keys)  # each mail once, whoever sent it
    assert sum(worker.sent for worker in workers) == 30
    assert all(worker.sent > 0 for worker in workers)  # both took part


async def test_a_stopped_worker_gives_back_what_it_claimed_and_retires_its_journal(
    store: Store, sink: CaptureServer
) -> None:
    keys = await _queue(12)
    sink.handler.data_delay = 0.2
    worker = _worker(sink, connections=1, batch=12)
    await worker.start()
    await asyncio.to_thread(sink.handler.data_started.wait, 10)
    await worker.stop(5)  # the mail in DATA finishes; the eleven others were never begun

    mails = [await outbound.get(key) for key in keys]
    assert collections.Counter(str(mail.status) for mail in mails if mail) == {"sent": 1, "queued": 11}
    journals = OutboundMail.get_pymongo_collection().database[senders.COLLECTION]
    assert await journals.count_documents({}) == 0  # nothing left that may have reached DATA


async def test_a_worker_killed_mid_batch_never_has_a_mail_sent_twice(
    store: Store, sink: CaptureServer, store_uri: str
) -> None:
    """SIGKILL while mails are in DATA: what its journal listed becomes `uncertain`, the rest is sent once."""
    keys = await _queue(30)
    sink.handler.data_delay = 0.05
    database = OutboundMail.get_pymongo_collection().database.name
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.mail_out.worker_process", store_uri, database),
        *(str(sink.port), str(sink.certificate.cert)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and (await child.stdout.readline()).strip() == b"READY"
        await sink.wait_for(6)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    before = [mail for key in keys if (mail := await outbound.get(key)) is not None]
    sent_before = {mail.key for mail in before if mail.status is DeliveryStatus.SENT}
    assert any(mail.status is DeliveryStatus.SENDING for mail in before)  # killed mid-batch

    survivor = _worker(sink, connections=2, lease_seconds=worker_process.LEASE_SECONDS)
    await survivor.start()
    try:
        mails = await _settled(keys)
    finally:
        await survivor.stop(5)

    received = _received_ids(sink)
    assert max(received.values()) == 1  # nothing sent twice
    assert all(received[key] == 1 for key in sent_before)  # marked sent before the kill: not resent
    statuses = collections.Counter(str(mail.status) for mail in mails)
    assert set(statuses) <= {"sent", "uncertain"}
    assert all(received[mail.key] == 1 for mail in mails if mail.status is DeliveryStatus.SENT)
    # At most what the killed worker listed before DATA: its connections' mails and 250s not yet recorded.
    assert statuses["uncertain"] <= 2 * worker_process.CONNECTIONS
    lapsed = [mail for mail in mails if any("before DATA" in entry.detail for entry in mail.history)]
    assert lapsed and all(mail.status is DeliveryStatus.SENT and mail.attempts == 2 for mail in lapsed)


async def test_mail_queued_by_another_process_is_claimed_at_the_next_poll_on_the_workers_clock(
    store: Store, sink: CaptureServer
) -> None:
    clock = ManualClock()
    worker = _worker(sink, connections=1, lease_seconds=300.0, clock=clock)
    await worker.start()
    try:
        await clock.waiting(2)
        assert clock.sleepers() == [POLL_SECONDS, 300.0]  # the dispatcher found nothing; recovery comes round later
        keys = await _queue(1)  # as the command line queues it: nobody wakes this worker
        await clock.advance(POLL_SECONDS - 0.1)
        queued = await outbound.get(keys[0])
        assert queued is not None and queued.status is DeliveryStatus.QUEUED
        await clock.advance(0.1)
        [mail] = await _settled(keys, timeout=10)
    finally:
        await worker.stop(5)

    assert mail.status is DeliveryStatus.SENT
