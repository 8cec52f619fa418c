"""The audit log of admin and staff actions: written by each change's service, whoever asked for it (the API's
user, `cli:<operating-system user>` from the command line), read newest first by admins."""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from beanie import PydanticObjectId
from pydantic_core import to_jsonable_python
from pymongo.errors import DuplicateKeyError

from helpgate.core import paging
from helpgate.core.paging import Page
from helpgate.models import AuditAction, AuditEntry, User

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
    entry = AuditEntry(
        id=entry_id,
        actor_id=None if isinstance(actor, str) else actor.id,
        actor_email=actor if isinstance(actor, str) else actor.email,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        changes=to_jsonable_python(redact(changes or {})),
    )
    try:
        await entry.insert()
    except DuplicateKeyError:
        if entry_id is None:
            raise
        log.info("audit.already_recorded id=%s action=%s target=%s:%s", entry_id, action, target_type, target_id)
        return entry
    log.info("audit.recorded action=%s by=%s target=%s:%s", action, entry.actor_email, target_type, target_id)
    return entry


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
