"""Retention: old raw mail and attachment bytes go, everything that says they existed stays; old workflow
history goes, open runs and undelivered events stay."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.core.errors import ContentPurged
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.inbound import raw_messages
from helpgate.maintenance import retention
from helpgate.models import Attachment, Message, OutboxEvent, RawMessage, RawStatus, Role, WorkflowRun
from helpgate.outbox.models.event import EventStatus
from helpgate.outbox.models.workflow_run import RunStatus
from helpgate.tickets import attachments
from tests.cli import run_cli
from tests.conftest import login, make_user
from tests.mail import make_mail, send

OLD = timedelta(days=40)
KEEP = retention.Retention(raw_mail_days=30, attachment_days=30)
SHARED = b"the logo in every signature\n" * 50


def _with_files(message: EmailMessage, *files: tuple[str, bytes]) -> EmailMessage:
    for filename, payload in files:
        message.add_attachment(payload, maintype="application", subtype="octet-stream", filename=filename)
    return message


async def _age(raw_id: PydanticObjectId | None) -> None:
    """Make one raw message, and the attachments of its message, 40 days older."""
    raw = await RawMessage.get(raw_id)
    assert raw is not None
    await RawMessage.get_pymongo_collection().update_one({"_id": raw.id}, {"$set": {"received_at": utcnow() - OLD}})
    message = await Message.find_one({"raw_message_id": raw.id})
    if message is not None:
        await Attachment.get_pymongo_collection().update_many(
            {"message_key": message.dedupe_key}, {"$set": {"created_at": utcnow() - OLD}}
        )


async def _stored_raw(status: RawStatus) -> RawMessage:
    raw = await raw_messages.store(
        data=bytes(make_mail(subject=str(status))), source="smtp", mailbox="support@localhost"
    )
    if status is not RawStatus.RECEIVED:
        await raw_messages.mark(raw, status, reason="test")
    await RawMessage.get_pymongo_collection().update_one({"_id": raw.id}, {"$set": {"received_at": utcnow() - OLD}})
    return raw


async def _gridfs_holds(client: AsyncMongoClient[dict[str, Any]], database: str, bucket: str, file_id: Any) -> bool:
    files = await client[database][f"{bucket}.files"].find_one({"_id": file_id})
    chunks = await client[database][f"{bucket}.chunks"].find_one({"files_id": file_id})
    return files is not None or chunks is not None


async def _raw_of(number: int) -> RawMessage:
    raw = await RawMessage.find_one({"ticket_number": number})
    assert raw is not None
    return raw


async def _mail_in(gateway: Gateway) -> None:
    """Ticket 1: an old mail with a file of its own and a shared one; ticket 2: an old mail over 512 KiB;
    ticket 3: a new mail carrying the shared file again."""
    assert gateway.smtp is not None
    first = _with_files(
        make_mail(message_id="<old@example.org>"), ("own.pdf", b"%PDF own\n" * 30), ("logo.png", SHARED)
    )
    big = _with_files(
        make_mail(subject="Disk image", message_id="<big@example.org>"), ("disk.img", os.urandom(600_000))
    )
    await send(gateway.smtp.port, first)
    await send(gateway.smtp.port, big)
    await gateway.worker.idle()
    await _age((await _raw_of(1)).id)
    await _age((await _raw_of(2)).id)
    new = _with_files(make_mail(subject="Again", message_id="<new@example.org>"), ("logo.png", SHARED))
    await send(gateway.smtp.port, new)
    await gateway.worker.idle()


async def test_old_bytes_go_new_and_unfinished_mail_stays(
    gateway: Gateway, api: httpx.AsyncClient, settings: Settings
) -> None:
    await _mail_in(gateway)
    waiting = await _stored_raw(RawStatus.RECEIVED)
    quarantined = await _stored_raw(RawStatus.QUARANTINED)
    big = await _raw_of(2)
    assert big.gridfs_id is not None and big.data is None
    first = await Message.find_one({"message_id": "old@example.org"})
    assert first is not None
    own, _logo = await attachments.of_message(first.dedupe_key)

    report = await retention.purge(KEEP)

    assert (report.raw_messages, report.attachments, report.attachment_files) == (2, 2, 2)
    assert report.attachments_kept_shared == 1
    client, database = gateway.client, settings.mongodb_database
    assert client is not None
    for number in (1, 2):
        raw = await _raw_of(number)
        assert raw.purged_at is not None and raw.data is None and raw.gridfs_id is None
        assert raw.size > 0 and raw.sha256 and raw.status is RawStatus.PROCESSED  # the record stays
    assert not await _gridfs_holds(client, database, raw_messages.BUCKET, big.gridfs_id)
    assert (await _raw_of(3)).purged_at is None and await raw_messages.read_bytes(await _raw_of(3))
    for kept in (waiting, quarantined):
        again = await RawMessage.get(kept.id)
        assert again is not None and again.purged_at is None and await raw_messages.read_bytes(again)

    own_after, logo_after = await attachments.of_message(own.message_key)
    assert own_after.purged_at is not None and not await _gridfs_holds(client, database, "attachments", own.gridfs_id)
    assert logo_after.purged_at is None and await attachments.read_bytes(logo_after) == SHARED  # ticket 3 shares it
    [disk] = await Attachment.find({"ticket_number": 2}).to_list()
    assert disk.purged_at is not None and not await _gridfs_holds(client, database, "attachments", disk.gridfs_id)

    second = await retention.purge(KEEP)
    assert (second.raw_messages, second.attachments) == (0, 0)


async def test_the_api_and_readers_say_the_bytes_were_purged(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _mail_in(gateway)
    await retention.purge(KEEP)
    await make_user("admin@example.com", Role.ADMIN)
    headers = await login(api, "admin@example.com")

    ticket = (await api.get("/api/tickets/1", headers=headers)).json()
    files = {f["filename"]: f for f in ticket["messages"][0]["attachments"]}
    assert files["own.pdf"]["purged_at"] is not None and files["own.pdf"]["size"] > 0
    assert files["logo.png"]["purged_at"] is None
    big = (await api.get("/api/tickets/2", headers=headers)).json()
    assert big["messages"][0]["attachments"][0]["purged_at"] is not None

    raw = await _raw_of(2)
    with pytest.raises(ContentPurged, match=rf"purged on {utcnow():%Y-%m-%d} by retention"):
        await raw_messages.read_bytes(raw)
    [disk] = await Attachment.find({"ticket_number": 2}).to_list()
    with pytest.raises(ContentPurged, match=r"purged on .* by retention"):
        await attachments.read_bytes(disk)


async def test_dry_run_counts_and_changes_nothing(gateway: Gateway) -> None:
    await _mail_in(gateway)
    report = await retention.purge(KEEP, dry_run=True)
    assert (report.raw_messages, report.attachments) == (2, 2) and "would purge 2 raw" in report.summary()
    assert await RawMessage.find({"purged_at": {"$ne": None}}).count() == 0
    assert await Attachment.find({"purged_at": {"$ne": None}}).count() == 0
    assert await raw_messages.read_bytes(await _raw_of(2))


async def test_zero_days_keeps_everything(gateway: Gateway) -> None:
    await _mail_in(gateway)
    report = await retention.purge(retention.Retention(raw_mail_days=0, attachment_days=0))
    assert (report.raw_messages, report.attachments) == (0, 0)
    assert await RawMessage.find({"purged_at": {"$ne": None}}).count() == 0


@pytest.mark.parametrize("settings_overrides", [{"raw_mail_retention_days": 30}])
async def test_serve_purges_by_itself(store: AsyncMongoClient[dict[str, Any]], settings: Settings) -> None:
    old = await _stored_raw(RawStatus.PROCESSED)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        for _ in range(100):
            found = await RawMessage.get(old.id)
            if found is not None and found.purged_at is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("helpgate serve did not purge old raw mail")
    finally:
        await gateway.stop()


async def test_cli_purges_and_replay_says_the_mail_is_gone(gateway: Gateway, settings: Settings) -> None:
    await _mail_in(gateway)
    purged = await asyncio.to_thread(
        run_cli,
        "purge",
        settings=settings,
        HELPGATE_RAW_MAIL_RETENTION_DAYS="30",
        HELPGATE_ATTACHMENT_RETENTION_DAYS="30",
    )
    assert purged.returncode == 0, purged.stderr
    assert "purged 2 raw message(s)" in purged.stdout and "2 attachment(s) in 2 file(s)" in purged.stdout

    raw = await _raw_of(2)
    replayed = await asyncio.to_thread(run_cli, "replay", str(raw.id), settings=settings)
    assert replayed.returncode == 1 and "Traceback" not in replayed.stderr
    assert f"{raw.id}: not replayed, its bytes were purged on {raw.purged_at:%Y-%m-%d} by retention" in replayed.stdout
    after = await RawMessage.get(raw.id)
    assert after is not None and after.status is RawStatus.PROCESSED  # not quarantined by the attempt


async def _history() -> dict[str, Any]:
    """Workflow runs and outbox events, finished (or delivered) 40 days ago, yesterday, or not at all."""
    old, recent = utcnow() - OLD, utcnow() - timedelta(days=1)
    made: dict[str, Any] = {}
    for name, status, finished in (
        ("old completed", RunStatus.COMPLETED, old),
        ("old failed", RunStatus.FAILED, old),
        ("old cancelled", RunStatus.CANCELLED, old),
        ("recent completed", RunStatus.COMPLETED, recent),
        ("sleeping since long ago", RunStatus.SLEEPING, None),
        ("queued long ago", RunStatus.QUEUED, None),
    ):
        run = WorkflowRun(
            key=name,
            function_id="f",
            event_id=name,
            event_name="e",
            status=status,
            created_at=old,
            finished_at=finished,
        )
        made[name] = (await run.insert()).id
    for name, event_status, sent in (
        ("old sent", EventStatus.SENT, old),
        ("recent sent", EventStatus.SENT, recent),
        ("old pending", EventStatus.PENDING, None),
    ):
        event = OutboxEvent(name="e", key=name, status=event_status, created_at=old, sent_at=sent)
        made[name] = (await event.insert()).id
    return made


async def test_old_workflow_history_goes_open_runs_and_undelivered_events_stay(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    await _history()
    history = retention.Retention(history_days=30)

    counted = await retention.purge(history, dry_run=True)
    assert (counted.workflow_runs, counted.outbox_events) == (3, 1)
    assert await WorkflowRun.count() == 6 and await OutboxEvent.count() == 2 + 1

    report = await retention.purge(history)
    assert (report.workflow_runs, report.outbox_events) == (3, 1)
    assert "3 finished run(s), 1 delivered event(s)" in report.summary()
    assert sorted(run.key for run in await WorkflowRun.find_all().to_list()) == [
        "queued long ago",
        "recent completed",
        "sleeping since long ago",
    ]
    assert sorted(event.key for event in await OutboxEvent.find_all().to_list()) == ["old pending", "recent sent"]
    assert (await retention.purge(retention.Retention(raw_mail_days=30))).workflow_runs == 0  # history 0: kept


async def test_serve_deletes_old_workflow_history_by_default(
    store: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    assert settings.workflow_history_days == 30 and not settings.raw_mail_retention_days
    made = await _history()
    gateway = Gateway(settings)
    await gateway.start()
    try:
        for _ in range(100):
            if await WorkflowRun.get(made["old completed"]) is None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("helpgate serve did not delete old workflow history")
        assert await WorkflowRun.get(made["sleeping since long ago"]) is not None
    finally:
        await gateway.stop()
