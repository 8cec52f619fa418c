"""Mailbox leases: two supervisors (as two helpgate instances) on one store and one real Dovecot mailbox.

Only the lease holder polls; a clean stop hands the mailbox over at once; a crashed holder's lease lapses and
the other instance takes over and imports new mail; a holder that cannot renew (its lease taken, the store
frozen) stops polling before its lease could be taken. No message is ever imported twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.loops import ManualClock
from helpgate.inbound.supervisor import Supervisor
from helpgate.mailboxes import leases, mailboxes
from helpgate.models import ImapSecurity, Lease, Mailbox, RawMessage
from tests.dovecot import PASSWORD, Dovecot
from tests.mail import make_mail

LEASE = 3.0  # seconds: renewals every second, polling stops 2 s after the last one, others take over at 3 s
# How long a condition may take on a loaded machine (IDLE, fetch, store): waiting is for the condition, not the time.
IMPORT_WAIT = 60.0
BOX = SecretBox("lease-test-secret-key-of-32-bytes-or-more")


def mail(n: int) -> bytes:
    return bytes(make_mail(subject=f"Leased question {n}", message_id=f"<lease{n}@example.org>"))


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    start = time.monotonic()
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.05)


class Instance:
    """One helpgate instance's IMAP side: a supervisor and the raw messages it stored."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stored: list[RawMessage] = []
        self.supervisor = Supervisor(
            box=BOX, on_stored=self.stored.append, instance_id=name, lease_seconds=LEASE, reconcile_seconds=0.3
        )

    @property
    def polling(self) -> bool:
        return bool(self.supervisor.pollers)


