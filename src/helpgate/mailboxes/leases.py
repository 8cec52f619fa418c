"""Leases: one instance at a time holds a named piece of work (polling an IMAP mailbox) for a limited time.

A lease is taken with one atomic write: when it is free (no document), lapsed (`expires_at` passed by the
taker's clock) or already the taker's. The holder renews it well before it lapses and deletes it when it
stops cleanly; an instance that dies simply stops renewing, and another takes the lease once it lapses.

The timing rule (`Tenure`), which keeps two holders from ever working at once:

- `expires_at` is written as `sent + ttl`, where `sent` is the holder's clock just *before* the write is sent,
  so however late the store applies it, the lease never outlives what the holder counts on.
- The holder renews every `ttl/3` and may act only until `sent + 2·ttl/3` of its last confirmed take or
  renewal, measured on its monotonic clock. When that deadline passes without a confirmed renewal (the store
  is unreachable or slow) it stops the work; when a renewal finds another owner it stops at once.
- Another instance takes the lease only at `expires_at` by its own clock, `ttl/3` after the holder stopped.

So the work never runs twice as long as the instances' clocks differ by less than `ttl/3` minus the time the
holder needs to stop (a cancelled poller stops within a second). With the default 60 s lease: renewals every
20 s, work stops 40 s after the last confirmed renewal, and clocks may drift up to ~19 s apart; NTP keeps
them within milliseconds. Take-over after a crash takes up to `ttl` plus the taker's next attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from helpgate.core.clock import utcnow
from helpgate.models import Lease, Mailbox

log = logging.getLogger(__name__)


def mailbox_key(mailbox_id: PydanticObjectId) -> str:
    """The lease of polling one IMAP mailbox."""
    return f"mailbox:{mailbox_id}"


def _collection() -> AsyncCollection[dict[str, Any]]:
    collection: AsyncCollection[dict[str, Any]] = Lease.get_pymongo_collection()
    return collection


async def take(name: str, *, owner: str, ttl: timedelta, now: datetime | None = None) -> Lease | None:
    """Hold the lease for `ttl` from `now` (taken just before the write): when it is free, lapsed or ours.

    None when another owner holds it; read `get` to see who."""
    now = now or utcnow()
    taken = {"owner": owner, "expires_at": now + ttl, "renewed_at": now}
    try:
        before = await _collection().find_one_and_update(
            {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lte": now}}]},
            {"$set": taken, "$setOnInsert": {"acquired_at": now}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
    except DuplicateKeyError:  # the document exists and matched neither: someone else holds it
        return None
    acquired_at = now
    if before is None:
        log.debug("lease.taken name=%s owner=%s", name, owner)
    elif before["owner"] != owner:
        await _collection().update_one({"_id": name, "owner": owner}, {"$set": {"acquired_at": now}})
        log.warning("lease.taken_over name=%s owner=%s from=%s", name, owner, before["owner"])
    else:
        acquired_at = before.get("acquired_at", now)
    return Lease(id=name, acquired_at=acquired_at, **taken)


async def renew(name: str, *, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """Extend a lease this owner still holds; False when it is gone or another owner has it.

    A lease that lapsed but was taken by nobody is still ours to renew: nobody else has worked meanwhile."""
    now = now or utcnow()
    result = await _collection().update_one(
        {"_id": name, "owner": owner}, {"$set": {"expires_at": now + ttl, "renewed_at": now}}
    )
    return bool(result.matched_count)


async def release(name: str, *, owner: str) -> bool:
    """Give the lease up (a clean stop), so another instance may take it at once."""
    result = await _collection().delete_one({"_id": name, "owner": owner})
    return bool(result.deleted_count)


async def get(name: str) -> Lease | None:
    document = await _collection().find_one({"_id": name})
    return None if document is None else Lease.model_validate(document)


async def live(names: Sequence[str], *, now: datetime | None = None) -> set[str]:
    """Which of these leases someone holds (not lapsed by `now`), in one read."""
    if not names:
        return set()
    now = now or utcnow()
    held: set[str] = set()
    async for document in _collection().find({"_id": {"$in": list(names)}}, {"expires_at": 1}):
        if document["expires_at"] > now:
            held.add(document["_id"])
    return held


async def of_mailboxes(mailboxes: Sequence[Mailbox]) -> dict[PydanticObjectId | None, Lease]:
    """The leases of these mailboxes by mailbox id, in one read; lapsed ones too (`expires_at` tells)."""
    by_key = {mailbox_key(mailbox.id): mailbox.id for mailbox in mailboxes if mailbox.id is not None}
    found: dict[PydanticObjectId | None, Lease] = {}
    async for document in _collection().find({"_id": {"$in": list(by_key)}}):
        lease = Lease.model_validate(document)
        found[by_key[lease.id]] = lease
    return found


@dataclass
class Tenure:
    """How long the holder of a lease may act on it, by its own monotonic clock (see the module's rule)."""

    ttl: float  # seconds
    confirmed_at: float = field(default_factory=time.monotonic)  # when the last confirmed write was sent

    def confirm(self, sent_at: float) -> None:
        """A take or renewal sent at `sent_at` (monotonic) succeeded."""
        self.confirmed_at = max(self.confirmed_at, sent_at)

    @property
    def renew_at(self) -> float:
        return self.confirmed_at + self.ttl / 3

    @property
    def deadline(self) -> float:
        """Stop the work by then unless a renewal is confirmed."""
        return self.confirmed_at + 2 * self.ttl / 3

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline
