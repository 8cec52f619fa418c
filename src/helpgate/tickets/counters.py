"""Atomic named counters, all fields of one document: a write that changes several of them (a ticket's number
with the queue's counts, a ticket moving between two counts) is one command and atomic as a whole; never
count()+1.

The document is `{_id: "all", counts: {<name>: <value>}, folded: {<name>: true}}`. A name is a field of
`counts` with `%`, `.`, `$` and NUL escaped as `%25`, `%2E`, `%24`, `%00` (a field name may hold `:` but not
`.`, and may not start with `$`). The version before kept one document per counter, `{_id: <name>, value}`:
`fold_old_documents` moves those in once, at start-up (`folded` records which it has moved).
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import ReturnDocument

from helpgate.models import Counter

log = logging.getLogger(__name__)

DOCUMENT_ID = "all"
TICKET_NUMBER = "ticket_number"
TICKETS_TOTAL = "tickets_total"
_ESCAPES = str.maketrans({"%": "%25", ".": "%2E", "$": "%24", "\0": "%00"})


def _key(name: str) -> str:
    """The counter's field name inside `counts` (and `folded`)."""
    if not name:
        raise ValueError("a counter needs a name")
    return name.translate(_ESCAPES)


def _changes(changes: Iterable[tuple[str, int]]) -> dict[str, int]:
    """`$inc` for several counters; a name given twice is summed (one update may not name a field twice)."""
    summed: dict[str, int] = {}
    for name, by in changes:
        field = f"counts.{_key(name)}"
        summed[field] = summed.get(field, 0) + by
    return summed


async def increment(name: str, by: int = 1, *, also: Sequence[str] = ()) -> int:
    """Add `by` to the counter and 1 to each counter of `also` (all created at 0), in one atomic write; the
    counter's new value. A ticket takes its number and is counted in the queue this way."""
    document = await Counter.get_pymongo_collection().find_one_and_update(
        {"_id": DOCUMENT_ID},
        {"$inc": _changes([(name, by), *((other, 1) for other in also)])},
        projection={f"counts.{_key(name)}": True},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert document is not None
    return int(document["counts"][_key(name)])


async def increment_all(names: Sequence[str], by: int = 1) -> None:
    """Add `by` to each counter (created at 0), in one atomic write."""
    if names:
        await _inc(_changes((name, by) for name in names))


async def move(source: str, target: str) -> None:
    """One item leaves `source` for `target`, in one atomic write: a reader never sees it in both or neither."""
    if source != target:
        await _inc(_changes([(source, -1), (target, 1)]))


async def _inc(changes: Mapping[str, int]) -> None:
    await Counter.get_pymongo_collection().update_one({"_id": DOCUMENT_ID}, {"$inc": changes}, upsert=True)


async def current(name: str) -> int:
    return (await values([name]))[name]


async def values(names: Sequence[str]) -> dict[str, int]:
    """The named counters in one read; a counter never written is 0."""
    if not names:
        return {}
    document = await Counter.get_pymongo_collection().find_one(
        {"_id": DOCUMENT_ID}, {f"counts.{_key(name)}": True for name in names}
    )
    counts: dict[str, Any] = (document or {}).get("counts", {})
    return {name: int(counts.get(_key(name), 0)) for name in names}


def ticket_bucket(status: str, priority: str | None) -> str:
    """The counter of tickets with this status and priority (`none` when unset): the queue's sidebar numbers
    are sums of these, read in one query, because counting tickets decodes every match on the embedded store."""
    return f"tickets:{status}:{priority or 'none'}"


async def reset(counts: Mapping[str, int]) -> None:
    """Overwrite counters with values counted afresh, in one write (a repair; racing writers may need another)."""
    if counts:
        await Counter.get_pymongo_collection().update_one(
            {"_id": DOCUMENT_ID},
            {"$set": {f"counts.{_key(name)}": value for name, value in counts.items()}},
            upsert=True,
        )


async def fold_old_documents() -> int:
    """Move the counters the previous version kept one per document (`{_id: name, value}`) into the document,
    adding each value to what the counter holds, then delete them; how many were moved. Run at start-up, before
    any counter is used, by every instance: each counter is added at most once (the addition and its mark in
    `folded` are one write), so instances starting together, or a start cut off half-way, are safe. Writes
    nothing when there is nothing to move (an import checks the store is empty after connecting)."""
    collection = Counter.get_pymongo_collection()
    old = await collection.find({"value": {"$exists": True}}).to_list()
    if not old:
        return 0
    await collection.update_one({"_id": DOCUMENT_ID}, {"$setOnInsert": {"counts": {}}}, upsert=True)
    moved = 0
    for document in old:
        name = str(document["_id"])
        folded = f"folded.{_key(name)}"
        result = await collection.update_one(
            {"_id": DOCUMENT_ID, folded: {"$exists": False}},
            {"$inc": _changes([(name, int(document["value"]))]), "$set": {folded: True}},
        )
        moved += result.modified_count
        await collection.delete_one({"_id": document["_id"], "value": {"$exists": True}})
    log.info("counters.folded moved=%d found=%d", moved, len(old))
    return moved
