"""Suppressed addresses: helpgate does not mail them (bounce handling sets them; admins can lift them)."""

from __future__ import annotations

import logging

from helpgate.core.models import Suppression
from helpgate.core.models.clock import utcnow
from helpgate.core.services import paging
from helpgate.core.services.paging import Page

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


async def lift(*, address: str) -> bool:
    result = await Suppression.get_pymongo_collection().delete_one({"address": address.strip().lower()})
    if result.deleted_count:
        log.info("suppression.lifted address=%s", address.strip().lower())
    return bool(result.deleted_count)


async def reasons(addresses: list[str]) -> dict[str, str]:
    """The suppressed ones among `addresses`, each with its reason."""
    if not addresses:
        return {}
    found = await Suppression.find({"address": {"$in": [address.lower() for address in addresses]}}).to_list()
    return {suppression.address: suppression.reason for suppression in found}
