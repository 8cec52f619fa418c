"""Outbound senders' journals: which claimed mails may have begun DATA, so that a crash never leads to a resend.

Each running outbound worker registers a journal under its claim token (one small document in
``outbound_senders``). Before DATA it lists every mail it is about to send, with the attempt, in one write of
that single document: one write covers all the mails the worker's connections start together, instead of one
write per mail. The same write carries the 250s the worker got since and has not recorded on their mails yet
(it records those in groups, a second or so later): a mail the journal says was answered is recorded `sent` by
whoever recovers, not `uncertain`. The write only lands while the journal is not fenced.

A sender that stopped renewing its journal for a lease (crash, kill, a frozen process) is fenced by whoever
recovers: atomically, and only if it was not renewed meanwhile. From then on its journal writes fail, so it
can never begin DATA again under that token; the two writes meet on one document, so one of them wins
whatever the clocks say. Then every mail still `sending` under its token is settled (deliveries.recover).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from beanie import PydanticObjectId
from pydantic import BaseModel, Field
from pymongo.asynchronous.collection import AsyncCollection

from helpgate.models import OutboundMail

COLLECTION = "outbound_senders"


class Started(BaseModel):
    """A mail that may have reached DATA under this claim: its id and the attempt (one claim each)."""

    mail: PydanticObjectId
    attempt: int


class Answered(BaseModel):
    """A started mail the server answered 250 (when and how), its `sent` not recorded on it yet."""

    mail: PydanticObjectId
    attempt: int
    reply: str
    at: datetime


class Journal(BaseModel):
    token: str = Field(alias="_id")
    started: list[Started] = Field(default_factory=list)
    answered: list[Answered] = Field(default_factory=list)  # absent from journals of older versions
    renewed_at: datetime
    fenced: bool = False

    def holds(self, mail: PydanticObjectId, attempt: int) -> bool:
        return any(entry.mail == mail and entry.attempt == attempt for entry in self.started)

    def answer(self, mail: PydanticObjectId, attempt: int) -> Answered | None:
        return next((entry for entry in self.answered if entry.mail == mail and entry.attempt == attempt), None)


def _collection() -> AsyncCollection[dict[str, object]]:
    return OutboundMail.get_pymongo_collection().database[COLLECTION]


async def register(token: str, *, now: datetime) -> None:
    await _collection().insert_one({"_id": token, "started": [], "renewed_at": now, "fenced": False})


async def write(
    token: str,
    *,
    started: Iterable[tuple[PydanticObjectId, int]],
    answered: Iterable[Answered] = (),
    now: datetime,
) -> bool:
    """Replace the journal's lists of started and answered mails and renew it; False once fenced (the token is
    void)."""
    entries = [{"mail": mail, "attempt": attempt} for mail, attempt in started]
    answers = [entry.model_dump() for entry in answered]
    result = await _collection().update_one(
        {"_id": token, "fenced": False}, {"$set": {"started": entries, "answered": answers, "renewed_at": now}}
    )
    return result.matched_count == 1


async def retire(token: str) -> None:
    """A sender stopped cleanly with nothing left that may have reached DATA: its journal is not needed."""
    await _collection().delete_one({"_id": token, "fenced": False, "started": []})


async def get(token: str) -> Journal | None:
    document = await _collection().find_one({"_id": token})
    return None if document is None else Journal.model_validate(document)


async def stale(*, before: datetime) -> list[Journal]:
    """Journals not renewed since `before`, and fenced ones whose mails are not all settled yet."""
    cursor = _collection().find({"$or": [{"renewed_at": {"$lt": before}}, {"fenced": True}]})
    return [Journal.model_validate(document) async for document in cursor]


async def known(tokens: Iterable[str]) -> set[str]:
    """Which of these claim tokens have a journal."""
    wanted = sorted(set(tokens))
    if not wanted:
        return set()
    return {str(document["_id"]) async for document in _collection().find({"_id": {"$in": wanted}}, {"_id": 1})}


async def fence(journal: Journal) -> bool:
    """Void a stale sender's token, unless it renewed its journal since it was read."""
    if journal.fenced:
        return True
    result = await _collection().update_one(
        {"_id": journal.token, "renewed_at": journal.renewed_at, "fenced": False}, {"$set": {"fenced": True}}
    )
    return result.modified_count == 1


async def drop(token: str) -> None:
    """A fenced sender's mails are all settled: forget it."""
    await _collection().delete_one({"_id": token, "fenced": True})
