"""The outbound worker against a Mailtrap-like sink: retries, permanent failures, suppression, restarts, crashes."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpgate.core.clock import utcnow
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mail_out import deliveries, outbound, senders, suppressions, wiring
from helpgate.mail_out.templates import TemplateKind
from helpgate.mail_out.worker import RetryPolicy
from helpgate.models import DeliveryStatus, OutboundMail, Role, Ticket, User
from helpgate.tickets import replies
from helpgate.tickets.replies import NewFile
from tests.conftest import make_settings, make_user
from tests.mail import make_mail, send
from tests.mail_capture import CaptureServer, wait_for_status


@pytest.fixture
def settings_overrides(sink: CaptureServer) -> dict[str, Any]:
    return {**sink.settings(), "outbound_retry_seconds": 0.05, "outbound_max_attempts": 3, "outbound_connections": 2}


async def _ticket_and_agent(gateway: Gateway) -> User:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    await gateway.worker.idle()
    return await make_user("agent@example.com", Role.AGENT)


def _outgoing(gateway: Gateway) -> Any:
    return wiring.make_outgoing(gateway.settings, secret=gateway.load_secret_key(), wake=gateway._wake_outbound)


async def _reply(gateway: Gateway, agent: User, text: str = "hello") -> OutboundMail:
    _message, mail = await replies.reply(author=agent, number=1, text=text, outgoing=_outgoing(gateway))
    return mail


async def test_421_is_retried_then_sent_once(gateway: Gateway, sink: CaptureServer) -> None:
    agent = await _ticket_and_agent(gateway)
    sink.handler.data_replies.extend(["421 4.7.0 Try again later", "451 4.3.0 Temporary failure"])

    mail = await wait_for_status((await _reply(gateway, agent)).key, "sent")

    assert mail.attempts == 3
    assert [entry.status for entry in mail.history] == [
        "queued",
        "sending",
        "queued",
        "sending",
        "queued",
        "sending",
        "sent",
    ]
    assert "421 4.7.0 Try again later" in mail.history[2].detail
    assert len(await sink.wait_for(1)) == 1


async def test_mail_is_composed_when_queued_and_those_bytes_are_sent(gateway: Gateway, sink: CaptureServer) -> None:
    """The sender sends the bytes stored with the mail; only mail with attachments is composed at send time."""
    agent = await _ticket_and_agent(gateway)
    plain = await _reply(gateway, agent, "composed when queued")
    _message, attached = await replies.reply(
        author=agent,
        number=1,
        text="with a file",
        outgoing=_outgoing(gateway),
        files=[NewFile(filename="notes.txt", content_type="text/plain", data=b"the notes")],
    )

    assert plain.data is not None and b"composed when queued" in plain.data and attached.data is None
    sent = [await wait_for_status(mail.key, "sent") for mail in (plain, attached)]
    received = {item.message["Message-ID"]: item for item in await sink.wait_for(2)}
    assert received[f"<{plain.key}>"].data == plain.data
    attachments = received[f"<{attached.key}>"].message.iter_attachments()
    assert [part.get_filename() for part in attachments] == ["notes.txt"]
    assert [mail.data for mail in sent] == [None, None]  # dropped once sent: the ticket's message keeps the text


async def test_550_fails_for_good_with_the_server_answer(gateway: Gateway, sink: CaptureServer) -> None:
    agent = await _ticket_and_agent(gateway)
    sink.handler.data_replies.append("550 5.1.1 Mailbox does not exist")

    mail = await wait_for_status((await _reply(gateway, agent)).key, "failed")

    assert mail.attempts == 1 and mail.smtp_reply == "550 5.1.1 Mailbox does not exist"
    assert mail.last_error is not None and "550 5.1.1" in mail.last_error
    assert mail.data is None  # composed when queued; a mail that will not be sent keeps no bytes
    await asyncio.sleep(0.3)
    assert sink.received == [] and (await outbound.get(mail.key)).status is DeliveryStatus.FAILED  # type: ignore[union-attr]


async def test_refused_recipient_fails_and_temporary_ones_give_up(
    gateway: Gateway, sink: CaptureServer, settings: Settings
) -> None:
    agent = await _ticket_and_agent(gateway)
    sink.handler.rcpt_replies["jane@example.org"] = "550 5.1.1 No such user"
    refused = await wait_for_status((await _reply(gateway, agent)).key, "failed")
    sink.handler.rcpt_replies["jane@example.org"] = "450 4.2.0 Mailbox busy"
    busy = await wait_for_status((await _reply(gateway, agent, "again")).key, "failed", timeout=60)

    assert refused.smtp_reply == "550 5.1.1 No such user" and refused.attempts == 1
    assert busy.attempts == settings.outbound_max_attempts
    assert busy.last_error is not None and busy.last_error.startswith(f"gave up after {busy.attempts} attempts")


async def test_suppressed_address_is_not_mailed(gateway: Gateway, sink: CaptureServer) -> None:
    agent = await _ticket_and_agent(gateway)
    await suppressions.suppress(address="Jane@Example.org", reason="bounced: 550 5.1.1 user unknown")

    mail = await wait_for_status((await _reply(gateway, agent)).key, "suppressed")

    assert mail.last_error == "jane@example.org is suppressed (bounced: 550 5.1.1 user unknown)"
    await asyncio.sleep(0.3)
    assert sink.received == []


async def test_nothing_is_sent_twice_across_a_restart(gateway: Gateway, sink: CaptureServer) -> None:
    agent = await _ticket_and_agent(gateway)
    mail = await wait_for_status((await _reply(gateway, agent)).key, "sent")
    await gateway.stop()

    again = Gateway(gateway.settings)
    await again.start()
    try:
        await asyncio.sleep(0.5)
        assert len(sink.received) == 1
        assert (await outbound.get(mail.key)).status is DeliveryStatus.SENT  # type: ignore[union-attr]
    finally:
        await again.stop()


async def test_mail_queued_while_stopped_goes_out_at_the_next_start(
    sink: CaptureServer, tmp_path: Path, store_uri: str, database_name: str
) -> None:
    settings = make_settings(tmp_path, store_uri, database_name, **sink.settings())
    first = Gateway(settings)
    await first.start()
    assert first.smtp is not None
    await send(first.smtp.port, make_mail())
    await first.worker.idle()
    agent = await make_user("agent@example.com", Role.AGENT)
    await first.stop()
    # The CLI or another process queues mail with no worker running (wake does nothing).
    await first.connect_store()
    outgoing = wiring.make_outgoing(settings, secret=first.load_secret_key(), wake=lambda: None)
    _message, mail = await replies.reply(author=agent, number=1, text="while you were out", outgoing=outgoing)
    await first.stop()

    second = Gateway(settings)
    await second.start()
    try:
        await wait_for_status(mail.key, "sent")
        assert len(await sink.wait_for(1)) == 1
    finally:
        await second.stop()


LEASE = 1.5  # seconds: short, so the test is quick; long enough that a slow store write on a busy machine (the
# journal is renewed every third of it) does not make the worker take its own journal for a stopped one


async def test_stop_during_data_leaves_mail_uncertain_never_resent(
    sink: CaptureServer, tmp_path: Path, store_uri: str, database_name: str
) -> None:
    """At most once: cut off after DATA began, the mail may have arrived, so it is not sent again."""
    settings = make_settings(
        tmp_path, store_uri, database_name, **sink.settings(), shutdown_grace_seconds=0.1, outbound_lease_seconds=LEASE
    )
    sink.handler.data_delay = 1.0
    first = Gateway(settings)
    await first.start()
    agent = await _ticket_and_agent(first)
    mail = await _reply(first, agent)
    await asyncio.to_thread(sink.handler.data_started.wait, 10)
    await first.stop()  # the sender is cancelled while the sink holds its answer to DATA
    await first.connect_store()
    stopped = await outbound.get(mail.key)
    assert stopped is not None and stopped.status is DeliveryStatus.SENDING and stopped.claim is not None
    journal = await senders.get(stopped.claim)  # listed before DATA, still listed: its 250 never came
    assert journal is not None and journal.holds(stopped.id, stopped.attempts)  # type: ignore[arg-type]
    await first.stop()
    sink.handler.data_delay = 0

    second = Gateway(settings)
    await asyncio.sleep(LEASE + 0.1)  # the lease runs out
    await second.start()
    try:
        uncertain = await wait_for_status(mail.key, "uncertain")
        await asyncio.sleep(0.5)
        assert uncertain.last_error is not None and "may have been delivered" in uncertain.last_error
        assert len(sink.received) <= 1  # the sink got it (its answer came too late), once at most
        assert (await outbound.get(mail.key)).attempts == 1  # type: ignore[union-attr]
    finally:
        await second.stop()


async def test_crash_before_data_is_sent_once_after_recovery(gateway: Gateway, sink: CaptureServer) -> None:
    """A mail left `sending` before DATA (a killed process) is queued again when its lease expires."""
    agent = await _ticket_and_agent(gateway)
    await gateway.stop()
    await gateway.connect_store()
    mail = await _reply(gateway, agent)
    now = utcnow()
    claimed = await deliveries.claim(token="crashed-worker", now=now, lease=timedelta(seconds=-1))
    assert claimed is not None and claimed.key == mail.key
    await gateway.stop()

    again = Gateway(gateway.settings)
    await again.start()
    try:
        sent = await wait_for_status(mail.key, "sent")
        assert sent.attempts == 2
        assert "lease expired before DATA" in " ".join(entry.detail for entry in sent.history)
        await asyncio.sleep(0.3)
        assert len(sink.received) == 1
    finally:
        await again.stop()


async def test_two_gateways_never_send_the_same_mail(gateway: Gateway, sink: CaptureServer, settings: Settings) -> None:
    agent = await _ticket_and_agent(gateway)
    other = Gateway(settings.model_copy(update={"data_dir": settings.data_dir}))
    await other.start()
    try:
        keys = [(await _reply(gateway, agent, f"reply {index}")).key for index in range(12)]
        other._wake_outbound()
        for key in keys:
            await wait_for_status(key, "sent")
        received = await sink.wait_for(12)
        await asyncio.sleep(0.3)
        ids = [str(mail.message["Message-ID"]).strip("<>") for mail in sink.received]
        assert sorted(ids) == sorted(keys)
        assert gateway.outbound is not None and other.outbound is not None
        assert gateway.outbound.sent + other.outbound.sent == 12
        assert len(received) == 12
    finally:
        await other.stop()


async def test_automatic_mail_is_rate_limited_per_recipient(gateway: Gateway, sink: CaptureServer) -> None:
    await _ticket_and_agent(gateway)
    opened = await Ticket.find_one({"number": 1})
    assert opened is not None
    queued = [await replies.acknowledge(ticket=opened, outgoing=_outgoing(gateway)) for _ in range(12)]

    assert sum(mail is not None for mail in queued) == 10
    received = await sink.wait_for(10)
    await asyncio.sleep(0.3)
    assert len(sink.received) == 10
    first = received[0].message
    assert first["Auto-Submitted"] == "auto-replied" and first["X-Auto-Response-Suppress"] == "All"
    assert first["In-Reply-To"] == "<first@example.org>"
    assert str(TemplateKind.TICKET_ACKNOWLEDGEMENT) == queued[0].template  # type: ignore[union-attr]


def _handing_over(gateway: Gateway) -> Any:
    """What the gateway's own workflows queue with: its worker takes their mail without claiming it again."""
    return wiring.make_outgoing(
        gateway.settings,
        secret=gateway.load_secret_key(),
        wake=gateway._wake_outbound,
        handover=lambda: gateway.outbound,
    )


