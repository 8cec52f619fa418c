"""Work a route starts without waiting for it: the answer goes out at once, whatever the work finds.

Password reset and sign-up answer alike for any address, so that nobody learns which addresses have accounts;
doing an address's work before answering let the time of the answer tell instead (a reset took 150-290 ms for
an account, 9 ms for an unknown address: issue 14, finding 11). Their routes hand that work over here. Each
piece runs in a task of its own and its failure is logged there (an edge: nobody is waiting for it);
`idle` waits until all of it is done, and `stop` gives it a grace period at shutdown, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class DeferredWork:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None], *, what: str) -> None:
        """Run `work` in a task of its own; the caller goes on at once."""
        task = asyncio.get_running_loop().create_task(self._run(work, what), name=f"deferred:{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: work.close())  # cancelled before it began: never awaited, closed

    @staticmethod
    async def _run(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception:
            log.exception("api.deferred_failed what=%s", what)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until every piece started so far, and any it started meanwhile, is done."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self, grace: float) -> None:
        """Let the work finish within `grace` seconds; cancel what is left."""
        if not self._tasks:
            return
        _done, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("api.deferred_cancelled count=%d: still running after %.1f s", len(late), grace)
