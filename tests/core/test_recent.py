"""A value reused for a few seconds per database, on an injected clock: read once, read again when stale or
forgotten, and never shared between databases; a read that a change overtook is not kept."""

from __future__ import annotations

import asyncio

from helpgate.core.recent import Recent


async def test_a_value_is_reused_until_stale_or_forgotten_per_database() -> None:
    now = [100.0]
    reads: list[int] = []

    async def load() -> int:
        reads.append(len(reads) + 1)
        return len(reads)

    recent = Recent(load, seconds=10.0, clock=lambda: now[0])
    assert [await recent.get("a"), await recent.get("a")] == [1, 1]
    assert await recent.get("b") == 2  # another database reads its own
    now[0] += 10.0
    assert await recent.get("a") == 3  # stale
    recent.forget("a")
    assert await recent.get("a") == 4
    assert len(reads) == 4


async def test_a_read_under_way_when_the_value_is_forgotten_is_not_kept() -> None:
    reads: list[int] = []
    release = asyncio.Event()

    async def load() -> int:
        reads.append(len(reads) + 1)
        if len(reads) == 1:
            await release.wait()  # the first read is slow: a change is made and forgotten meanwhile
        return len(reads)

    recent = Recent(load, seconds=10.0, clock=lambda: 100.0)
    first = asyncio.create_task(recent.get("a"))
    await asyncio.sleep(0)
    recent.forget("a")
    release.set()
    assert await first == 1  # (its caller asked before the change)
    assert await recent.get("a") == 2  # read again: the first read may predate the change
    assert await recent.get("a") == 2
