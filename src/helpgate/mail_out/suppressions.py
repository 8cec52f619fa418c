"""Suppressed addresses: helpgate does not mail them (bounce handling sets them; admins can lift them, audited).

A lookup is reused for RECENT_SECONDS per process and database: the few staff addresses mailed about every ticket
are not looked up for each mail. A suppression added or lifted through this process is seen at once; one added
through another instance within RECENT_SECONDS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from helpgate.audit import audit
from helpgate.core import paging
from helpgate.core.clock import utcnow
from helpgate.core.paging import Page
from helpgate.models import AuditAction, Suppression, User

log = logging.getLogger(__name__)

RECENT_SECONDS = 10.0
KEPT_LIMIT = 10_000  # lookups kept at most; past it the stale ones go, and all of them if none is stale

_clock: Callable[[], float] = time.monotonic
_looked_up: dict[tuple[str, str], tuple[float, str | None]] = {}  # (database, address) -> (reused until, reason)


def _database() -> str:
    return str(Suppression.get_pymongo_collection().database.name)


def _forget(address: str) -> None:
    _looked_up.pop((_database(), address), None)


async def suppress(*, address: str, reason: str) -> None:
    """Suppress an address (again: the newest reason is kept)."""
    await Suppression.get_pymongo_collection().update_one(
        {"address": address.strip().lower()},
        {"$set": {"reason": reason}, "$setOnInsert": {"created_at": utcnow()}},
        upsert=True,
    )
    _forget(address.strip().lower())
    log.info("suppression.added address=%s reason=%s", address.strip().lower(), reason)


async def list_page(*, page: int = 1, page_size: int = 25) -> Page[Suppression]:
    """Newest first."""
    page, page_size = paging.bounds(page, page_size)
    total = await Suppression.find_all().count()
    return await paging.page_of(Suppression.find_all().sort("-created_at"), total=total, page=page, page_size=page_size)


async def lift(*, actor: User | str, address: str) -> bool:
    """Mail the address again, audited as `actor`; False when it was not suppressed (nothing audited)."""
    address = address.strip().lower()
    collection = Suppression.get_pymongo_collection()
    if not await collection.count_documents({"address": address}, limit=1):
        _forget(address)
        return False
    # One unit: the entry (pending), the lift, then the confirmation (audit.begin; a lifted suppression is gone).
    entry = await audit.begin(
        actor=actor,
        action=AuditAction.SUPPRESSION_LIFTED,
        target_type="suppression",
        target_id=address,
        target_label=address,
    )
    lifted = (await collection.delete_one({"address": address})).deleted_count
    _forget(address)
    if not lifted:
        await audit.abandon(entry)  # lifted meanwhile, by another request that audits it
        return False
    log.info("suppression.lifted address=%s", address)
    await audit.confirm(entry)
    return True


async def reasons(addresses: list[str]) -> dict[str, str]:
    """The suppressed ones among `addresses`, each with its reason (a lookup of the last RECENT_SECONDS reused)."""
    if not addresses:
        return {}
    database, now = _database(), _clock()
    known: dict[str, str | None] = {}
    for address in {address.lower() for address in addresses}:
        kept = _looked_up.get((database, address))
        if kept is not None and now < kept[0]:
            known[address] = kept[1]
    missing = sorted({address.lower() for address in addresses} - known.keys())
    if missing:
        found = {
            entry.address: entry.reason for entry in await Suppression.find({"address": {"$in": missing}}).to_list()
        }
        if len(_looked_up) + len(missing) > KEPT_LIMIT:
            for key in [key for key, (until, _reason) in _looked_up.items() if until <= now]:
                del _looked_up[key]
            if len(_looked_up) + len(missing) > KEPT_LIMIT:
                _looked_up.clear()
        for address in missing:
            known[address] = found.get(address)
            _looked_up[database, address] = (now + RECENT_SECONDS, known[address])
    return {address: reason for address, reason in known.items() if reason is not None}
