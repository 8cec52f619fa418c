"""Nothing lost: mail is acknowledged only once stored, and stored mail is processed after a restart."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from helpgate.core import db
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.inbound import raw_messages
from helpgate.models import ALL_MODELS, RawMessage, RawStatus, Ticket
from tests.conftest import make_settings
from tests.mail import make_mail, send


async def test_mail_stored_before_a_stop_is_processed_on_next_start(settings: Settings) -> None:
    first = Gateway(settings)
    await first.connect_store()
    raw = await raw_messages.store(
        data=bytes(make_mail(message_id="<left@example.org>")), source="smtp", mailbox="support@localhost"
    )
    await first.stop()
    assert raw.status is RawStatus.RECEIVED

    second = Gateway(settings)
    await second.start()
    try:
        await second.worker.idle()
        stored = await RawMessage.get(raw.id)
        assert stored is not None and stored.status is RawStatus.PROCESSED and stored.ticket_number == 1
        assert await Ticket.find_all().count() == 1
    finally:
        await second.stop()


async def test_store_down_answers_451_and_keeps_nothing(tmp_path: Path, database_name: str) -> None:
    store = db.EmbeddedStore(tmp_path / "store")
    uri = await store.start()
    gateway = Gateway(make_settings(tmp_path, uri, database_name))
    await gateway.start()
    try:
        assert gateway.smtp is not None and store._process is not None
        store._process.kill()
        await store._process.wait()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await send(gateway.smtp.port, make_mail())
        assert refused.value.smtp_code == 451
        assert b"4.3.0" in refused.value.smtp_error
    finally:
        await gateway.stop()
        await store.stop()

    restarted = db.EmbeddedStore(tmp_path / "store")
    client = db.make_client(await restarted.start())
    try:
        await db.init_models(client, database_name, ALL_MODELS)
        assert await RawMessage.find_all().count() == 0
        assert await client[database_name]["raw_mail.files"].count_documents({}) == 0
    finally:
        await client.close()
        await restarted.stop()


async def test_stop_lets_a_store_in_flight_finish(gateway: Gateway, settings: Settings) -> None:
    assert gateway.smtp is not None
    sending = asyncio.create_task(send(gateway.smtp.port, make_mail(body="x" * 200_000)))
    while not gateway.smtp.handler.in_flight and not sending.done():  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.001)
    await gateway.stop()
    client = db.make_client(settings.mongodb_uri or "")
    await db.init_models(client, settings.mongodb_database, ALL_MODELS)
    # Either the mail was stored and acknowledged, or the client saw a failure it will retry: never a 250
    # for mail that is not stored.
    try:
        refused = await sending
    except (smtplib.SMTPException, OSError):
        assert await RawMessage.find_all().count() == 0
    else:
        assert refused == {}
        assert await RawMessage.find_all().count() == 1
    finally:
        await client.close()
