"""The audit log of admin and staff actions: written by each change's service, whoever asked for it (the API's
user, `cli:<operating-system user>` from the command line), read newest first by admins."""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic_core import to_jsonable_python
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from helpgate.core import paging
from helpgate.core.paging import Page
from helpgate.models import AuditAction, AuditEntry, Category, Mailbox, Skill, Suppression, User
from helpgate.outbox import events

log = logging.getLogger(__name__)

CHANGED = "(changed)"
# A field whose name says it holds a secret is logged as changed, never with its value.
_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


def redact(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changed fields with every secret replaced by "(changed)"."""
    return {name: CHANGED if _SECRET_NAME.search(name) else value for name, value in changes.items()}


def cli_actor() -> str:
    """Who acts from the command line: the operating-system user, as the audit log names them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's numeric user)
        name = str(os.getuid())
    return f"cli:{name}"


async def record(
    *,
    actor: User | str,
    action: AuditAction,
    target_type: str,
    target_id: str,
    target_label: str = "",
    changes: Mapping[str, Any] | None = None,
    entry_id: PydanticObjectId | None = None,
) -> AuditEntry:
    """Store one audit entry. With `entry_id` (a use case that may be finished again after a crash), once: an
    entry stored under that id before is kept as it is."""
    entry = _entry(actor, action, target_type, target_id, target_label, changes)
    entry.id = entry_id
    await _store(entry, once=entry_id is not None)
    return entry


async def _store(entry: AuditEntry, *, once: bool) -> None:
    """Insert the entry; `once`: its id is the use case's, and an entry stored under it before is kept."""
    try:
        await entry.insert()
    except DuplicateKeyError:
        if not once:
            raise
        log.info(
            "audit.already_recorded id=%s action=%s target=%s:%s",
            entry.id,
            entry.action,
            entry.target_type,
            entry.target_id,
        )
        return
    log.info(
        "audit.recorded action=%s by=%s target=%s:%s",
        entry.action,
        entry.actor_email,
        entry.target_type,
        entry.target_id,
    )


def _entry(
    actor: User | str,
    action: AuditAction,
    target_type: str,
    target_id: str,
    target_label: str,
    changes: Mapping[str, Any] | None,
) -> AuditEntry:
    return AuditEntry(
        actor_id=None if isinstance(actor, str) else actor.id,
        actor_email=actor if isinstance(actor, str) else actor.email,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        changes=to_jsonable_python(redact(changes or {})),
    )


# --- a change as one unit: its audit entry, kept pending, is the record a restart finishes -----------------------

MARKS_KEPT = 10  # of the audit marks an account or a mailbox keeps (`applied`)
GRACE = timedelta(seconds=60)  # a change in progress takes milliseconds: a pending entry older than this was cut off
DELETIONS = frozenset((AuditAction.MAILBOX_DELETED,))
TARGETS: dict[str, type[Document]] = {"user": User, "mailbox": Mailbox}  # whose writes carry the entry's mark
# Changes that leave no document to mark: whether one was written is read from what it leaves. A catalog replaced
# is the list its entry names, in the catalog's order (categories by rank, skills by name); a suppression lifted is
# gone.
CATALOGS: dict[str, type[Document]] = {"skills": Skill, "categories": Category}
LIFTED = "suppression"
PENDING = "audit_pending"  # entries of changes under way: a few documents, so looking through them costs nothing

type Announcement = tuple[str, str, dict[str, Any]]  # an event: name, key, data


@dataclass(frozen=True)
class Pending:
    """A change's audit entry, stored apart until the change is: then it joins the log and `then` is emitted."""

    entry: AuditEntry
    then: tuple[Announcement, ...] = ()


def _pending() -> AsyncCollection[dict[str, Any]]:
    return AuditEntry.get_pymongo_collection().database[PENDING]


async def begin(
    *,
    actor: User | str,
    action: AuditAction,
    target_type: str,
    target_id: str,
    target_label: str = "",
    changes: Mapping[str, Any] | None = None,
    then: Sequence[Announcement] = (),
) -> Pending:
    """The audit entry of a change about to be written, stored pending (not in the log yet): the change's write
    carries `mark(pending)` (`marked` gives the update), `confirm` ends it, `abandon` drops it when the change is
    refused. `then` are the events that announce the change, emitted on confirmation. Cut off before the
    confirmation, it is confirmed or dropped by `finish_pending`, as the target says whether the write happened."""
    assert target_type in TARGETS or target_type in CATALOGS or target_type == LIFTED, target_type
    entry = _entry(actor, action, target_type, target_id, target_label, changes)
    entry.id = PydanticObjectId()
    pending = Pending(entry, tuple(then))
    await _pending().insert_one({**entry.model_dump(by_alias=True), "then": [list(event) for event in pending.then]})
    return pending


async def begin_catalog(
    *, actor: User | str | None, action: AuditAction, catalog: str, names: Sequence[str]
) -> Pending | None:
    """`begin` for replacing a catalog (CATALOGS) with `names`, in the catalog's order; None without an actor (a
    store seeded for tests or benchmarks: nothing audited)."""
    if actor is None:
        return None
    return await begin(
        actor=actor, action=action, target_type=catalog, target_id="catalog", changes={catalog: list(names)}
    )


def mark(pending: Pending) -> str:
    return f"audit {pending.entry.id}"


def marked(pending: Pending) -> dict[str, Any]:
    """The part of the change's update that records it on the target (keeping the last MARKS_KEPT marks)."""
    return {"$push": {"applied": {"$each": [mark(pending)], "$slice": -MARKS_KEPT}}}


async def confirm(pending: Pending) -> None:
    """The change is stored: announce it (each event once, by its key), log its entry (once, by its id)."""
    for name, key, data in pending.then:
        await events.emit(name, key=key, data=data)
    await _store(pending.entry, once=True)  # a confirmation cut off before the next line logged it already
    await _pending().delete_one({"_id": pending.entry.id})


async def abandon(pending: Pending) -> None:
    """The change was refused before its write: no entry."""
    await _pending().delete_one({"_id": pending.entry.id})


async def finish_pending(*, now: datetime, grace: timedelta = GRACE) -> list[AuditEntry]:
    """Confirm the entries of changes cut off after their write (the target carries the mark, or a deleted target
    is gone), drop those of changes never written; the entries confirmed, for what their changes still owe."""
    confirmed: list[AuditEntry] = []
    async for document in _pending().find({"at": {"$lt": now - grace}}).limit(100):
        then = tuple((str(name), str(key), dict(data)) for name, key, data in document.pop("then", []))
        pending = Pending(AuditEntry.model_validate(document), then)
        entry = pending.entry
        if await _written(pending):
            await confirm(pending)
            confirmed.append(entry)
            log.warning("audit.finished action=%s target=%s:%s", entry.action, entry.target_type, entry.target_id)
        else:
            log.warning(
                "audit.discarded action=%s target=%s:%s: never written",
                entry.action,
                entry.target_type,
                entry.target_id,
            )
            await abandon(pending)
    return confirmed


async def _written(pending: Pending) -> bool:
    """Whether the change of a pending entry was written: the target carries its mark (a deleted mailbox is gone; a
    catalog is what the entry lists; a lifted suppression is gone)."""
    entry = pending.entry
    if entry.target_type == LIFTED:
        return await Suppression.get_pymongo_collection().count_documents({"address": entry.target_id}, limit=1) == 0
    if entry.target_type in CATALOGS:
        found = CATALOGS[entry.target_type].get_pymongo_collection().find({}, {"name": 1})
        names = [str(document["name"]) async for document in found.sort([("rank", 1), ("name", 1)])]
        return names == [str(name) for name in entry.changes.get(entry.target_type, [])]
    target = (
        await TARGETS[entry.target_type]
        .get_pymongo_collection()
        .find_one({"_id": PydanticObjectId(entry.target_id)}, {"applied": 1})
    )
    if entry.action in DELETIONS:
        return target is None
    return target is not None and mark(pending) in target.get("applied", [])


async def list_entries(
    *, actor: str | None = None, action: AuditAction | None = None, page: int = 1, page_size: int = 25
) -> Page[AuditEntry]:
    """Newest first. `actor` is a user id or an email address (exact, any case)."""
    page, page_size = paging.bounds(page, page_size)
    query: dict[str, object] = {}
    if actor:
        wanted = actor.strip().lower()
        if _OBJECT_ID.fullmatch(wanted):
            query["actor_id"] = PydanticObjectId(wanted)
        else:
            query["actor_email"] = wanted
    if action is not None:
        query["action"] = str(action)
    total = await AuditEntry.find(query).count()
    found = AuditEntry.find(query).sort("-at", "-_id")
    return await paging.page_of(found, total=total, page=page, page_size=page_size)
