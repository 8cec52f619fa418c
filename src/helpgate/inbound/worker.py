"""Processes stored raw mail in arrival order, off the SMTP path; resumes what a restart interrupted."""

from __future__ import annotations

import asyncio
import logging

from beanie import PydanticObjectId
from pymongo.errors import ConnectionFailure

from helpgate.core.services import raw_messages
from helpgate.inbound import pipeline

log = logging.getLogger(__name__)

RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class InboundWorker:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[PydanticObjectId | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._policy = pipeline.Policy()
        self.processed = 0

    def submit(self, raw_id: PydanticObjectId) -> None:
        self._queue.put_nowait(raw_id)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def start(self, *, policy: pipeline.Policy | None = None) -> None:
        self._policy = policy or pipeline.Policy()
        for raw in await raw_messages.unprocessed():
            assert raw.id is not None
            self.submit(raw.id)
        if self._queue.qsize():
            log.info("inbound.resume pending=%d", self._queue.qsize())
        self._task = asyncio.create_task(self._run(), name="inbound-worker")

    async def stop(self, timeout: float) -> None:
        """Finish what is queued (up to `timeout`); the rest stays `received` and resumes on next start."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("inbound.stop_timeout left=%d: resumed on next start", self._queue.qsize())
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def idle(self) -> None:
        """Wait until everything submitted so far is processed (tests and benchmarks)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            raw_id = await self._queue.get()
            try:
                if raw_id is None:
                    return
                await self._process_with_retry(raw_id)
            finally:
                self._queue.task_done()

    async def _process_with_retry(self, raw_id: PydanticObjectId) -> None:
        for attempt, delay in enumerate((*RETRY_SECONDS, None), start=1):
            try:
                raw = await raw_messages.get(raw_id)
                if raw is not None:
                    await pipeline.process(raw, policy=self._policy)
                    self.processed += 1
                return
            except ConnectionFailure as error:
                if delay is None:
                    log.error("inbound.store_unavailable raw=%s attempts=%d: left for next start", raw_id, attempt)
                    return
                log.warning("inbound.retry raw=%s attempt=%d in=%.0fs reason=%s", raw_id, attempt, delay, error)
                await asyncio.sleep(delay)
