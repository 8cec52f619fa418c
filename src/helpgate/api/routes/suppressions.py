"""Suppressed addresses, for admins: which addresses helpgate no longer mails (they bounced), and lifting one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from helpgate.api.deps import AdminUser
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.admin import SuppressionOut, SuppressionPage
from helpgate.core import paging
from helpgate.core.errors import NotFound
from helpgate.mail_out import suppressions

router = APIRouter(prefix="/api/suppressions", tags=["suppressions"], responses=errors(401, 403, 422))

Address = Annotated[str, Path(min_length=3, max_length=320, description="the suppressed address")]


@router.get("")
async def list_suppressions(
    admin: AdminUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)] = 25,
) -> SuppressionPage:
    """Addresses helpgate does not mail, newest first, with the bounce that suppressed each."""
    result = await suppressions.list_page(page=page, page_size=page_size)
    return SuppressionPage(
        items=[SuppressionOut.of(item) for item in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.delete(
    "/{address}", status_code=204, response_class=Response, responses=error(404, "this address is not suppressed")
)
async def lift_suppression(admin: AdminUser, address: Address) -> Response:
    """Mail this address again (say, the customer fixed their mailbox); audited."""
    if not await suppressions.lift(actor=admin, address=address):
        raise NotFound(f"{address} is not suppressed")
    return Response(status_code=204)
