"""IMAP mailboxes against a real Dovecot: import, IDLE, polling, reconnects, UIDVALIDITY, after-import actions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core.crypto import SecretBox
from helpgate.core.loops import ManualClock
from helpgate.gateway import Gateway
from helpgate.inbound.imap import Poller
from helpgate.inbound.imap_names import modified_utf7
from helpgate.mailboxes import mailboxes
from helpgate.models import ImapSecurity, Mailbox, Message, RawMessage, RawStatus, Ticket
from tests.dovecot import PASSWORD, Dovecot
from tests.mail import SPOOFING_SENDERS, make_mail, raw_mail


def mail(n: int, **overrides: Any) -> bytes:
    values: dict[str, Any] = {"subject": f"IMAP question {n}", "message_id": f"<imap{n}@example.org>", **overrides}
    return bytes(make_mail(**values))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def add_mailbox(gateway: Gateway, dovecot: Dovecot, **overrides: Any) -> Mailbox:
    values: dict[str, Any] = {
        "address": "support@localhost",
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.imap_port,
        "imap_security": ImapSecurity.NONE,
        "username": "test",
        "password": PASSWORD,
        **overrides,
    }
    mailbox = await mailboxes.create(actor=None, box=gateway.box, **values)
    assert gateway.imap is not None
    await gateway.imap.reconcile()
    return mailbox


async def ticket_count(expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await Ticket.find_all().count() == expected

    return check


async def processed(gateway: Gateway, expected: int) -> bool:
    await gateway.worker.idle()
    return await RawMessage.find({"status": RawStatus.PROCESSED}).count() == expected


async def test_waiting_unseen_mail_is_imported_and_marked_seen(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1), mail(2), mail(3)])
    dovecot.append([mail(9, subject="old, already read")], seen=True)

    mailbox = await add_mailbox(gateway, dovecot)

    await eventually(lambda: processed(gateway, 3), what="3 imported")
    subjects = sorted(t.subject for t in await Ticket.find_all().to_list())
    assert subjects == ["IMAP question 1", "IMAP question 2", "IMAP question 3"]
    assert dovecot.folder_state() == (4, 0)
    stored = await Mailbox.get(mailbox.id)
    assert stored is not None
    assert stored.state.uidvalidity and stored.state.last_uid == 4 and stored.state.imported == 3
    assert stored.state.connected and stored.state.last_error is None and stored.state.last_poll_at
    raw = await RawMessage.find_one({})
    assert raw is not None and raw.source == "imap:support@localhost" and raw.mailbox == "support@localhost"


async def test_import_history_takes_read_mail_too(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1), mail(2)], seen=True)
    await add_mailbox(gateway, dovecot, import_history=True)
    await eventually(lambda: processed(gateway, 2), what="history imported")


async def test_idle_delivers_new_mail_within_two_seconds(gateway: Gateway, dovecot: Dovecot) -> None:
    await add_mailbox(gateway, dovecot)
    assert gateway.imap is not None
    [poller] = gateway.imap.pollers
    await eventually(lambda: _connected(poller.mailbox), what="connected")
    assert poller.uses_idle
    await asyncio.sleep(0.2)  # let IDLE begin

    dovecot.append([mail(1)])
    took = await eventually(lambda: processed(gateway, 1), timeout=5, what="IDLE delivery")

    assert took < 2.0


async def _connected(mailbox: Mailbox) -> bool:
    return mailbox.state.connected and mailbox.state.uidvalidity is not None


async def test_server_without_idle_is_polled(gateway: Gateway) -> None:
    server = Dovecot(capabilities_without=("IDLE",))
    server.start()
    try:
        await add_mailbox(gateway, server, poll_interval_seconds=0.3)
        assert gateway.imap is not None
        [poller] = gateway.imap.pollers
        await eventually(lambda: _connected(poller.mailbox), what="connected")
        assert not poller.uses_idle
        server.append([mail(1)])
        await eventually(lambda: processed(gateway, 1), timeout=5, what="polled delivery")
    finally:
        server.close()


async def test_imaps_with_self_signed_certificate(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1)])
    await add_mailbox(gateway, dovecot, imap_port=dovecot.imaps_port, imap_security=ImapSecurity.TLS,
                      imap_verify_tls=False)  # fmt: skip
    await eventually(lambda: processed(gateway, 1), what="imported over IMAPS")


async def test_unverifiable_certificate_is_an_error_in_the_status(gateway: Gateway, dovecot: Dovecot) -> None:
    mailbox = await add_mailbox(gateway, dovecot, imap_port=dovecot.imaps_port, imap_security=ImapSecurity.TLS)

    async def failed() -> bool:
        stored = await Mailbox.get(mailbox.id)
        return stored is not None and "CERTIFICATE_VERIFY_FAILED" in (stored.state.last_error or "")

    await eventually(failed, what="certificate error recorded")


async def test_wrong_password_is_reported_and_other_mailboxes_go_on(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1)], user="other")
    broken = await add_mailbox(gateway, dovecot, address="billing@localhost", password="wrong")
    await add_mailbox(gateway, dovecot, address="support@localhost", username="other")

    await eventually(lambda: processed(gateway, 1), what="healthy mailbox imported")

    async def refused() -> bool:
        stored = await Mailbox.get(broken.id)
        return stored is not None and "LOGIN refused" in (stored.state.last_error or "")

    await eventually(refused, what="login error recorded")
    stored = await Mailbox.get(broken.id)
    assert stored is not None and not stored.state.connected


async def test_move_after_import(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([b"placeholder"], folder="Done")  # creates the folder
    dovecot.append([mail(1), mail(2)])
    await add_mailbox(gateway, dovecot, after_import="move:Done")
    await eventually(lambda: processed(gateway, 2), what="imported")
    await eventually(lambda: _folder_is(dovecot, "INBOX", 0), what="inbox emptied")
    assert dovecot.folder_state(folder="Done")[0] == 3


async def test_folders_named_as_people_name_them(gateway: Gateway, dovecot: Dovecot) -> None:
    """Spaces, brackets, `&` and non-ASCII: the poller selects and moves by the encoded, quoted name."""
    source, done = "Support Tickets [Kundenanfragen]", "Erledigt & Ärger"
    dovecot.append([mail(1), mail(2)], folder=modified_utf7(source))
    dovecot.append([b"placeholder"], folder=modified_utf7(done))
    await add_mailbox(gateway, dovecot, folder=source, after_import=f"move:{done}")
    await eventually(lambda: processed(gateway, 2), what="imported")
    await eventually(lambda: _folder_is(dovecot, modified_utf7(source), 0), what="source folder emptied")
    assert (await asyncio.to_thread(dovecot.folder_state, folder=modified_utf7(done)))[0] == 3


async def _folder_is(dovecot: Dovecot, folder: str, count: int) -> bool:
    return (await asyncio.to_thread(dovecot.folder_state, folder=folder))[0] == count


async def test_dovecot_restart_reconnects_and_imports(gateway: Gateway, dovecot: Dovecot) -> None:
    await add_mailbox(gateway, dovecot)
    assert gateway.imap is not None
    [poller] = gateway.imap.pollers
    await eventually(lambda: _connected(poller.mailbox), what="connected")

    await asyncio.to_thread(dovecot.restart)
    dovecot.append([mail(1)])

    await eventually(lambda: processed(gateway, 1), timeout=30, what="import after restart")
    # The drop was recorded (and its message cleared again on reconnection).
    assert poller.mailbox.state.last_error_at is not None and poller.mailbox.state.connected


async def test_uidvalidity_change_rescans_without_duplicates(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1), mail(2)], folder="Support")
    mailbox = await add_mailbox(gateway, dovecot, folder="Support")
    await eventually(lambda: processed(gateway, 2), what="first import")
    assert gateway.imap is not None
    await gateway.imap.stop()
    first_validity = (await Mailbox.get(mailbox.id)).state.uidvalidity  # type: ignore[union-attr]

    # The folder is recreated (a server migration does this): same mail, new UIDs, one new message.
    client = dovecot.client()
    client.delete("Support")
    client.logout()
    dovecot.append([mail(1), mail(2), mail(3)], folder="Support")
    await gateway.imap.start()

    await eventually(lambda: processed(gateway, 3), what="new message after reset")
    stored = await Mailbox.get(mailbox.id)
    assert stored is not None and stored.state.uidvalidity != first_validity
    assert await RawMessage.find_all().count() == 3  # the two known messages were not fetched again
    assert await Message.find_all().count() == 3


async def test_reimport_after_crash_before_flag_is_deduplicated(gateway: Gateway, dovecot: Dovecot) -> None:
    dovecot.append([mail(1)])
    mailbox = await add_mailbox(gateway, dovecot)
    await eventually(lambda: processed(gateway, 1), what="imported")
    assert gateway.imap is not None
    await gateway.imap.stop()

    # As if helpgate died after storing but before flagging \Seen and moving the cursor.
    client = dovecot.client()
    client.select("INBOX")
    client.uid("STORE", "1", "-FLAGS", "(\\Seen)")
    client.logout()
    await Mailbox.get_pymongo_collection().update_one({"_id": mailbox.id}, {"$set": {"state.last_uid": 0}})
    await gateway.imap.start()

    async def duplicate_recorded() -> bool:
        await gateway.worker.idle()
        return await RawMessage.find({"status": RawStatus.DUPLICATE}).count() == 1

    await eventually(duplicate_recorded, what="re-import recorded as duplicate")
    assert await Message.find_all().count() == 1
    assert dovecot.folder_state() == (1, 0)


async def test_a_backlog_of_waiting_messages_is_imported_whole(gateway: Gateway, dovecot: Dovecot) -> None:
    """A mailbox connected with mail waiting: each one imported once and marked \\Seen. The same at 2,000 messages,
    against a bare fetch loop: `uv run python -m bench.imap`."""
    dovecot.append([mail(n) for n in range(BACKLOG)])
    await add_mailbox(gateway, dovecot)
    await eventually(lambda: processed(gateway, BACKLOG), timeout=120, what=f"{BACKLOG} imported")
    assert await Ticket.find_all().count() == BACKLOG
    assert dovecot.folder_state() == (BACKLOG, 0)


BACKLOG = 60


async def test_imported_mail_with_an_encoded_word_in_its_from_address_never_passes_for_someone_else(
    gateway: Gateway, dovecot: Dovecot
) -> None:
    dovecot.append(
        [
            raw_mail(sender=sender, subject=f"Invoice {number}", message_id=f"<spoof{number}@attacker.example>")
            for number, (sender, _usable) in enumerate(SPOOFING_SENDERS)
        ]
    )
    await add_mailbox(gateway, dovecot)

    async def all_handled() -> bool:
        await gateway.worker.idle()
        done = {"status": {"$in": [RawStatus.PROCESSED, RawStatus.QUARANTINED]}}
        return await RawMessage.find(done).count() == len(SPOOFING_SENDERS)

    await eventually(all_handled, what="all imported")
    tickets = await Ticket.find_all().to_list()
    for ticket in tickets:
        shown = f"{ticket.requester.name} {ticket.requester.email}"
        assert "jane@example.org" not in shown and shown.isprintable() and ticket.requester.email.count("@") == 1
    assert len(tickets) == sum(usable for _, usable in SPOOFING_SENDERS)
    assert await RawMessage.find({"status": RawStatus.QUARANTINED, "reason": "no usable From address"}).count() == 2


async def test_a_server_that_hangs_up_is_tried_again_after_a_growing_backoff_on_the_pollers_clock(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """Full jitter: the n-th failure in a row waits up to 2^(n-1) seconds; the test moves the clock, nothing sleeps."""

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    box = SecretBox("backoff-test-secret-key-of-32-bytes-or-more")
    mailbox = await mailboxes.create(
        actor=None,
        box=box, address="support@localhost", imap_host="127.0.0.1", imap_port=server.sockets[0].getsockname()[1],
        imap_security=ImapSecurity.NONE, username="test", password=PASSWORD,
    )  # fmt: skip
    clock = ManualClock()
    polling = asyncio.create_task(Poller(mailbox, box=box, on_stored=lambda _raw: None, clock=clock).run())
    try:
        for failures in (1, 2, 3, 4):
            await clock.waiting()
            [wait] = clock.sleepers()
            assert 0 < wait <= 2 ** (failures - 1)
            await clock.advance(wait)
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        server.close()

    stored = await Mailbox.get(mailbox.id)
    assert stored is not None and "connection lost during greeting" in (stored.state.last_error or "")
