"""Atomic named counters: one find_one_and_update each, never count()+1."""

from collections.abc import Mapping, Sequence

from pymongo import ReturnDocument, UpdateOne

from helpgate.models import Counter

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


async def increment_all(names: Sequence[str], by: int = 1) -> None:
    """Add `by` to each counter (created at 0), in one write: each counter changes atomically, the set does not."""
    if names:
        await Counter.get_pymongo_collection().bulk_write(
            [UpdateOne({"_id": name}, {"$inc": {"value": by}}, upsert=True) for name in names], ordered=False
        )


async def current(name: str) -> int:
    document = await Counter.get_pymongo_collection().find_one({"_id": name})
    return int(document["value"]) if document else 0


def ticket_bucket(status: str, priority: str | None) -> str:
    """The counter of tickets with this status and priority (`none` when unset): the queue's sidebar numbers
    are sums of these, read in one query, because counting tickets decodes every match on the embedded store."""
    return f"tickets:{status}:{priority or 'none'}"


async def values(names: Sequence[str]) -> dict[str, int]:
    """The named counters in one read; a counter never written is 0."""
    found = {name: 0 for name in names}
    async for document in Counter.get_pymongo_collection().find({"_id": {"$in": list(found)}}):
        found[str(document["_id"])] = int(document["value"])
    return found


async def move(source: str, target: str) -> None:
    """One item leaves `source` for `target`, in one write: each counter changes atomically, the pair does not."""
    if source != target:
        await Counter.get_pymongo_collection().bulk_write(
            [
                UpdateOne({"_id": source}, {"$inc": {"value": -1}}, upsert=True),
                UpdateOne({"_id": target}, {"$inc": {"value": 1}}, upsert=True),
            ],
            ordered=False,
        )


async def reset(counts: Mapping[str, int]) -> None:
    """Overwrite counters with values counted afresh (a repair; racing writers may need another one)."""
    collection = Counter.get_pymongo_collection()
    for name, value in counts.items():
        await collection.update_one({"_id": name}, {"$set": {"value": value}}, upsert=True)
