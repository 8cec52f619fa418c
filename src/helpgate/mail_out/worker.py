"""The outbound worker: sends queued mail inside the gateway, with retries, and resumes after a restart.

A dispatcher claims batches of due mail (one write claims the batch, atomically, so two workers or two
gateways never send the same mail; one query loads it, and the suppression and stored-reply checks are done
for the whole batch). `connections` senders take the claimed mails one by one, each over its own transport
connection, kept open while there is work. Before DATA a mail must be listed in the worker's journal, and
its 250 is recorded afterwards: both in group commits shared by all the senders (mail_out/journal.py), so the
store sees a few writes per round of mails instead of several per mail. After a failure a mail waits
base·2^(attempt-1) seconds (with jitter, capped) before the next attempt; 5xx answers and spent attempts fail
it for good. Every `lease` seconds what a stopped worker left `sending` is recovered (deliveries.recover).

Delivery is at most once: a mail is listed in the journal before DATA, and one still listed when its worker
stops (the 250 not recorded yet, or the connection lost during DATA) becomes `uncertain` instead of being
sent again. Cut off before it was listed, it is simply queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from helpgate.core import log_context, metrics
from helpgate.core.clock import utcnow
from helpgate.core.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from helpgate.core.loops import Backoff, Clock, PollingLoop, SystemClock
from helpgate.mail_out import compose, deliveries, outbound, suppressions
from helpgate.mail_out.journal import Fenced, SenderJournal
from helpgate.mail_out.transport import BeforeData, Connection, Transport
from helpgate.models import OutboundMail

log = logging.getLogger(__name__)

ORPHAN_SECONDS = 60.0  # a mail whose reply is still not stored after this long lost it in a crash
POLL_SECONDS = 5.0  # look for mail queued by other processes (the CLI, another gateway) this often
IDLE_SECONDS = 2.0  # a sender with nothing to do this long closes its connection
BATCH = 50  # due mails claimed per query; the next batch is claimed when half of one is left
DISPATCH_BACKOFF = Backoff(base=1.0, cap=30.0, jitter=(1.0, 1.0))  # after claims failed in a row: 1, 2, 4 ... 30 s


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 10
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """base·2^(attempt-1), capped, with ±25% jitter so a crowd of retries does not return together."""
        return Backoff(base=self.base_seconds, cap=self.cap_seconds, rng=self.rng).delay(attempt)


#: The transport of a mailbox that sends its own mail (its SMTP server, as that mailbox); None: the global relay.
Routes = Callable[[PydanticObjectId], Awaitable[Transport | None]]


class OutboundWorker:
    def __init__(
        self,
        *,
        transport: Transport,
        loop_marker: str,
        connections: int = 4,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 300.0,
        batch: int = BATCH,
        clock: Clock | None = None,
        routes: Routes | None = None,
    ) -> None:
        self.transport = transport
        self._routes = routes
        self._loop_marker = loop_marker
        self._connections = max(1, connections)
        self._retry = retry or RetryPolicy()
        self._lease = timedelta(seconds=lease_seconds)
        self._batch = max(1, batch)
        self._journal = SenderJournal(renew_seconds=lease_seconds / 3, on_sent=self._recorded)
        self._clock = clock or SystemClock()
        self._dispatching = PollingLoop(
            "outbound-dispatch",
            self._dispatch,
            interval=POLL_SECONDS,
            clock=self._clock,
            backoff=DISPATCH_BACKOFF,
            on_error=self._dispatch_failed,
        )
        self._recovering = PollingLoop(
            "outbound-recover",
            self._recover,
            interval=lease_seconds,
            clock=self._clock,
            on_error=self._recover_failed,
            wait_first=True,
        )
        self._room = asyncio.Event()  # the senders took enough claimed mail for the next batch
        self._work: asyncio.Queue[OutboundMail | None] = asyncio.Queue()  # None: a sender stops
        self._claimed: dict[PydanticObjectId, OutboundMail] = {}  # claimed, not yet taken by a sender
        self._unscreened: set[PydanticObjectId] = set()  # handed over (`take`): suppressions not checked yet
        self._stranded: dict[PydanticObjectId, tuple[OutboundMail, bool]] = {}  # (mail, DATA begun)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.busy = 0
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Mail was queued: look now instead of at the next poll."""
        self._dispatching.wake()

    def claim(self, now: datetime) -> tuple[str, datetime] | None:
        """The claim a mail queued in this process now is stored under, to be handed over with `take`; None
        while the worker is not running or has a batch waiting already (the mail is queued then)."""
        if not self._tasks or self._stopping or len(self._claimed) >= self._batch:
            return None
        return self._journal.token, now + self._lease

    def take(self, mail: OutboundMail, *, screened: bool = False) -> None:
        """A mail stored under a `claim` of this worker: sent like a claimed one, its suppressions checked
        first unless `screened`. Should the worker have stopped meanwhile, recovery queues it again (its
        journal is retired)."""
        assert mail.id is not None
        if not self._tasks or self._stopping:
            return
        self._claimed[mail.id] = mail
        if not screened:
            self._unscreened.add(mail.id)
        self._work.put_nowait(mail)

    async def start(self) -> None:
        self._journal = SenderJournal(renew_seconds=self._lease.total_seconds() / 3, on_sent=self._recorded)
        await self._journal.open()
        await deliveries.recover(now=utcnow(), lease=self._lease)
        self._stopping = False
        self._work = asyncio.Queue()
        self._claimed = {}
        self._unscreened = set()
        self._tasks = [self._dispatching.start()]
        self._tasks += [
            asyncio.create_task(self._sender(index), name=f"outbound-{index}") for index in range(self._connections)
        ]
        self._recovering.start()
        log.info("outbound.started transport=%s connections=%d", self.transport.description, self._connections)

    async def stop(self, timeout: float) -> None:
        """Let mail being sent finish (up to `timeout`); what is cut before DATA goes back to the queue."""
        await self._recovering.stop()
        if not self._tasks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stopping = True
        while not self._work.empty():  # claimed but not taken: released below
            self._work.get_nowait()
        for _ in range(self._connections):
            self._work.put_nowait(None)
        self._dispatching.finish()
        self._room.set()
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if pending:
            log.warning("outbound.stop_timeout cut=%d", len(pending))
        self._tasks = []
        unsent, self._claimed = list(self._claimed.values()), {}
        if unsent:
            now = utcnow()
            with contextlib.suppress(Exception):
                await deliveries.release_many(unsent, now=now, detail="worker stopped before DATA: queued again")
        await self._journal.close(max(1.0, deadline - loop.time()))

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "transport": self.transport.description,
            "busy": self.busy,
            "sent": self.sent,
            "failed": self.failed,
        }

    async def _recover(self) -> bool:
        """Every `lease` seconds: settle the outcomes the store refused, queue again what a stopped worker left."""
        await self._settle_stranded()
        requeued, _uncertain = await deliveries.recover(now=utcnow(), lease=self._lease)
        if requeued:
            self.wake()
        return False

    def _recover_failed(self, error: Exception, _failures: int) -> None:
        log.error("outbound.recover_failed", exc_info=error)

    async def _dispatch(self) -> bool:
        """Claim a batch of due mail (one write each, checks included) while the senders run low. With nothing
        due, the dispatcher waits until woken, the next retry falls due, or the next poll."""
        if len(self._claimed) > self._batch // 2:
            self._room.clear()
            await self._room.wait()
            return True
        if await self._claim():
            return True
        due = await deliveries.next_due()
        if due is not None:
            self._dispatching.due_in((due - utcnow()).total_seconds())
        return False

    def _dispatch_failed(self, error: Exception, failures: int) -> None:
        # The store is away, or a bug: never stop dispatching; try again after a pause (DISPATCH_BACKOFF).
        log.error("outbound.dispatch_error failures=%d", failures, exc_info=error)

    async def _claim(self) -> int:
        now = utcnow()
        batch = await deliveries.claim_batch(
            token=self._journal.token, now=now, lease=self._lease, limit=self._batch - len(self._claimed)
        )
        if not batch:
            return 0
        refs = [mail.message_ref for mail in batch if mail.message_ref is not None]
        stored = await deliveries.messages_stored(refs)
        suppressed = await suppressions.reasons(sorted({address for mail in batch for address in mail.recipients}))
        for mail in batch:
            if mail.message_ref is not None and mail.message_ref not in stored:
                await self._unstored(mail)
            elif await self._suppressed(mail, suppressed):
                pass
            elif self._stopping:
                await deliveries.release(mail, at=now, now=utcnow(), detail="worker stopped before DATA: queued again")
            else:
                assert mail.id is not None
                self._claimed[mail.id] = mail
                self._work.put_nowait(mail)
        return len(batch)

    async def _suppressed(self, mail: OutboundMail, suppressed: dict[str, str]) -> bool:
        """Recorded suppressed, when a recipient is in `suppressed` (address → reason)."""
        reasons = [
            f"{address} is suppressed ({suppressed[address]})" for address in mail.recipients if address in suppressed
        ]
        if not reasons:
            return False
        await deliveries.mark_suppressed(mail, reason="; ".join(reasons), now=utcnow())
        log.info("outbound.suppressed key=%s reason=%s", mail.key, "; ".join(reasons))
        return True

    async def _unstored(self, mail: OutboundMail) -> None:
        now = utcnow()
        if (now - mail.created_at).total_seconds() > ORPHAN_SECONDS:
            await deliveries.mark_cancelled(mail, reason="its reply was never stored", now=now)
            log.warning("outbound.cancelled key=%s reason=reply never stored", mail.key)
        else:
            await deliveries.release(mail, at=now + timedelta(seconds=1), now=now, detail="reply not stored yet")

    async def _sender(self, index: int) -> None:
        relay = self.transport.connect()
        # A session of its own per transport: the relay's, and each sending mailbox's (by the transport object,
        # so a mailbox whose settings changed gets a new session).
        connections: dict[Transport, Connection] = {self.transport: relay}
        try:
            while True:
                try:
                    mail = await asyncio.wait_for(self._work.get(), IDLE_SECONDS)
                except TimeoutError:
                    for connection in connections.values():
                        await connection.close()  # do not hold an idle session open at the relay
                    connections = {self.transport: relay}
                    continue
                if mail is None:
                    return
                if mail.id is None or self._claimed.pop(mail.id, None) is None:
                    continue  # released by stop
                if len(self._claimed) <= self._batch // 2:
                    self._room.set()
                self.busy += 1
                try:
                    with log_context.scope(ticket=mail.ticket_number, message_id=mail.key):
                        if mail.id in self._unscreened:
                            self._unscreened.discard(mail.id)
                            if await self._suppressed(mail, await suppressions.reasons(sorted(mail.recipients))):
                                continue
                        transport = await self._transport(mail)
                        if transport not in connections:
                            connections[transport] = transport.connect()
                        await self._deliver(mail, connections[transport])
                except Exception:
                    log.exception("outbound.sender_error sender=%d key=%s", index, mail.key)
                finally:
                    self.busy -= 1
        finally:
            for connection in connections.values():
                await connection.close()

    async def _transport(self, mail: OutboundMail) -> Transport:
        """The mailbox's own SMTP for mail it sends; the global relay for the rest, and for mail of a mailbox that
        has no SMTP settings (any more)."""
        if mail.via_mailbox is None or self._routes is None:
            return self.transport
        return await self._routes(mail.via_mailbox) or self.transport

    async def _deliver(self, mail: OutboundMail, connection: Connection) -> None:
        # Listed in the journal while the mail is composed and addressed: the group write overlaps that work.
        listed = self._journal.begin(mail)
        started = False

        async def before_data() -> None:
            nonlocal started
            await listed
            started = True

        try:
            await self._attempt(mail, connection, before_data, lambda: started)
        except Exception:
            # The store failed while the outcome was recorded: try again with each recovery round.
            log.exception("outbound.outcome_unrecorded key=%s", mail.key)
            assert mail.id is not None
            self._stranded[mail.id] = (mail, started)
        finally:
            if listed.done() and not listed.cancelled():
                listed.exception()  # retrieved, so a failure nobody awaited is not reported again
            elif not listed.done():
                listed.cancel()

    async def _attempt(
        self, mail: OutboundMail, connection: Connection, before_data: BeforeData, started: Callable[[], bool]
    ) -> None:
        try:
            data = mail.data
            if data is None:  # with attachments (or queued by an older version): composed now
                data = compose.build(mail, await outbound.read_files(mail), loop_marker=self._loop_marker).as_bytes()
        except Exception as error:
            log.exception("outbound.compose_failed key=%s", mail.key)
            await self._failed(mail, TemporaryDeliveryError(f"cannot compose: {error}"), started=False)
            return
        try:
            reply = await connection.deliver(
                data, sender=mail.mail_from, recipients=mail.recipients, before_data=before_data
            )
        except Fenced:
            log.warning("outbound.claim_lost key=%s: recovery took this worker for stopped", mail.key)
            await self._give_back(mail)
        except DeliveryError as error:
            await self._failed(mail, error, started=started())
        except asyncio.CancelledError:
            if not started():
                await asyncio.shield(self._give_back(mail))
            raise
        except Exception as error:
            log.exception("outbound.send_error key=%s", mail.key)
            await self._failed(mail, TemporaryDeliveryError(f"{type(error).__name__}: {error}"), started=started())
        else:
            self._journal.sent(mail, reply)

    async def _settle_stranded(self) -> None:
        """Outcomes the store refused earlier: DATA begun means maybe delivered, else back to the queue."""
        for mail_id, (mail, started) in list(self._stranded.items()):
            now = utcnow()
            try:
                if started:
                    await deliveries.mark_uncertain(mail, error="its outcome could not be recorded", now=now)
                else:
                    await deliveries.release(mail, at=now, now=now, detail="its outcome could not be recorded")
            except Exception:
                log.exception("outbound.still_stranded key=%s", mail.key)
                continue
            del self._stranded[mail_id]
            self._journal.settle(mail)

    def _recorded(self, mail: OutboundMail, reply: str) -> None:
        self.sent += 1
        metrics.OUTBOUND_SENT.inc()
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
            await deliveries.mark_uncertain(mail, error=error.detail, now=now)
            self._journal.settle(mail)
            log.error("outbound.uncertain key=%s reason=%s", mail.key, error.detail)
            return
        if isinstance(error, PermanentDeliveryError) or mail.attempts >= self._retry.max_attempts:
            why = error.detail
            if not isinstance(error, PermanentDeliveryError):
                why = f"gave up after {mail.attempts} attempts: {why}"
            await deliveries.mark_failed(mail, error=why, reply=error.reply, now=now)
            self._journal.settle(mail)
            self.failed += 1
            refused = isinstance(error, PermanentDeliveryError)
            metrics.OUTBOUND_FAILED.labels(reason="refused" if refused else "attempts_spent").inc()
            log.error("outbound.failed key=%s ticket=%s reason=%s", mail.key, mail.ticket_number, why)
            return
        delay = self._retry.delay(mail.attempts)
        at = now + timedelta(seconds=delay)
        await deliveries.mark_retry(mail, error=error.detail, reply=error.reply, at=at, now=now)
        self._journal.settle(mail)
        if delay < POLL_SECONDS:  # due before the next poll: look then (the dispatcher may be waiting already)
            self._dispatching.wake_in(delay)
        log.warning(
            "outbound.retry key=%s attempt=%d at=%s reason=%s", mail.key, mail.attempts, at.isoformat(), error.detail
        )

    async def _give_back(self, mail: OutboundMail) -> None:
        """A mail that never reached DATA goes back to the queue (a no-op when the claim is no longer ours)."""
        now = utcnow()
        await deliveries.release(mail, at=now, now=now, detail="worker stopped before DATA: queued again")
        self._journal.settle(mail)
