"""A value reused for a few seconds per database, on an injected clock: read once, read again when stale or
forgotten, and never shared between databases."""

from __future__ import annotations

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