@pytest.fixture
async def pair(store: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[tuple[Instance, Instance]]:
    a, b = Instance("instance-a"), Instance("instance-b")
    yield a, b
    await a.supervisor.stop()
    await b.supervisor.stop()


async def add_mailbox(dovecot: Dovecot) -> Mailbox:
    return await mailboxes.create(
        actor=None,
        box=BOX, address="support@localhost", imap_host="127.0.0.1", imap_port=dovecot.imap_port,
        imap_security=ImapSecurity.NONE, username="test", password=PASSWORD,
    )  # fmt: skip


async def lease_of(mailbox: Mailbox) -> Lease | None:
    assert mailbox.id is not None
    return await leases.get(leases.mailbox_key(mailbox.id))


async def imported(count: int, *instances: Instance) -> bool:
    """`count` raw messages stored, each handed on by the instance that stored it."""
    handed_on = sum(len(instance.stored) for instance in instances)
    return handed_on >= count and await RawMessage.find_all().count() == count


async def assert_each_imported_once(count: int) -> None:
    raws = await RawMessage.find_all().to_list()
    data = sorted(raw.data or b"" for raw in raws)
    assert len(raws) == count and len(set(data)) == count, "a message was imported twice"


async def start_both(a: Instance, b: Instance) -> tuple[Instance, Instance]:
    """Start both at once; (holder, other)."""
    await asyncio.gather(a.supervisor.start(), b.supervisor.start())
    assert a.polling != b.polling, "exactly one instance polls the mailbox"
    return (a, b) if a.polling else (b, a)


async def test_only_the_lease_holder_polls(pair: tuple[Instance, Instance], dovecot: Dovecot) -> None:
    dovecot.append([mail(1), mail(2)])
    mailbox = await add_mailbox(dovecot)
    holder, other = await start_both(*pair)

    dovecot.append([mail(3)])
    await eventually(lambda: imported(3, holder, other), IMPORT_WAIT, "three imported")
    await asyncio.sleep(LEASE * 1.5)  # renewals pass; the other instance keeps finding the mailbox held

    lease = await lease_of(mailbox)
    assert lease is not None and lease.owner == holder.name and lease.expires_at > utcnow()
    assert len(holder.stored) == 3 and other.stored == [] and not other.polling
    [seen] = other.supervisor.status()  # what its /healthz shows
    assert seen["address"] == "support@localhost" and seen["owner"] == holder.name
    [polled] = holder.supervisor.status()
    assert polled["owner"] == holder.name and polled["connected"]
    await assert_each_imported_once(3)
    assert dovecot.folder_state() == (3, 0)


async def test_clean_stop_hands_the_mailbox_over_at_once(pair: tuple[Instance, Instance], dovecot: Dovecot) -> None:
    mailbox = await add_mailbox(dovecot)
    holder, other = await start_both(*pair)
    await holder.supervisor.stop()  # releases the lease

    assert await lease_of(mailbox) is None
    took = await eventually(lambda: other.polling, LEASE, "the other instance polls")
    assert took < LEASE / 2  # at its next reconciliation, not after the lease would have lapsed
    dovecot.append([mail(1)])
    await eventually(lambda: imported(1, holder, other), IMPORT_WAIT, "imported by the other instance")
    assert len(other.stored) == 1


async def test_crashed_holder_is_taken_over_after_the_lease_lapses(
    pair: tuple[Instance, Instance], dovecot: Dovecot
) -> None:
    dovecot.append([mail(1)])
    mailbox = await add_mailbox(dovecot)
    holder, other = await start_both(*pair)
    await eventually(lambda: imported(1, holder, other), IMPORT_WAIT, "first imported")

    await holder.supervisor.stop(release=False)  # as if the process died: the lease stays until it lapses
    left = await lease_of(mailbox)
    assert left is not None and left.owner == holder.name
    dovecot.append([mail(2), mail(3)])

    await eventually(lambda: other.polling, LEASE * 3, "take-over")
    taken = await lease_of(mailbox)
    assert taken is not None and taken.owner == other.name
    assert taken.acquired_at >= left.expires_at  # not before it lapsed
    await eventually(lambda: imported(3, holder, other), IMPORT_WAIT, "new mail imported after the take-over")
    assert len(holder.stored) == 1 and len(other.stored) == 2
    await assert_each_imported_once(3)


async def test_holder_whose_lease_was_taken_stops_at_its_next_renewal(
    pair: tuple[Instance, Instance], dovecot: Dovecot
) -> None:
    mailbox = await add_mailbox(dovecot)
    holder, other = await start_both(*pair)
    await other.supervisor.stop()
    assert mailbox.id is not None
    # Another owner holds the lease now (as after a long pause of the holder's whole process).
    await Lease.get_pymongo_collection().update_one(
        {"_id": leases.mailbox_key(mailbox.id)}, {"$set": {"owner": "intruder", "expires_at": utcnow() + timedelta(1)}}
    )
    took = await eventually(lambda: not holder.polling, LEASE, "the holder stops")
    assert took <= LEASE / 3 + 0.5
    dovecot.append([mail(1)])
    await asyncio.sleep(1.0)
    assert holder.stored == [] and await imported(0)  # nobody here polls: the intruder holds the lease


async def test_holder_that_cannot_reach_the_store_stops_before_its_lease_lapses(
    frozen_store: Callable[[bool], None], dovecot: Dovecot
) -> None:
    mailbox = await add_mailbox(dovecot)
    holder = Instance("instance-a")
    await holder.supervisor.start()
    try:
        assert holder.polling
        [poller] = holder.supervisor.pollers
        await eventually(lambda: poller.mailbox.state.connected, 10, "connected")
        await asyncio.sleep(LEASE / 3 + 0.2)  # one renewal confirmed
        lease = await lease_of(mailbox)
        assert lease is not None

        frozen_store(True)
        await eventually(lambda: not holder.polling, LEASE, "the poller is stopped")
        # Stopped before the lease could be taken by anyone: its expiry is at least the one read before freezing.
        assert utcnow() < lease.expires_at
        await eventually(lambda: "Logged out" in dovecot.log(), 1, "the IMAP session logged out")
        assert utcnow() < lease.expires_at
    finally:
        frozen_store(False)
        await holder.supervisor.stop()


async def test_the_lease_is_renewed_and_given_up_by_the_supervisor_clock(
    store: AsyncMongoClient[dict[str, Any]], dovecot: Dovecot
) -> None:
    """Renewal every third of the lease, and a lost lease stopping the poller, on a clock the test moves: a lease
    of a minute, whose renewal the wall clock would bring only after 20 s."""
    mailbox = await add_mailbox(dovecot)
    clock = ManualClock()
    lease_seconds = 60.0
    supervisor = Supervisor(
        box=BOX, on_stored=lambda _raw: None, instance_id="instance-a", lease_seconds=lease_seconds, clock=clock
    )
    await supervisor.start()
    try:
        assert len(supervisor.pollers) == 1
        taken = await lease_of(mailbox)
        assert taken is not None

        async def renewed() -> bool:
            lease = await lease_of(mailbox)
            return lease is not None and lease.expires_at > taken.expires_at

        assert not await renewed()
        await clock.advance(lease_seconds / 3)  # the renewal falls due on the supervisor's clock, not the wall's
        await eventually(renewed, 5, "the lease renewed")
        assert mailbox.id is not None
        await Lease.get_pymongo_collection().update_one(
            {"_id": leases.mailbox_key(mailbox.id)}, {"$set": {"owner": "intruder"}}
        )
        await clock.advance(lease_seconds / 3)
        await eventually(lambda: not supervisor.pollers, 5, "the poller stops: the lease is someone else's")
    finally:
        await supervisor.stop()