async def test_automatic_mail_queued_in_the_gateway_is_stored_claimed_and_sent_once(
    gateway: Gateway, sink: CaptureServer
) -> None:
    await _ticket_and_agent(gateway)
    opened = await Ticket.find_one({"number": 1})
    assert opened is not None and gateway.outbound is not None
    before = gateway.outbound.sent

    queued = await replies.acknowledge(ticket=opened, outgoing=_handing_over(gateway))

    assert queued is not None and queued.status is DeliveryStatus.SENDING and queued.attempts == 1
    mail = await wait_for_status(queued.key, "sent")
    assert [entry.status for entry in mail.history] == ["queued", "sending", "sent"]
    assert len(await sink.wait_for(1)) == 1 and gateway.outbound.sent == before + 1


async def test_automatic_mail_handed_over_to_a_suppressed_address_is_not_mailed(
    gateway: Gateway, sink: CaptureServer
) -> None:
    await _ticket_and_agent(gateway)
    opened = await Ticket.find_one({"number": 1})
    assert opened is not None
    await suppressions.suppress(address="jane@example.org", reason="bounced: 550 5.1.1 user unknown")

    queued = await replies.acknowledge(ticket=opened, outgoing=_handing_over(gateway))

    assert queued is not None and queued.claim is not None
    mail = await wait_for_status(queued.key, "suppressed")
    assert mail.last_error == "jane@example.org is suppressed (bounced: 550 5.1.1 user unknown)"
    assert sink.received == []


def test_retry_delays_double_from_the_base_up_to_the_cap_within_a_quarter() -> None:
    policy = RetryPolicy(base_seconds=30.0, cap_seconds=3600.0, rng=random.Random(5))
    for attempt, expected in ((1, 30.0), (2, 60.0), (3, 120.0), (8, 3600.0), (40, 3600.0)):
        assert expected * 0.75 <= policy.delay(attempt) <= expected * 1.25
