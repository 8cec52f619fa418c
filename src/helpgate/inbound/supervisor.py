"""Runs the IMAP pollers of one instance: one per enabled mailbox whose lease it holds, following changes.

Several instances may share one store; each mailbox is polled by exactly one of them at a time. An instance
takes a mailbox's lease (mailboxes/leases.py) before starting its poller, renews it every `ttl/3`,
and releases it when it stops cleanly. The poller is cancelled when a renewal finds another owner, and when
`2·ttl/3` pass without a confirmed renewal (the store is unreachable), so it has stopped before any other
instance may take the lease (at `ttl`); leases.py states the rule and the clock skew it tolerates. A lease
left by a crashed instance lapses after `ttl`, and another instance takes it at its next reconciliation.

Stopping late is still safe, only wasteful: a message imported twice is recognised by its Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from helpgate.core.clock import utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.loops import Clock, PollingLoop, SystemClock
from helpgate.inbound.imap import Poller
from helpgate.mailboxes import leases, mailboxes
from helpgate.mailboxes.oauth import Tokens
from helpgate.models import Mailbox, RawMessage

log = logging.getLogger(__name__)

RELEASE_TIMEOUT = 5.0  # seconds a clean stop waits for the store to take the leases back
STOP_WAIT = 12.0  # seconds to wait for a cancelled poller to log out and record its state (each bounded to 5 s)


@dataclass
class _Held:
    """A mailbox this instance holds the lease of, and its poller."""

    mailbox: Mailbox
    key: str
    tenure: leases.Tenure
    task: asyncio.Task[None]
    poller: Poller
    next_attempt: float  # monotonic: when to renew next (sooner after a failed renewal)


@dataclass(frozen=True)
class _Elsewhere:
    """A mailbox this instance wanted but found held by another one."""

    address: str
    owner: str | None
    expires_at: datetime | None


class Supervisor:
    """Keeps one poller per enabled mailbox this instance holds the lease of."""

    def __init__(
        self,
        *,
        box: SecretBox,
        on_stored: Callable[[RawMessage], None],
        instance_id: str,
        tokens: Tokens | None = None,
        lease_seconds: float = 60.0,
        reconcile_seconds: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._box = box
        self._on_stored = on_stored
        self._tokens = tokens
        self.instance_id = instance_id
        self._ttl = lease_seconds
        self._retry_seconds = min(1.0, lease_seconds / 10)  # between renewals that failed, until the deadline
        self._held: dict[PydanticObjectId, _Held] = {}
        self._elsewhere: dict[PydanticObjectId, _Elsewhere] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._clock = clock or SystemClock()
        self._following = PollingLoop(
            "imap-supervisor",
            self._reconcile_pass,
            interval=reconcile_seconds,
            clock=self._clock,
            on_error=self._reconcile_failed,
            wait_first=True,
        )
        self._reconciling = asyncio.Lock()

    @property
    def pollers(self) -> list[Poller]:
        return [held.poller for held in self._held.values()]

    async def start(self) -> None:
        await self.reconcile()
        self._tasks = [
            self._following.start(),
            asyncio.create_task(self._keep_leases(), name="imap-leases"),
        ]

    def wake(self) -> None:
        """Follow a change to the mailboxes now (the API calls this) instead of at the next reconcile."""
        self._following.wake()

    def status(self) -> list[dict[str, Any]]:
        """Every mailbox this instance polls or found polled elsewhere, with the lease's owner (for /healthz)."""
        polled = [
            {
                "address": held.poller.name,
                "owner": self.instance_id,
                "connected": held.poller.mailbox.state.connected,
                "last_error": held.poller.mailbox.state.last_error,
            }
            for held in self._held.values()
        ]
        elsewhere = [
            {
                "address": seen.address,
                "owner": seen.owner,
                "lease_expires_at": seen.expires_at.isoformat() if seen.expires_at else None,
            }
            for seen in self._elsewhere.values()
        ]
        return polled + elsewhere

    async def _reconcile_pass(self) -> bool:
        await self.reconcile()
        return False

    def _reconcile_failed(self, error: Exception, _failures: int) -> None:
        log.error("imap.reconcile_failed", exc_info=error)

    async def reconcile(self) -> None:
        """Stop pollers of mailboxes gone, disabled or changed; take the leases of the others and poll them."""
        async with self._reconciling:
            wanted = {
                mailbox.id: mailbox
                for mailbox in await mailboxes.list_all()
                if mailbox.enabled and mailbox.id is not None
            }
            for mailbox_id, held in list(self._held.items()):
                current = wanted.get(mailbox_id)
                if current is None or current.updated_at != held.mailbox.updated_at or held.task.done():
                    await self._stop_one(mailbox_id, release=True)
            for mailbox_id in set(self._elsewhere) - set(wanted):
                del self._elsewhere[mailbox_id]
            for mailbox_id, mailbox in wanted.items():
                if mailbox_id not in self._held:
                    await self._try_start(mailbox_id, mailbox)

    async def _try_start(self, mailbox_id: PydanticObjectId, mailbox: Mailbox) -> None:
        key = leases.mailbox_key(mailbox_id)
        sent = self._clock.monotonic()
        lease = await leases.take(key, owner=self.instance_id, ttl=timedelta(seconds=self._ttl), now=utcnow())
        if lease is None:
            holder = await leases.get(key)
            seen = _Elsewhere(mailbox.address, holder.owner if holder else None, holder.expires_at if holder else None)
            if (before := self._elsewhere.get(mailbox_id)) is None or before.owner != seen.owner:
                log.info("imap.polled_elsewhere mailbox=%s owner=%s", mailbox.address, seen.owner)
            self._elsewhere[mailbox_id] = seen
            return
        self._elsewhere.pop(mailbox_id, None)
        tenure = leases.Tenure(self._ttl, confirmed_at=sent)
        if tenure.expired(self._clock.monotonic()):  # answered too late to count on the lease; try again next time
            log.warning("imap.lease_taken_late mailbox=%s after=%.1fs", mailbox.address, self._clock.monotonic() - sent)
            return
        poller = Poller(
            mailbox,
            box=self._box,
            tokens=self._tokens,
            on_stored=self._on_stored,
            on_duty=lambda: not tenure.expired(self._clock.monotonic()),
            clock=self._clock,
        )
        task = asyncio.create_task(poller.run(), name=f"imap:{mailbox.address}")
        self._held[mailbox_id] = _Held(mailbox, key, tenure, task, poller, next_attempt=tenure.renew_at)
        log.info("imap.poller_started mailbox=%s owner=%s lease=%gs", mailbox.address, self.instance_id, self._ttl)

    async def _keep_leases(self) -> None:
        """Renew each held lease every ttl/3 (retrying failures until the deadline), stop pollers that lost it."""
        while True:
            now = self._clock.monotonic()
            wake_at = min(
                (min(held.next_attempt, held.tenure.deadline) for held in self._held.values()),
                default=now + self._ttl / 3,
            )
            await self._clock.sleep(max(0.0, wake_at - now))
            try:
                await self._renew_due()
            except Exception:
                log.exception("imap.lease_keeping_failed")

    async def _renew_due(self) -> None:
        now = self._clock.monotonic()
        due = [(mailbox_id, held) for mailbox_id, held in self._held.items() if held.next_attempt <= now]
        await asyncio.gather(*(self._renew(mailbox_id, held) for mailbox_id, held in due))
        expired = [
            (mailbox_id, held)
            for mailbox_id, held in self._held.items()
            if held.tenure.expired(self._clock.monotonic())
        ]
        for _mailbox_id, held in expired:  # all cancelled at once, before waiting for any of them to wind down
            held.task.cancel()
        for mailbox_id, held in expired:
            log.error(
                "imap.lease_unconfirmed mailbox=%s: no renewal for %.0fs, polling stops before the lease lapses",
                held.poller.name,
                2 * self._ttl / 3,
            )
            await self._stop_one(mailbox_id, release=False)

    async def _renew(self, mailbox_id: PydanticObjectId, held: _Held) -> None:
        sent = self._clock.monotonic()
        try:
            async with asyncio.timeout(max(0.0, held.tenure.deadline - sent)):
                renewed = await leases.renew(
                    held.key, owner=self.instance_id, ttl=timedelta(seconds=self._ttl), now=utcnow()
                )
        except Exception as error:  # the store is away or slow: try again soon, until the deadline
            held.next_attempt = self._clock.monotonic() + self._retry_seconds
            log.warning(
                "imap.lease_renew_failed mailbox=%s reason=%s: %s", held.poller.name, type(error).__name__, error
            )
            return
        if renewed:
            log.debug("imap.lease_renewed mailbox=%s", held.poller.name)
            held.tenure.confirm(sent)
            held.next_attempt = held.tenure.renew_at
            return
        log.warning("imap.lease_lost mailbox=%s: another instance holds it now", held.poller.name)
        if self._held.get(mailbox_id) is held:
            await self._stop_one(mailbox_id, release=False)

    async def _stop_one(self, mailbox_id: PydanticObjectId, *, release: bool) -> None:
        held = self._held.pop(mailbox_id, None)
        if held is None:
            return
        held.task.cancel()
        _done, winding_down = await asyncio.wait({held.task}, timeout=STOP_WAIT)
        if winding_down:  # cancelled, so it imports nothing more; its log-out and last status write still hang
            log.warning("imap.poller_slow_to_stop mailbox=%s", held.poller.name)
        log.info("imap.poller_stopped mailbox=%s", held.poller.name)
        if release:
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT):
                    await leases.release(held.key, owner=self.instance_id)
            except Exception as error:  # it lapses by itself
                log.warning("imap.lease_not_released mailbox=%s reason=%s", held.poller.name, error)

    async def stop(self, *, release: bool = True) -> None:
        """Stop every poller and give their leases back; `release=False` leaves them to lapse, as a crash would."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for held in self._held.values():  # all cancelled at once, then each waited for
            held.task.cancel()
        for mailbox_id in list(self._held):
            await self._stop_one(mailbox_id, release=release)
