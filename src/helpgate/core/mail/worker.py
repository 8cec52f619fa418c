"""The outbound worker: sends queued mail inside the gateway, with retries, and resumes after a restart.

A dispatcher plans batches of due mail (one query, with the suppression and stored-reply checks done for the
whole batch); `connections` senders each claim one planned mail at a time (atomically, so two workers or two
gateways never send the same mail) and keep their own transport connection open while there is work. After a failure a
mail waits base·2^(attempt-1) seconds (with jitter, capped) before the next attempt; 5xx answers and spent
attempts fail it for good. Every `lease` seconds mail left `sending` by a stopped worker is recovered
(see outbound.recover).

Delivery is at most once: the mail is marked just before DATA, and a connection lost after that mark
leaves the mail `uncertain` instead of sending it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from helpgate.core.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from helpgate.core.mail import compose
from helpgate.core.mail.transport import Connection, Transport
from helpgate.core.models import OutboundMail
from helpgate.core.models.clock import utcnow
from helpgate.core.services import outbound, suppressions

log = logging.getLogger(__name__)

ORPHAN_SECONDS = 60.0  # a mail whose reply is still not stored after this long lost it in a crash
POLL_SECONDS = 5.0  # look for mail queued by other processes (the CLI, another gateway) this often
IDLE_SECONDS = 2.0  # a sender with nothing to do this long closes its connection
BATCH = 50  # due mails planned per query


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempt: int) -> float:
        """base·2^(attempt-1), capped, with ±25% jitter so a crowd of retries does not return together."""
        delay = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        return delay * random.uniform(0.75, 1.25)


class ClaimLost(Exception):
    """Another worker holds the mail now (our lease expired): stop before DATA."""


@dataclass(frozen=True)
class Verdict:
    """What the dispatcher found out about a due mail before handing it to a sender."""

    due: outbound.Due
    unstored: bool = False  # its reply is not (yet) stored
    suppressed: str | None = None  # why a recipient must not be mailed


class OutboundWorker:
    def __init__(
        self,
        *,
        transport: Transport,
        loop_marker: str,
        connections: int = 4,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        self.transport = transport
        self._loop_marker = loop_marker
        self._connections = max(1, connections)
        self._retry = retry or RetryPolicy()
        self._lease = timedelta(seconds=lease_seconds)
        self._token = uuid.uuid4().hex
        self._wakeup = asyncio.Event()
        self._work: asyncio.Queue[Verdict | None] = asyncio.Queue()  # None: a sender stops
        self._tasks: list[asyncio.Task[None]] = []
        self._recovery: asyncio.Task[None] | None = None
        self._stopping = False
        self.busy = 0
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Mail was queued: look now instead of at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        await outbound.recover(now=utcnow())
        self._stopping = False
        self._work = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._dispatcher(), name="outbound-dispatch")]
        self._tasks += [
            asyncio.create_task(self._sender(index), name=f"outbound-{index}") for index in range(self._connections)
        ]
        self._recovery = asyncio.create_task(self._recoverer(), name="outbound-recover")
        log.info("outbound.started transport=%s connections=%d", self.transport.description, self._connections)

    async def stop(self, timeout: float) -> None:
        """Let mail being sent finish (up to `timeout`); what is cut before DATA goes back to the queue."""
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
            self._recovery = None
        if not self._tasks:
            return
        self._stopping = True
        while not self._work.empty():  # planned but not claimed: they stay queued in the store
            self._work.get_nowait()
            self._work.task_done()
        for _ in range(self._connections):
            self._work.put_nowait(None)
        self.wake()
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if pending:
            log.warning("outbound.stop_timeout cut=%d", len(pending))
        self._tasks = []

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "transport": self.transport.description,
            "busy": self.busy,
            "sent": self.sent,
            "failed": self.failed,
        }

    async def _recoverer(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._lease.total_seconds())
            try:
                requeued, _uncertain = await outbound.recover(now=utcnow())
            except Exception:
                log.exception("outbound.recover_failed")
                continue
            if requeued:
                self.wake()

    async def _dispatcher(self) -> None:
        """Plan batches of due mail (one query each, checks included) and hand them to the senders."""
        failures = 0
        while not self._stopping:
            self._wakeup.clear()
            try:
                planned = await self._plan()
                failures = 0
            except Exception:
                # The store is away, or a bug: never stop dispatching; try again after a pause.
                failures += 1
                log.exception("outbound.dispatch_error failures=%d", failures)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            if planned:
                await self._work.join()  # the next query must not see this batch again
            else:
                await self._sleep()

    async def _plan(self) -> int:
        batch = await outbound.due(now=utcnow(), limit=BATCH)
        if not batch:
            return 0
        refs = [due.message_ref for due in batch if due.message_ref is not None]
        stored = await outbound.messages_stored(refs)
        suppressed = await suppressions.reasons(sorted({address for due in batch for address in due.recipients}))
        if self._stopping:
            return 0  # the senders are gone; the batch stays queued in the store
        for due in batch:
            reasons = [
                f"{address} is suppressed ({suppressed[address]})"
                for address in due.recipients
                if address in suppressed
            ]
            unstored = due.message_ref is not None and due.message_ref not in stored
            self._work.put_nowait(Verdict(due=due, unstored=unstored, suppressed="; ".join(reasons) or None))
        return len(batch)

    async def _sleep(self) -> None:
        """Until woken, the next retry falls due, or the next poll."""
        timeout = POLL_SECONDS
        due = await outbound.next_due()
        if due is not None:
            timeout = max(0.0, min(timeout, (due - utcnow()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _sender(self, index: int) -> None:
        connection = self.transport.connect()
        try:
            while not self._stopping:
                try:
                    verdict = await asyncio.wait_for(self._work.get(), IDLE_SECONDS)
                except TimeoutError:
                    await connection.close()  # do not hold an idle session open at the relay
                    continue
                if verdict is None:
                    self._work.task_done()
                    return
                self.busy += 1
                try:
                    await self._handle(verdict, connection)
                except Exception:
                    log.exception("outbound.sender_error sender=%d mail=%s", index, verdict.due.id)
                finally:
                    self.busy -= 1
                    self._work.task_done()
        finally:
            await connection.close()

    async def _handle(self, verdict: Verdict, connection: Connection) -> None:
        mail = await outbound.claim(token=self._token, now=utcnow(), lease=self._lease, mail_id=verdict.due.id)
        if mail is None:
            return  # another worker took it first
        now = utcnow()
        if verdict.unstored:
            if (now - mail.created_at).total_seconds() > ORPHAN_SECONDS:
                await outbound.mark_cancelled(mail, reason="its reply was never stored", now=now)
                log.warning("outbound.cancelled key=%s reason=reply never stored", mail.key)
            else:
                await outbound.release(mail, at=now + timedelta(seconds=1), now=now, detail="reply not stored yet")
            return
        if verdict.suppressed:
            await outbound.mark_suppressed(mail, reason=verdict.suppressed, now=now)
            log.info("outbound.suppressed key=%s reason=%s", mail.key, verdict.suppressed)
            return
        await self._deliver(mail, connection)

    async def _deliver(self, mail: OutboundMail, connection: Connection) -> None:
        started = False

        async def before_data() -> None:
            nonlocal started
            if not await outbound.begin_data(mail, now=utcnow()):
                raise ClaimLost(mail.key)
            started = True

        try:
            data = compose.build(mail, await outbound.read_files(mail), loop_marker=self._loop_marker).as_bytes()
        except Exception as error:
            log.exception("outbound.compose_failed key=%s", mail.key)
            await self._failed(mail, TemporaryDeliveryError(f"cannot compose: {error}"), started=False)
            return
        try:
            reply = await connection.deliver(
                data, sender=mail.mail_from, recipients=mail.recipients, before_data=before_data
            )
        except ClaimLost:
            log.warning("outbound.claim_lost key=%s: another worker has it", mail.key)
        except DeliveryError as error:
            await self._failed(mail, error, started=started)
        except asyncio.CancelledError:
            if not started:
                await asyncio.shield(self._give_back(mail))
            raise
        else:
            if await outbound.mark_sent(mail, reply=reply, now=utcnow()):
                self.sent += 1
                log.info(
                    "outbound.sent key=%s ticket=%s to=%s attempt=%d reply=%s",
                    mail.key,
                    mail.ticket_number,
                    ",".join(mail.recipients),
                    mail.attempts,
                    reply,
                )

    async def _failed(self, mail: OutboundMail, error: DeliveryError, *, started: bool) -> None:
        now = utcnow()
        if isinstance(error, TemporaryDeliveryError) and started and error.reply is None:
            await outbound.mark_uncertain(mail, error=error.detail, now=now)
            log.error("outbound.uncertain key=%s reason=%s", mail.key, error.detail)
            return
        if isinstance(error, PermanentDeliveryError) or mail.attempts >= self._retry.max_attempts:
            why = error.detail
            if not isinstance(error, PermanentDeliveryError):
                why = f"gave up after {mail.attempts} attempts: {why}"
            await outbound.mark_failed(mail, error=why, reply=error.reply, now=now)
            self.failed += 1
            log.error("outbound.failed key=%s ticket=%s reason=%s", mail.key, mail.ticket_number, why)
            return
        at = now + timedelta(seconds=self._retry.delay(mail.attempts))
        await outbound.mark_retry(mail, error=error.detail, reply=error.reply, at=at, now=now)
        log.warning(
            "outbound.retry key=%s attempt=%d at=%s reason=%s", mail.key, mail.attempts, at.isoformat(), error.detail
        )

    async def _give_back(self, mail: OutboundMail) -> None:
        now = utcnow()
        with contextlib.suppress(Exception):
            await outbound.release(mail, at=now, now=now, detail="worker stopped before DATA: queued again")
