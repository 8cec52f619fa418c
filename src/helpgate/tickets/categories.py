"""The category catalog: what triage may file a ticket under (the AI reads the names and descriptions, the
keyword triage the keywords), managed by admins over the API and the command line.

A store starts with DEFAULTS (written once, at start-up, when it has no catalog yet). "other" is always a
category triage may use, listed or not: it is where a ticket goes when nothing fits. A category removed from the
catalog stays on the tickets that have it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from helpgate.audit import audit
from helpgate.core.errors import InvalidInput
from helpgate.core.naming import catalog_name
from helpgate.core.recent import Recent
from helpgate.models import AuditAction, Category, User
from helpgate.tickets import counters

log = logging.getLogger(__name__)

FALLBACK = "other"
MAX_CATEGORIES = 100
MAX_KEYWORDS = 100
SEEDED = "categories_seeded"  # a counter: the defaults were written once
RECENT_SECONDS = 10.0  # another instance's change to the catalog reaches triage here within this


@dataclass(frozen=True)
class CategoryEntry:
    name: str
    description: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)


# fmt: off
DEFAULTS: tuple[CategoryEntry, ...] = (
    CategoryEntry("billing", "invoices, charges, refunds, payment methods, receipts and VAT",
                  ("invoice", "refund", "refunded", "charge", "charged", "payment", "billing", "billed", "receipt",
                   "credit card", "vat", "rechnung", "facture", "factura", "reembolso", "remboursement")),
    CategoryEntry("technical", "something in the product fails or errors, or how to set it up or integrate it",
                  ("error", "crash", "crashes", "crashed", "bug", "not working", "doesn't work", "does not work",
                   "500", "502", "503", "api", "timeout", "exception", "broken", "fails", "failing", "webhook",
                   "sync", "fehler", "erreur")),
    CategoryEntry("account", "logging in, passwords, two-factor, locked or deleted accounts, users and access",
                  ("password", "login", "log in", "sign in", "2fa", "two-factor", "account locked", "locked out",
                   "reset link", "username", "delete my account", "close my account", "passwort", "mot de passe",
                   "contraseña")),
    CategoryEntry("shipping", "deliveries, parcels, tracking and couriers",
                  ("delivery", "delivered", "tracking", "parcel", "package", "shipping", "shipment", "shipped",
                   "courier", "lieferung", "paket", "livraison", "colis", "envío", "pedido")),
    CategoryEntry("sales", "prices, quotes, plans, upgrades, trials and licences before or beyond a purchase",
                  ("pricing", "price", "quote", "demo", "plan upgrade", "upgrade", "enterprise plan", "discount",
                   "licenses", "seats", "trial", "purchase order")),
    CategoryEntry("feedback", "praise, complaints about the service, suggestions and feature requests",
                  ("thanks", "thank you", "suggestion", "feature request", "would love", "would be nice",
                   "feedback", "compliment", "love the")),
    CategoryEntry(FALLBACK, "anything that fits no other category"),
)
# fmt: on


def normalise(name: str) -> str:
    """A category's name as stored; InvalidInput for one that cannot be (core/naming.py)."""
    return catalog_name(name, what="category")


async def catalog() -> list[Category]:
    """The catalog in its order."""
    return await Category.find({}).sort("rank", "name").to_list()


_RECENT = Recent(catalog, seconds=RECENT_SECONDS)


def _database() -> str:
    return str(Category.get_pymongo_collection().database.name)


async def for_triage() -> list[Category]:
    """The catalog as triage reads it: from the store at most every RECENT_SECONDS (one read less per ticket)."""
    return await _RECENT.get(_database())


async def ensure_defaults() -> None:
    """Write DEFAULTS once, for a store that has never had a catalog (at start-up); an admin's catalog, even an
    emptied one, is never touched."""
    if await counters.current(SEEDED) >= 1:
        return
    if await Category.find_one({}) is None:
        await _write(list(DEFAULTS))
        log.info("categories.seeded count=%d", len(DEFAULTS))
    await counters.increment(SEEDED)


async def replace(entries: Sequence[CategoryEntry], *, actor: User | str | None) -> list[Category]:
    """Make the catalog exactly `entries`, in that order (names normalised, duplicates refused), audited as
    `actor` (None: a store seeded for tests or benchmarks). Tickets keep the categories they have."""
    if len(entries) > MAX_CATEGORIES:
        raise InvalidInput(f"at most {MAX_CATEGORIES} categories")
    checked: list[CategoryEntry] = []
    for entry in entries:
        name = normalise(entry.name)
        if name in {each.name for each in checked}:
            raise InvalidInput(f"category {name!r} is listed twice")
        keywords = tuple(dict.fromkeys(word.strip().lower() for word in entry.keywords if word.strip()))
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidInput(f"category {name!r}: at most {MAX_KEYWORDS} keywords")
        checked.append(CategoryEntry(name, entry.description.strip()[:500], keywords))
    await _write(checked)
    _RECENT.forget(_database())
    replaced = await catalog()
    log.info("categories.replaced count=%d", len(replaced))
    if actor is not None:
        await audit.record(
            actor=actor,
            action=AuditAction.CATEGORIES_REPLACED,
            target_type="categories",
            target_id="catalog",
            changes={"categories": [category.name for category in replaced]},
        )
    return replaced


async def _write(entries: Sequence[CategoryEntry]) -> None:
    collection = Category.get_pymongo_collection()
    await collection.delete_many({"name": {"$nin": [entry.name for entry in entries]}})
    for rank, entry in enumerate(entries):
        await collection.update_one(
            {"name": entry.name},
            {"$set": {"description": entry.description, "keywords": list(entry.keywords), "rank": rank}},
            upsert=True,
        )
