"""Suppressed addresses: helpgate does not mail them (bounce handling sets them; admins can lift them, audited)."""

from __future__ import annotations

import logging

from helpgate.audit import audit
from helpgate.core import paging
from helpgate.core.clock import utcnow
from helpgate.core.paging import Page
from helpgate.models import AuditAction, Suppression, User

log = logging.getLogger(__name__)


async def suppress(*, address: str, reason: str) -> None:
    """Suppress an address (again: the newest reason is kept)."""
    await Suppression.get_pymongo_collection().update_one(
        {"address": address.strip().lower()},
        {"$set": {"reason": reason}, "$setOnInsert": {"created_at": utcnow()}},
        upsert=True,
    )
    log.info("suppression.added address=%s reason=%s", address.strip().lower(), reason)


async def list_page(*, page: int = 1, page_size: int = 25) -> Page[Suppression]:
    """Newest first."""
    page, page_size = paging.bounds(page, page_size)
    total = await Suppression.find_all().count()
    return await paging.page_of(Suppression.find_all().sort("-created_at"), total=total, page=page, page_size=page_size)


async def lift(*, actor: User | str, address: str) -> bool:
    """Mail the address again, audited as `actor`; False when it was not suppressed (nothing audited)."""
    address = address.strip().lower()
    result = await Suppression.get_pymongo_collection().delete_one({"address": address})
    if not result.deleted_count:
        return False
    log.info("suppression.lifted address=%s", address)
    await audit.record(
        actor=actor,
        action=AuditAction.SUPPRESSION_LIFTED,
        target_type="suppression",
        target_id=address,
        target_label=address,
    )
    return True


async def reasons(addresses: list[str]) -> dict[str, str]:
    """The suppressed ones among `addresses`, each with its reason."""
    if not addresses:
        return {}
    found = await Suppression.find({"address": {"$in": [address.lower() for address in addresses]}}).to_list()
    return {suppression.address: suppression.reason for suppression in found}
