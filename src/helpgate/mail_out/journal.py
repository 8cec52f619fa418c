"""The outbound worker's side of its sender journal: group commits of "DATA may begin" and of the 250s.

Each connection asks `begin(mail)` before DATA. Every ask that arrives while a journal write is under way goes
out together in the next one (a group commit), so the worker's connections cost one store write per round
instead of one per mail. The 250s are recorded the same way: `sent(mail, reply)` returns at once, and one bulk
write records the 250s of up to SENT_DELAY seconds (or SENT_GROUP of them) together. A mail stays listed until its
final state is stored, so whatever stops the worker in between, recovery finds it and never sends it again
(mail_out/senders.py): a mail sent but not recorded yet when the worker dies becomes `uncertain`, not resent.
The journal is renewed at least every `renew_seconds`, or recovery takes the worker for stopped and fences it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from beanie import PydanticObjectId

from helpgate.core.clock import utcnow
from helpgate.core.errors import TemporaryDeliveryError
from helpgate.mail_out import deliveries, senders
from helpgate.models import OutboundMail

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # after a failed store write
SENT_DELAY = 1.0  # seconds a 250 may wait to be recorded with later ones (the mail shows `sending` meanwhile)
SENT_GROUP = 50  # 250s that are recorded at once, without waiting for SENT_DELAY


class Fenced(Exception):
    """Recovery voided the claim token this mail was claimed under: it must not begin DATA."""


class SenderJournal:
    def __init__(self, *, renew_seconds: float, on_sent: Callable[[OutboundMail, str], None]) -> None:
        self.token = uuid.uuid4().hex
        self._renew_seconds = renew_seconds
        self._on_sent = on_sent
        self._started: dict[PydanticObjectId, int] = {}  # mail → attempt, until its final state is stored
        self._waiting: list[asyncio.Future[None]] = []
        self._sent: list[tuple[OutboundMail, str, datetime]] = []  # 250s not recorded yet: mail, reply, when
        self._sent_since = 0.0  # monotonic time the oldest 250 not recorded yet arrived
        self._wakeup = asyncio.Event()
        self._written_at = 0.0  # monotonic time of the last journal write that landed
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def unsettled(self) -> int:
        return len(self._started)

    async def open(self) -> None:
        await senders.register(self.token, now=utcnow())
        self._written_at = time.monotonic()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="outbound-journal")

    def begin(self, mail: OutboundMail) -> asyncio.Future[None]:
        """Done once the journal lists the mail durably; fails with Fenced when its claim token is void."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if mail.id is None or mail.claim != self.token:
            future.set_exception(Fenced(mail.key))
            return future
        self._started[mail.id] = mail.attempts
        self._waiting.append(future)
        self._wakeup.set()
        return future

    def settle(self, mail: OutboundMail) -> None:
        """The mail's final state is stored (or it is back in the queue): the next write drops it."""
        if mail.id is not None:
            self._started.pop(mail.id, None)

    def sent(self, mail: OutboundMail, reply: str) -> None:
        """The server answered 250: recorded with the others of the next SENT_DELAY seconds (the mail stays listed
        until then)."""
        if not self._sent:
            self._sent_since = time.monotonic()
        self._sent.append((mail, reply, utcnow()))
        if len(self._sent) == 1 or len(self._sent) >= SENT_GROUP:
            self._wakeup.set()  # the loop's next wait ends when the group is due

    async def close(self, timeout: float) -> None:
        """Record what is pending, write the final list and, when it is empty, retire the journal."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log.warning("outbound.journal_close_timeout pending_sent=%d", len(self._sent))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _sent_due(self) -> bool:
        return bool(self._sent) and (
            self._closing or len(self._sent) >= SENT_GROUP or time.monotonic() - self._sent_since >= SENT_DELAY
        )

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            due = self._renew_seconds - (now - self._written_at)
            if self._sent:
                due = min(due, SENT_DELAY - (now - self._sent_since))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(0.0, due))
            self._wakeup.clear()
            try:
                if self._waiting or self._closing or time.monotonic() - self._written_at >= self._renew_seconds:
                    await self._write()
                if self._sent_due():
                    await self._record_sent()
                if self._closing:
                    if not self._waiting and not self._sent:
                        await self._retire()
                        return
                    continue
            except Exception:
                log.exception("outbound.journal_write_failed")
                self._fail_waiting(TemporaryDeliveryError("cannot record the mail before DATA: store unavailable"))
                if self._closing:
                    return
                await asyncio.sleep(RETRY_SECONDS)
                self._wakeup.set()

    async def _write(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            landed = await senders.write(
                self.token, started=list(self._started.items()), answered=self._answered(), now=utcnow()
            )
        except BaseException:
            self._waiting = waiting + self._waiting
            raise
        if landed:
            self._written_at = time.monotonic()
            for future in waiting:
                if not future.done():
                    future.set_result(None)
            return
        log.error("outbound.fenced token=%s: recovery took this worker for stopped; starting a new journal", self.token)
        for future in waiting:
            if not future.done():
                future.set_exception(Fenced(self.token))
        self._started.clear()
        self.token = uuid.uuid4().hex
        await senders.register(self.token, now=utcnow())
        self._written_at = time.monotonic()

    def _answered(self) -> list[senders.Answered]:
        """The 250s not recorded on their mails yet, as the journal carries them."""
        return [
            senders.Answered(mail=mail.id, attempt=mail.attempts, reply=reply, at=at)
            for mail, reply, at in self._sent
            if mail.id is not None
        ]

    async def _record_sent(self) -> None:
        batch, self._sent = self._sent, []
        if not batch:
            return
        try:
            recorded = await deliveries.mark_sent_many(
                [(mail, reply) for mail, reply, _at in batch],
                now=utcnow(),
                answered_at={mail.id: at for mail, _reply, at in batch if mail.id is not None},
            )
        except BaseException:
            self._sent = batch + self._sent
            raise
        for mail, reply, _at in batch:
            self.settle(mail)
            if mail.id in recorded:
                self._on_sent(mail, reply)
            else:
                log.warning("outbound.sent_unrecorded key=%s: the mail is gone from the queue", mail.key)

    async def _retire(self) -> None:
        await senders.write(self.token, started=list(self._started.items()), answered=self._answered(), now=utcnow())
        if not self._started:
            await senders.retire(self.token)

    def _fail_waiting(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_exception(error)
