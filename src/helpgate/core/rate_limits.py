"""Rate limits in the store (shared by every helpgate process): fixed windows counted atomically.

Automatic mail (acknowledgements, notices) is limited per recipient, so a mail loop with an auto-responder
stops after a few rounds: by default 10 per 10 minutes per ticket and 30 per 10 minutes in total. The inbound
loop protection counts through `hit` as well. Mail written by a person is never limited.
A fixed window can let through up to twice the limit across a window boundary; that is fine for loops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from helpgate.core.rate_window import RateWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    window: timedelta


AUTOMATIC_PER_TICKET = Limit(10, timedelta(minutes=10))
AUTOMATIC_PER_RECIPIENT = Limit(30, timedelta(minutes=10))


def window_start(limit: Limit, now: datetime) -> int:
    """The start, in unix seconds, of the fixed window `now` falls in."""
    seconds = max(1, int(limit.window.total_seconds()))
    return int(now.timestamp()) // seconds * seconds


def _id(key: str, limit: Limit, now: datetime) -> str:
    return f"{key}@{window_start(limit, now)}"


async def count(*, key: str, limit: Limit, now: datetime) -> int:
    """Count one event for `key` in the current window: one atomic `$inc` (upserting the window), and the
    window's count with this event in it. Concurrent callers each get a different count, so comparing it
    with the limit lets exactly `limit.count` of them through (issue 14, finding 10)."""
    found = await _increment(key, limit=limit, now=now, inc={"hits": 1}, once=None)
    assert found is not None
    return int(found["hits"])


async def _increment(
    key: str, *, limit: Limit, now: datetime, inc: dict[str, int], once: str | None
) -> dict[str, Any] | None:
    """`key`'s window of `now` after `inc`; None when `once` was counted in it already (and nothing changed)."""
    start = window_start(limit, now)
    seconds = max(1, int(limit.window.total_seconds()))
    update: dict[str, Any] = {
        "$inc": inc,
        "$setOnInsert": {"expires_at": datetime.fromtimestamp(start + 2 * seconds, UTC)},
    }
    match: dict[str, Any] = {"_id": f"{key}@{start}"}
    if once is not None:
        match["counted"] = {"$ne": once}  # no match when counted: the upsert then collides with the window
        update["$push"] = {"counted": once}
    try:
        document: dict[str, Any] | None = await RateWindow.get_pymongo_collection().find_one_and_update(
            match, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        if once is None:
            raise
        return None
    assert document is not None
    return document


async def hit(*, key: str, limit: Limit, now: datetime) -> bool:
    """Count one event for `key` in the current window; True while the window is within the limit."""
    return await count(key=key, limit=limit, now=now) <= limit.count


async def uncount(*, key: str, limit: Limit, now: datetime) -> None:
    """Take back one event `count` counted at `now` (the same window): it turned out not to count."""
    window = {"_id": _id(key, limit, now), "hits": {"$gt": 0}}
    await RateWindow.get_pymongo_collection().update_one(window, {"$inc": {"hits": -1}})


async def forget(*, key: str, limit: Limit, now: datetime) -> None:
    """Clear `key`'s count in the window of `now`."""
    await RateWindow.get_pymongo_collection().delete_one({"_id": _id(key, limit, now)})


async def allow_automatic(
    *,
    recipient: str,
    ticket_number: int | None,
    now: datetime,
    per_ticket: Limit = AUTOMATIC_PER_TICKET,
    per_recipient: Limit = AUTOMATIC_PER_RECIPIENT,
    once: str | None = None,
) -> str | None:
    """None when one more automatic mail may go to `recipient`; otherwise the reason it may not. `once` is the
    mail's own key: a mail asked about again (a retried step) is not counted twice, and is allowed.

    One window per recipient counts both limits (its hits, and its hits per ticket) in one write, so the two
    limits share a window length."""
    assert per_ticket.window == per_recipient.window, "the per-ticket limit counts in the recipient's window"
    address = recipient.lower()
    inc = {"hits": 1} if ticket_number is None else {"hits": 1, f"tickets.{ticket_number}": 1}
    found = await _increment(f"auto:{address}", limit=per_recipient, now=now, inc=inc, once=once)
    if found is None:
        return None
    if ticket_number is not None and int(found["tickets"][str(ticket_number)]) > per_ticket.count:
        return f"over {per_ticket.count} automatic mails to {address} on ticket {ticket_number} in {per_ticket.window}"
    if int(found["hits"]) > per_recipient.count:
        return f"over {per_recipient.count} automatic mails to {address} in {per_recipient.window}"
    return None
