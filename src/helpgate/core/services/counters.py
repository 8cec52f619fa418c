"""Atomic named counters: one find_one_and_update each, never count()+1."""

from pymongo import ReturnDocument

from helpgate.core.models import Counter

TICKET_NUMBER = "ticket_number"
TICKETS_TOTAL = "tickets_total"


async def increment(name: str, by: int = 1) -> int:
    """Add `by` to the counter (created at 0) and return the new value."""
    collection = Counter.get_pymongo_collection()
    document = await collection.find_one_and_update(
        {"_id": name}, {"$inc": {"value": by}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert document is not None
    return int(document["value"])


async def current(name: str) -> int:
    document = await Counter.get_pymongo_collection().find_one({"_id": name})
    return int(document["value"]) if document else 0
