"""A value read from the store and reused for a few seconds, per database: the catalogs every triage reads and
admins rarely change. A change made through this process is seen at once (`forget`); one made through another
instance within `seconds`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


class Recent[T]:
    def __init__(
        self, load: Callable[[], Awaitable[T]], *, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._load = load
        self._seconds = seconds
        self._clock = clock
        self._kept: dict[str, tuple[float, T]] = {}  # database name -> (read until, value)
        self._forgotten = 0  # times forget was called

    async def get(self, database: str) -> T:
        now = self._clock()
        kept = self._kept.get(database)
        if kept is not None and now < kept[0]:
            return kept[1]
        forgotten = self._forgotten
        value = await self._load()
        if self._forgotten != forgotten:  # a change was made while this read: what it read may predate it
            return value
        self._kept = {name: entry for name, entry in self._kept.items() if now < entry[0]}  # drop the stale
        self._kept[database] = (now + self._seconds, value)
        return value

    def forget(self, database: str) -> None:
        self._kept.pop(database, None)
        self._forgotten += 1
