"""Automatic mail is rate-limited per recipient: per ticket, and in total."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core import rate_limits

Store = AsyncMongoClient[dict[str, Any]]
# The start of the current 10-minute window: counters expire (TTL) two windows after theirs begins.
NOW = datetime.fromtimestamp(int(time.time()) // 600 * 600 + 1, UTC)


async def test_ten_per_ticket_then_refused(store: Store) -> None:
    results = [await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW) for _ in range(11)]
    assert results[:10] == [None] * 10
    assert results[10] is not None and "on ticket 1" in results[10]
    assert await rate_limits.allow_automatic(recipient="A@X", ticket_number=2, now=NOW) is None  # another ticket
    assert await rate_limits.allow_automatic(recipient="b@x", ticket_number=1, now=NOW) is None  # another person


async def test_thirty_in_total_across_tickets(store: Store) -> None:
    results = [await rate_limits.allow_automatic(recipient="a@x", ticket_number=n, now=NOW) for n in range(31)]
    assert results[:30] == [None] * 30
    assert results[30] is not None and "over 30 automatic mails to a@x" in results[30]


async def test_a_new_window_starts_afresh(store: Store) -> None:
    for _ in range(10):
        await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW)
    assert await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW) is not None
    later = NOW + timedelta(minutes=10)
    assert await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=later) is None


async def test_hit_is_atomic_under_concurrency(store: Store) -> None:
    import asyncio

    limit = rate_limits.Limit(5, timedelta(hours=1))
    now = datetime.now(UTC)
    allowed = await asyncio.gather(*(rate_limits.hit(key="k", limit=limit, now=now) for _ in range(12)))
    assert sum(allowed) == 5


async def test_a_mail_asked_about_again_with_its_key_is_counted_once_and_allowed(store: Store) -> None:
    first = await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW, once="mail-1")
    again = [
        await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW, once="mail-1") for _ in range(3)
    ]
    others = [
        await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW, once=f"mail-{n}")
        for n in range(2, 11)
    ]
    over = await rate_limits.allow_automatic(recipient="a@x", ticket_number=1, now=NOW, once="mail-11")

    assert first is None and again == [None] * 3  # a retried step: allowed, not counted again
    assert others == [None] * 9  # the key's mail was counted once: nine more fit in the ten
    assert over is not None and "on ticket 1" in over
