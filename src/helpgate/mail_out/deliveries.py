"""Delivery states of queued mail: claim a batch, record each outcome, recover what a stopped sender left.

mail_out/models/outbound.py has the state diagram. The worker claims a batch atomically (queued → sending,
with its claim token and a lease); every later transition is conditional on that token, so a worker that
lost its claim can never overwrite the mail's state, and its journal (mail_out/senders.py) keeps it
from sending one. A `sent` mark is the exception: see `mark_sent_many`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import UpdateOne

from helpgate.mail_out import senders
from helpgate.models import DeliveryStatus, Message, OutboundMail

log = logging.getLogger(__name__)


def _entry(status: DeliveryStatus, now: datetime, detail: str) -> dict[str, Any]:
    return {"status": str(status), "at": now, "detail": detail}


async def messages_stored(refs: list[PydanticObjectId]) -> set[PydanticObjectId]:
    """Which of these messages exist."""
    if not refs:
        return set()
    cursor = Message.get_pymongo_collection().find({"_id": {"$in": refs}}, {"_id": 1})
    return {PydanticObjectId(document["_id"]) async for document in cursor}


async def claim_batch(*, token: str, now: datetime, lease: timedelta, limit: int) -> list[OutboundMail]:
    """Take up to `limit` due mails (queued → sending) for the claim `token`, oldest due first.

    One update claims them all; its filter makes each claim atomic, so a mail another worker took
    between the two queries is simply not ours. Then one query loads the mails we won.
    """
    collection = OutboundMail.get_pymongo_collection()
    due_query: dict[str, Any] = {"status": str(DeliveryStatus.QUEUED), "next_attempt_at": {"$lte": now}}
    candidates = [
        document["_id"]
        async for document in collection.find(due_query, {"_id": 1}).sort("next_attempt_at", 1).limit(limit)
    ]
    if not candidates:
        return []
    result = await collection.update_many(
        {**due_query, "_id": {"$in": candidates}},
        {
            "$set": {
                "status": str(DeliveryStatus.SENDING),
                "claim": token,
                "lease_until": now + lease,
                "data_started_at": None,
            },
            "$inc": {"attempts": 1},
            "$push": {"history": _entry(DeliveryStatus.SENDING, now, "claimed")},
        },
    )
    if not result.modified_count:
        return []
    # By _id alone: on the embedded store a filter on any other field as well scans the collection.
    won = {
        document["_id"]: OutboundMail.model_validate(document)
        async for document in collection.find({"_id": {"$in": candidates}})
        if document.get("claim") == token and document.get("status") == str(DeliveryStatus.SENDING)
    }
    return [won[mail_id] for mail_id in candidates if mail_id in won]


async def claim(*, token: str, now: datetime, lease: timedelta) -> OutboundMail | None:
    """Take the next due mail for `token`, atomically: nobody else can take it."""
    claimed = await claim_batch(token=token, now=now, lease=lease, limit=1)
    return claimed[0] if claimed else None


async def _move(
    mail: OutboundMail,
    status: DeliveryStatus,
    *,
    now: datetime,
    detail: str,
    fields: dict[str, Any] | None = None,
) -> bool:
    """One transition of a claimed mail; False when the claim is no longer ours (nothing is changed)."""
    values = {"status": str(status), **(fields or {})}
    result = await OutboundMail.get_pymongo_collection().update_one(
        {"_id": mail.id, "claim": mail.claim},
        {"$set": values, "$push": {"history": _entry(status, now, detail)}},
    )
    if result.modified_count != 1:
        log.warning("outbound.claim_lost key=%s wanted=%s", mail.key, status)
        return False
    mail.status = status
    for name, value in values.items():
        if name != "status":
            setattr(mail, name, value)
    return True


async def mark_sent(mail: OutboundMail, *, reply: str, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.SENT,
        now=now,
        detail=reply,
        fields={"smtp_reply": reply, "sent_at": now, "lease_until": None, "last_error": None, "data": None},
    )


async def mark_sent_many(
    sent: Sequence[tuple[OutboundMail, str]],
    *,
    now: datetime,
    answered_at: Mapping[PydanticObjectId, datetime] | None = None,
) -> set[PydanticObjectId]:
    """Record the 250 of each mail in one bulk write (sent at `answered_at` when known, else `now`); the ids
    recorded.

    Only for mails whose DATA their sender's journal announced (mail_out/senders.py): such a mail is
    never queued again by anyone (recovery makes it `uncertain` at most, keeping the claim), so the write
    goes by _id alone, which the embedded store serves without scanning, and `sent` overrides `uncertain`.
    """
    if not sent:
        return set()
    collection = OutboundMail.get_pymongo_collection()
    at = answered_at or {}
    operations = [
        UpdateOne({"_id": mail.id}, _sent_update(reply, at.get(mail.id, now) if mail.id else now))
        for mail, reply in sent
    ]
    result = await collection.bulk_write(operations, ordered=False)
    ids = {mail.id for mail, _reply in sent if mail.id is not None}
    if result.matched_count != len(operations):  # a mail deleted meanwhile: say which ones are recorded
        cursor = collection.find({"_id": {"$in": sorted(ids)}, "status": str(DeliveryStatus.SENT)}, {"_id": 1})
        ids = {PydanticObjectId(document["_id"]) async for document in cursor}
    for mail, reply in sent:
        if mail.id in ids:
            mail.status, mail.smtp_reply, mail.sent_at, mail.lease_until = DeliveryStatus.SENT, reply, now, None
            mail.data = None
    return ids


async def mark_retry(mail: OutboundMail, *, error: str, reply: str | None, at: datetime, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.QUEUED,
        now=now,
        detail=f"attempt {mail.attempts} failed, next at {at.isoformat()}: {error}",
        fields={
            "next_attempt_at": at,
            "last_error": error,
            "smtp_reply": reply,
            "claim": None,
            "lease_until": None,
            "data_started_at": None,
        },
    )


async def mark_failed(mail: OutboundMail, *, error: str, reply: str | None, now: datetime) -> bool:
    return await _move(
        mail,
        DeliveryStatus.FAILED,
        now=now,
        detail=error,
        fields={"last_error": error, "smtp_reply": reply, "lease_until": None, "data": None},
    )


async def mark_uncertain(mail: OutboundMail, *, error: str, now: datetime) -> bool:
    reason = f"the connection ended during DATA, so the mail may have been delivered; not resent: {error}"
    return await _move(
        mail, DeliveryStatus.UNCERTAIN, now=now, detail=reason, fields={"last_error": reason, "data": None}
    )


async def mark_suppressed(mail: OutboundMail, *, reason: str, now: datetime) -> bool:
    return await _move(mail, DeliveryStatus.SUPPRESSED, now=now, detail=reason, fields=_final(reason))


def _final(reason: str) -> dict[str, Any]:
    """A mail that will not be sent: why, and no composed bytes kept (the ticket's message keeps what was said)."""
    return {"last_error": reason, "lease_until": None, "data": None}


async def mark_cancelled(mail: OutboundMail, *, reason: str, now: datetime) -> bool:
    return await _move(mail, DeliveryStatus.CANCELLED, now=now, detail=reason, fields=_final(reason))


async def release(mail: OutboundMail, *, at: datetime, now: datetime, detail: str) -> bool:
    """Give a claimed mail back before DATA began (shutting down; its reply not stored yet)."""
    return await _move(
        mail,
        DeliveryStatus.QUEUED,
        now=now,
        detail=detail,
        fields={"next_attempt_at": at, "claim": None, "lease_until": None, "data_started_at": None},
    )


def _requeue(now: datetime, detail: str) -> dict[str, Any]:
    return {
        "$set": {
            "status": str(DeliveryStatus.QUEUED),
            "claim": None,
            "lease_until": None,
            "data_started_at": None,
            "next_attempt_at": now,
        },
        "$push": {"history": _entry(DeliveryStatus.QUEUED, now, detail)},
    }


def _sent_update(reply: str, at: datetime) -> dict[str, Any]:
    return {
        "$set": {
            "status": str(DeliveryStatus.SENT),
            "smtp_reply": reply,
            "sent_at": at,
            "lease_until": None,
            "last_error": None,
        },
        "$unset": {"data": ""},  # the composed bytes: the ticket's message keeps what was said
        "$push": {"history": _entry(DeliveryStatus.SENT, at, reply)},
    }


def _uncertain(now: datetime, reason: str) -> dict[str, Any]:
    return {
        "$set": {"status": str(DeliveryStatus.UNCERTAIN), "last_error": reason, "lease_until": None, "data": None},
        "$push": {"history": _entry(DeliveryStatus.UNCERTAIN, now, reason)},
    }


NOT_STARTED = "lease expired before DATA: queued again"
MAYBE_DELIVERED = "the sender stopped during DATA, so the mail may have been delivered; not resent"


async def release_many(mails: Sequence[OutboundMail], *, now: datetime, detail: str) -> int:
    """Give back claimed mails none of which began DATA (the worker is stopping, or its claim was voided)."""
    collection = OutboundMail.get_pymongo_collection()
    released = 0
    for claim in sorted({mail.claim for mail in mails if mail.claim is not None}):
        ids = [mail.id for mail in mails if mail.claim == claim]
        result = await collection.update_many(
            {"_id": {"$in": ids}, "claim": claim, "status": str(DeliveryStatus.SENDING)}, _requeue(now, detail)
        )
        released += result.modified_count
    return released


async def recover(*, now: datetime, lease: timedelta) -> tuple[int, int]:
    """Mail left `sending` by a sender that stopped (crash, kill): (queued again, marked uncertain).

    A mail its sender's journal lists may have reached DATA, so it becomes `uncertain` and is never resent:
    at most once. The claim is kept, so the original sender, if it is alive after all and gets its 250,
    still records `sent`. Every other mail of that sender never reached DATA and is queued again.
    Senders are judged by their journal (mail_out/senders.py): a live one renews it at least once a
    lease; one that did not is fenced first, so it cannot begin DATA while its mail is settled. Mail claimed
    without a journal (by hand, or by a sender fenced before its claim landed) is judged by its own lease and
    `data_started_at`.
    """
    requeued = uncertain = 0
    for journal in await senders.stale(before=now - lease):
        if not await senders.fence(journal):
            continue  # it renewed its journal meanwhile: alive
        settled = await _settle(journal, now=now)
        requeued, uncertain = requeued + settled[0], uncertain + settled[1]
        await senders.drop(journal.token)
    settled = await _settle_unjournaled(now=now)
    requeued, uncertain = requeued + settled[0], uncertain + settled[1]
    if requeued or uncertain:
        log.warning("outbound.recovered requeued=%d uncertain=%d", requeued, uncertain)
    return requeued, uncertain


async def _settle(journal: senders.Journal, *, now: datetime) -> tuple[int, int]:
    """Every mail still `sending` under a fenced sender's token, whatever its lease says."""
    collection = OutboundMail.get_pymongo_collection()
    claimed = {"claim": journal.token, "status": str(DeliveryStatus.SENDING)}
    mails = await collection.find(claimed, {"_id": 1, "attempts": 1}).to_list()
    answered = [answer for mail in mails if (answer := journal.answer(mail["_id"], mail.get("attempts", 0)))]
    if answered:  # the server said 250 before the sender stopped: sent, as it would have recorded
        await collection.bulk_write(
            [UpdateOne({**claimed, "_id": entry.mail}, _sent_update(entry.reply, entry.at)) for entry in answered]
        )
    done = {entry.mail for entry in answered}
    started = [mail["_id"] for mail in mails if journal.holds(mail["_id"], mail.get("attempts", 0))]
    started = [mail for mail in started if mail not in done]
    others = [mail["_id"] for mail in mails if mail["_id"] not in started and mail["_id"] not in done]
    requeued = uncertain = 0
    if started:
        result = await collection.update_many({**claimed, "_id": {"$in": started}}, _uncertain(now, MAYBE_DELIVERED))
        uncertain = result.modified_count
    if others:
        result = await collection.update_many({**claimed, "_id": {"$in": others}}, _requeue(now, NOT_STARTED))
        requeued = result.modified_count
    return requeued, uncertain


async def _settle_unjournaled(*, now: datetime) -> tuple[int, int]:
    collection = OutboundMail.get_pymongo_collection()
    expired = {"status": str(DeliveryStatus.SENDING), "lease_until": {"$lt": now}}
    claims = {str(mail["claim"]) async for mail in collection.find(expired, {"claim": 1}) if mail.get("claim")}
    orphans = sorted(claims - await senders.known(claims))
    if not orphans:
        return 0, 0
    expired["claim"] = {"$in": orphans}
    requeued = await collection.update_many({**expired, "data_started_at": None}, _requeue(now, NOT_STARTED))
    uncertain = await collection.update_many(
        {**expired, "data_started_at": {"$ne": None}}, _uncertain(now, MAYBE_DELIVERED)
    )
    return requeued.modified_count, uncertain.modified_count


async def next_due() -> datetime | None:
    """When the earliest queued mail falls due."""
    document = await OutboundMail.get_pymongo_collection().find_one(
        {"status": str(DeliveryStatus.QUEUED)}, {"next_attempt_at": 1}, sort=[("next_attempt_at", 1)]
    )
    if document is None:
        return None
    due: datetime = document["next_attempt_at"]
    return due
