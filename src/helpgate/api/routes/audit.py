"""The audit log, for admins: who changed accounts, skills, mailboxes and tickets, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from helpgate.api.deps import AdminUser
from helpgate.api.openapi import errors
from helpgate.api.schemas.admin import AuditEntryOut, AuditPage
from helpgate.audit import audit
from helpgate.core import paging
from helpgate.models import AuditAction

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=errors(401, 403, 422))


@router.get("")
async def list_audit(
    admin: AdminUser,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=320, description="who acted: a user id or an email address")
    ] = None,
    action: AuditAction | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)] = 25,
) -> AuditPage:
    """What admins changed, newest first: by actor (id or email) and by action."""
    result = await audit.list_entries(actor=actor, action=action, page=page, page_size=page_size)
    return AuditPage(
        items=[AuditEntryOut.of(entry) for entry in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )
