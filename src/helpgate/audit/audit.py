"""The audit log of admin and staff actions: written by each change's service, whoever asked for it (the API's
user, `cli:<operating-system user>` from the command line), read newest first by admins."""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic_core import to_jsonable_python
from pymongo.errors import DuplicateKeyError

from helpgate.core import paging
from helpgate.core.paging import Page
from helpgate.models import AuditAction, AuditEntry, Mailbox, User
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
    try:
        await entry.insert()
    except DuplicateKeyError:
        if entry_id is None:
            raise
        log.info("audit.already_recorded id=%s action=%s target=%s:%s", entry_id, action, target_type, target_id)
        return entry
    log.info("audit.recorded action=%s by=%s target=%s:%s", action, entry.actor_email, target_type, target_id)
    return entry


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


# --- a change as one unit: its audit entry is the record a restart finishes ------------------------------------

MARKS_KEPT = 10  # of the audit marks an account or a mailbox keeps (`applied`)
GRACE = timedelta(seconds=60)  # a change in progress takes milliseconds: a pending entry older than this was cut off
DELETIONS = frozenset((AuditAction.MAILBOX_DELETED,))
TARGETS: dict[str, type[Document]] = {"user": User, "mailbox": Mailbox}  # whose writes carry the entry's mark


async def begin(
    *,
    actor: User | str,
    action: AuditAction,
    target_type: str,
    target_id: str,
    target_label: str = "",
    changes: Mapping[str, Any] | None = None,
    then: Sequence[tuple[str, str, dict[str, Any]]] = (),
) -> AuditEntry:
    """The audit entry of a change about to be written, stored pending (not listed): the change's write carries
    `mark(entry)` (`marked` gives the update), `confirm` ends it, `abandon` drops it when the change is refused.
    `then` are the events (name, key, data) that announce the change, emitted on confirmation. Cut off before the
    confirmation, it is confirmed or dropped by `finish_pending`, as the target says whether the write happened."""
    assert target_type in TARGETS, target_type
    entry = _entry(actor, action, target_type, target_id, target_label, changes)
    entry.id = PydanticObjectId()
    entry.pending = True
    entry.then = [{"name": name, "key": key, "data": data} for name, key, data in then]
    await entry.insert()
    return entry


def mark(entry: AuditEntry) -> str:
    return f"audit {entry.id}"


def marked(entry: AuditEntry) -> dict[str, Any]:
    """The part of the change's update that records it on the target (keeping the last MARKS_KEPT marks)."""
    return {"$push": {"applied": {"$each": [mark(entry)], "$slice": -MARKS_KEPT}}}


async def confirm(entry: AuditEntry) -> None:
    """The change is stored: announce it (each event once, by its key) and list its entry."""
    for event in entry.then:
        await events.emit(event["name"], key=event["key"], data=event["data"])
    await AuditEntry.get_pymongo_collection().update_one({"_id": entry.id}, {"$set": {"pending": False, "then": []}})
    log.info(
        "audit.recorded action=%s by=%s target=%s:%s",
        entry.action,
        entry.actor_email,
        entry.target_type,
        entry.target_id,
    )


async def abandon(entry: AuditEntry) -> None:
    """The change was refused before its write: no entry."""
    await entry.delete()


async def finish_pending(*, now: datetime, grace: timedelta = GRACE) -> int:
    """Confirm the entries of changes cut off after their write (the target carries the mark, or a deleted target
    is gone), drop those of changes never written; how many were confirmed."""
    confirmed = 0
    found = AuditEntry.find({"pending": True, "at": {"$lt": now - grace}})
    for entry in await found.limit(100).to_list():
        target = (
            await TARGETS[entry.target_type]
            .get_pymongo_collection()
            .find_one({"_id": PydanticObjectId(entry.target_id)}, {"applied": 1})
        )
        if entry.action in DELETIONS:
            written = target is None
        else:
            written = target is not None and mark(entry) in target.get("applied", [])
        if written:
            await confirm(entry)
            confirmed += 1
            log.warning("audit.finished action=%s target=%s:%s", entry.action, entry.target_type, entry.target_id)
        else:
            log.warning(
                "audit.discarded action=%s target=%s:%s: never written",
                entry.action,
                entry.target_type,
                entry.target_id,
            )
            await abandon(entry)
    return confirmed


async def list_entries(
    *, actor: str | None = None, action: AuditAction | None = None, page: int = 1, page_size: int = 25
) -> Page[AuditEntry]:
    """Newest first. `actor` is a user id or an email address (exact, any case)."""
    page, page_size = paging.bounds(page, page_size)
    query: dict[str, object] = {"pending": {"$ne": True}}
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
