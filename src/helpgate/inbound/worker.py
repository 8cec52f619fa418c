"""Processes stored raw mail in arrival order, off the SMTP path; resumes what a restart interrupted.

Two lanes, so one heavy message cannot hold up the rest: mail over HEAVY_BYTES, or with more than HEAVY_PARTS MIME
parts (each attachment is written to the store on its own), is handed from the ordinary lane to a lane of its own
and processed there, one at a time, while ordinary mail goes on in arrival order.

Several instances may share one store. Each message is processed under a claim written on the message itself
(`claimed_by`, `claim_until`: raw_messages.claim, one write that also reads it), so two instances never process
it at once, and a sweep every SWEEP_SECONDS takes up mail left `received` and unclaimed for over STALE_SECONDS:
mail queued in an instance that died (after its 250 or its \\Seen) is taken up by the others (the message it was
processing once its claim lapses), and a busy instance's backlog is shared. A claim that lapses mid-processing
(`claim_seconds`) only risks work done twice, which dedupe (Message-ID and fingerprint) turns into one message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from beanie import PydanticObjectId
from pymongo.errors import ConnectionFailure

from helpgate.core.clock import utcnow
from helpgate.core.loops import Backoff, Clock, PollingLoop, SystemClock
from helpgate.inbound import pipeline, raw_messages
from helpgate.models import RawMessage

log = logging.getLogger(__name__)

RETRY_BASE = 1.0  # seconds before a message is tried again while the store is away, doubling up to RETRY_CAP
RETRY_CAP = 30.0
RETRIES = 6  # then it is left for the next start (or another instance's sweep)
SWEEP_SECONDS = 15.0  # how often to look for mail no instance is processing
STALE_SECONDS = 30.0  # mail `received` this long is taken up by whichever instance sweeps first
SWEEP_LIMIT = 100  # messages taken up per sweep
SWEEP_SCAN = 1000  # stale messages looked at per sweep, oldest first, to find those nobody is processing
HEAVY_BYTES = 2 * 1024 * 1024
HEAVY_PARTS = 50
HELD_MESSAGES = 64  # messages handed over as stored, held in memory until processed (small ones only)
HELD_BYTES = 256 * 1024


def is_heavy(raw: RawMessage) -> bool:
    """Mail whose processing takes long: big, or with many parts (boundary lines, counted without parsing)."""
    if raw.size > HEAVY_BYTES:
        return True
    return raw.data is not None and raw.data.count(b"\n--") > HEAVY_PARTS


class InboundWorker:
    def __init__(self, *, instance_id: str = "local", claim_seconds: float = 120.0, clock: Clock | None = None) -> None:
        self._queue: asyncio.Queue[PydanticObjectId | None] = asyncio.Queue()
        self._heavy: asyncio.Queue[PydanticObjectId | None] = asyncio.Queue()
        self._queued: set[PydanticObjectId] = set()
        self._handed_over: set[PydanticObjectId] = set()  # moved to the heavy lane: still queued
        self._held: dict[PydanticObjectId, RawMessage] = {}  # taken as stored under our claim (`take`)
        self._task: asyncio.Task[None] | None = None
        self._heavy_task: asyncio.Task[None] | None = None
        self._clock = clock or SystemClock()
        self._retry = Backoff(base=RETRY_BASE, cap=RETRY_CAP)
        self._sweeping = PollingLoop(
            "inbound-sweep",
            self._sweep,
            interval=SWEEP_SECONDS,
            clock=self._clock,
            on_error=self._sweep_failed,
            wait_first=True,
        )
        self._policy = pipeline.Policy()
        self._owner = instance_id
        self._claim = timedelta(seconds=claim_seconds)
        self.processed = 0

    def submit(self, raw_id: PydanticObjectId) -> None:
        if raw_id not in self._queued:
            self._queued.add(raw_id)
            self._queue.put_nowait(raw_id)

    def claim_new(self) -> tuple[str, datetime] | None:
        """The claim a message received now is stored under, to be handed over by `take`: this instance's,
        while the worker runs and holds few messages in memory (None: stored unclaimed, claimed when taken up)."""
        if self._task is None or len(self._held) >= HELD_MESSAGES:
            return None
        return self._owner, utcnow() + self._claim

    def take(self, raw: RawMessage) -> None:
        """A message just stored: processed in turn; one stored under `claim_new` without being claimed again
        while its claim is fresh."""
        assert raw.id is not None
        if (
            raw.claimed_by == self._owner
            and raw.claim_until is not None
            and raw.size <= HELD_BYTES
            and self._task is not None
        ):
            self._held[raw.id] = raw
        self.submit(raw.id)

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + self._heavy.qsize()

    async def start(self, *, policy: pipeline.Policy | None = None) -> None:
        self._policy = policy or pipeline.Policy()
        for raw in await raw_messages.unprocessed():
            assert raw.id is not None
            self.submit(raw.id)
        if self._queue.qsize():
            log.info("inbound.resume pending=%d", self._queue.qsize())
        self._task = asyncio.create_task(self._run(self._queue, heavy_lane=False), name="inbound-worker")
        self._heavy_task = asyncio.create_task(self._run(self._heavy, heavy_lane=True), name="inbound-heavy")
        self._sweeping.start()

    async def stop(self, timeout: float) -> None:
        """Finish what is queued (up to `timeout`); the rest stays `received` and resumes on next start."""
        await self._sweeping.stop()
        tasks = [task for task in (self._task, self._heavy_task) if task is not None]
        if not tasks:
            return
        self._queue.put_nowait(None)
        self._heavy.put_nowait(None)
        _, pending = await asyncio.wait([asyncio.shield(task) for task in tasks], timeout=timeout)
        if pending:
            log.warning("inbound.stop_timeout left=%d: resumed on next start", self.backlog)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._heavy_task = None
        self._held.clear()

    async def idle(self) -> None:
        """Wait until everything submitted so far is processed (tests and benchmarks)."""
        await self._queue.join()
        await self._heavy.join()

    async def _run(self, queue: asyncio.Queue[PydanticObjectId | None], *, heavy_lane: bool) -> None:
        while True:
            raw_id = await queue.get()
            try:
                if raw_id is None:
                    return
                await self._process_with_retry(raw_id, heavy_lane=heavy_lane)
            finally:
                if raw_id is not None and (heavy_lane or raw_id not in self._handed_over):
                    self._queued.discard(raw_id)  # done with it; one handed over stays queued in the heavy lane
                    self._handed_over.discard(raw_id)
                queue.task_done()

    async def _sweep(self) -> bool:
        """Every SWEEP_SECONDS, however much it took up: that mail is queued, not processed yet."""
        await self.sweep_once()
        return False

    def _sweep_failed(self, error: Exception, _failures: int) -> None:
        log.warning("inbound.sweep_failed reason=%s", error)  # the store is away: the next sweep finds the same mail

    async def sweep_once(self) -> int:
        """Take up to SWEEP_LIMIT stale `received` messages that neither this instance nor a live claim
        elsewhere has; returns how many. Looking past those others hold keeps the mail of a dead instance
        from waiting behind a busy instance's backlog."""
        now = utcnow()
        stale = await raw_messages.received_unclaimed(now - timedelta(seconds=STALE_SECONDS), now=now, limit=SWEEP_SCAN)
        fresh = [raw_id for raw_id in stale if raw_id not in self._queued][:SWEEP_LIMIT]
        if fresh:
            log.info("inbound.sweep taken_up=%d", len(fresh))
        for raw_id in fresh:
            self.submit(raw_id)
        return len(fresh)

    async def _process_with_retry(self, raw_id: PydanticObjectId, *, heavy_lane: bool = False) -> None:
        for attempt in range(1, RETRIES + 2):
            try:
                await self._process_claimed(raw_id, heavy_lane=heavy_lane)
                return
            except ConnectionFailure as error:
                if attempt > RETRIES:
                    log.error("inbound.store_unavailable raw=%s attempts=%d: left for next start", raw_id, attempt)
                    return
                delay = self._retry.delay(attempt)
                log.warning("inbound.retry raw=%s attempt=%d in=%.0fs reason=%s", raw_id, attempt, delay, error)
                await self._clock.sleep(delay)

    async def _process_claimed(self, raw_id: PydanticObjectId, *, heavy_lane: bool = False) -> None:
        """Process the message unless another instance has it, or it was processed meanwhile; a heavy one met in
        the ordinary lane goes to the heavy lane instead."""
        now = utcnow()
        held = self._held.pop(raw_id, None)
        if held is not None and held.claim_until is not None and held.claim_until - now >= self._claim * 2 / 3:
            raw: RawMessage | None = held  # stored under this instance's claim a moment ago
        else:
            raw = await raw_messages.claim(raw_id, owner=self._owner, ttl=self._claim, now=now)
        if raw is None:
            log.info("inbound.claimed_elsewhere raw=%s (or processed already)", raw_id)
            return
        if not heavy_lane and is_heavy(raw):
            # Handed over under this instance's claim: the heavy lane claims it again as the same owner.
            log.info("inbound.heavy raw=%s size=%d: processed in its own lane", raw_id, raw.size)
            self._handed_over.add(raw_id)
            self._heavy.put_nowait(raw_id)
            return
        await pipeline.process(raw, policy=self._policy)  # its outcome ends the claim
        self.processed += 1
