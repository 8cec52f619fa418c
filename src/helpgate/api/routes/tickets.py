"""Tickets: the list, one ticket with its messages, and what agents do on one (reply, note, change)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from helpgate.api.deps import CurrentUser, OutgoingMail, StaffUser
from helpgate.api.schemas import (
    MessageOut,
    NoteRequest,
    ReplyRequest,
    TicketDetailOut,
    TicketOut,
    TicketPage,
    TicketPatch,
)
from helpgate.core.services import replies, tickets
from helpgate.core.services.replies import NewFile
from helpgate.core.services.tickets import TicketChanges

router = APIRouter(prefix="/api/tickets", tags=["tickets"])

TicketNumber = Annotated[int, Path(ge=1)]


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
async def get_ticket(user: CurrentUser, number: TicketNumber) -> TicketDetailOut:
    detail = await tickets.get_detail(viewer=user, number=number)
    messages = [MessageOut.of(message, detail.deliveries.get(message.id)) for message in detail.messages if message.id]
    ticket = detail.ticket
    staff: dict[str, object] = {}
    if user.is_staff:
        staff = {
            "triage": ticket.triage.model_dump() if ticket.triage else None,
            "response_due_at": ticket.response_due_at,
            "first_response_at": ticket.first_response_at,
            "escalated_at": ticket.escalated_at,
        }
    return TicketDetailOut.model_validate({**TicketOut.fields_of(ticket), "messages": messages, **staff})


@router.patch("/{number}")
async def update_ticket(user: StaffUser, number: TicketNumber, body: TicketPatch, outgoing: OutgoingMail) -> TicketOut:
    changes = TicketChanges(given=frozenset(body.model_fields_set), **body.model_dump(exclude_unset=True))
    return TicketOut.of(await tickets.update(actor=user, number=number, changes=changes, outgoing=outgoing))


@router.post("/{number}/replies", status_code=201, response_model_by_alias=True)
async def reply(user: StaffUser, number: TicketNumber, body: ReplyRequest, outgoing: OutgoingMail) -> MessageOut:
    message, mail = await replies.reply(
        author=user,
        number=number,
        text=body.text,
        html=body.html,
        cc=body.cc,
        files=[NewFile(filename=a.filename, content_type=a.content_type, data=a.data) for a in body.attachments],
        status=body.status,
        outgoing=outgoing,
    )
    return MessageOut.of(message, mail)


@router.post("/{number}/notes", status_code=201, response_model_by_alias=True)
async def add_note(user: StaffUser, number: TicketNumber, body: NoteRequest) -> MessageOut:
    return MessageOut.of(await replies.note(author=user, number=number, text=body.text))
