"""Read tickets: the list (newest first, paginated) and one ticket with its messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from helpgate.api.deps import CurrentUser
from helpgate.api.schemas import MessageOut, TicketDetailOut, TicketOut, TicketPage
from helpgate.core.services import tickets

router = APIRouter(prefix="/api/tickets", tags=["tickets"])


@router.get("")
async def list_tickets(
    user: CurrentUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=tickets.MAX_PAGE_SIZE)] = 25,
) -> TicketPage:
    result = await tickets.list_tickets(viewer=user, page=page, page_size=page_size)
    return TicketPage(
        items=[TicketOut.of(ticket) for ticket in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.get("/{number}", response_model_by_alias=True)
async def get_ticket(user: CurrentUser, number: Annotated[int, Path(ge=1)]) -> TicketDetailOut:
    ticket, messages = await tickets.get_ticket(viewer=user, number=number)
    return TicketDetailOut.model_validate(
        {**TicketOut.fields_of(ticket), "messages": [MessageOut.of(message) for message in messages]}
    )
