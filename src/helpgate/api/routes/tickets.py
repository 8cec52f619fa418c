"""Tickets: the queue (filters, sidebar counts), one ticket with its messages, what agents do on one (reply,
note, change), and what customers do (open a ticket, answer on their own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request

from helpgate.api.deps import CurrentUser, OutgoingMail, StaffUser, get_drafter
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.ticket_changes import (
    NoteRequest,
    ReplyRequest,
    RequesterMessage,
    TicketCreate,
    TicketMerge,
    TicketPatch,
    TicketQuery,
)
from helpgate.api.schemas.tickets import DraftOut, MessageOut, TicketDetailOut, TicketOut, TicketPage, TicketStatsOut
from helpgate.core.clock import utcnow
from helpgate.core.errors import TooManyAttempts
from helpgate.tickets import merging, replies, ticket_list, tickets
from helpgate.tickets.replies import NewFile
from helpgate.tickets.tickets import TicketChanges
from helpgate.workflows import drafting

router = APIRouter(prefix="/api/tickets", tags=["tickets"], responses=errors(401))

INVALID = errors(422)
BODY = errors(400, 422)
STAFF_ONLY = error(403, "only agents and admins can do this", detail="only agents and admins can do this")
NO_TICKET = error(404, "no such ticket, or (customers) not one of yours")
CUSTOMER_FILTER = error(
    403, "customers filter and sort by none of priority, category and assignee", detail=ticket_list.STAFF_FIELDS_ONLY
)

TicketNumber = Annotated[int, Path(ge=1, le=tickets.MAX_NUMBER)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Sending the same key again returns what the first request created instead of a copy",
    ),
]


@router.get("", responses=CUSTOMER_FILTER | INVALID)
async def list_tickets(user: CurrentUser, query: Annotated[TicketQuery, Query()]) -> TicketPage:
    """The queue: staff see every ticket, customers their own (without triage and assignment). Filters combine
    (AND); repeated `status` or `priority` values are alternatives (OR)."""
    result = await ticket_list.list_tickets(
        viewer=user, page=query.page, page_size=query.page_size, where=query.to_filter(), sort=query.sort
    )
    return TicketPage(
        items=[TicketOut.of(ticket, staff=user.is_staff) for ticket in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.post("", status_code=201, responses=error(403, "only agents and admins may name another `requester`") | BODY)
async def open_ticket(user: CurrentUser, body: TicketCreate, idempotency_key: IdempotencyKey = None) -> TicketOut:
    """Open a ticket as if mailed in: triage, assignment and the acknowledgement mail follow. Agents and
    admins may open one for a customer by `requester` email."""
    ticket = await tickets.open_from_api(
        author=user,
        subject=body.subject,
        text=body.text,
        requester_email=body.requester,
        idempotency_key=idempotency_key,
    )
    return TicketOut.of(ticket, staff=user.is_staff)


@router.get("/stats", responses=STAFF_ONLY)
async def ticket_stats(user: StaffUser) -> TicketStatsOut:
    """Counts for the agent's sidebar (agents and admins)."""
    return TicketStatsOut.of(await ticket_list.stats(viewer=user))


@router.get("/{number}", response_model_by_alias=True, responses=NO_TICKET | INVALID)
async def get_ticket(user: CurrentUser, number: TicketNumber, outgoing: OutgoingMail) -> TicketDetailOut:
    """The ticket with its messages, oldest first. Customers see their own tickets without internal notes,
    triage or assignment, and agents' mail as from the support address; agents and admins also see the
    triage, the response target and each outgoing mail's delivery."""
    detail = await tickets.get_detail(viewer=user, number=number)
    messages = [
        MessageOut.of(
            message, detail.deliveries.get(message.id), staff=user.is_staff, our_address=outgoing.from_address
        )
        for message in detail.messages
        if message.id
    ]
    ticket = detail.ticket
    staff: dict[str, object] = {}
    if user.is_staff:
        staff = {
            "triage": ticket.triage.model_dump() if ticket.triage else None,
            "response_due_at": ticket.response_due_at,
            "first_response_at": ticket.first_response_at,
            "escalated_at": ticket.escalated_at,
            "auth_failed": ticket.auth_failed,
            "flags": ticket.flags,
            "linked_tickets": ticket.linked_tickets,
        }
    fields = TicketOut.fields_of(ticket, staff=user.is_staff)
    return TicketDetailOut.model_validate({**fields, "messages": messages, **staff})


@router.patch("/{number}", responses=STAFF_ONLY | NO_TICKET | BODY)
async def update_ticket(user: StaffUser, number: TicketNumber, body: TicketPatch) -> TicketOut:
    """Change status, priority, assignee (an active agent or admin by email; null unassigns) or category.
    Only the fields sent change; the change is audited. A new assignee (not you) and, when the ticket becomes
    solved, the customer are told by mail."""
    changes = TicketChanges(given=frozenset(body.model_fields_set), **body.model_dump(exclude_unset=True))
    ticket = await tickets.update(actor=user, number=number, changes=changes)
    return TicketOut.of(ticket, staff=True)


@router.post(
    "/{number}/draft",
    responses=STAFF_ONLY
    | NO_TICKET
    | INVALID
    | error(409, "no AI is configured: the keyword triage writes no drafts", detail=drafting.NO_AI)
    | error(429, f"more than {drafting.PER_HOUR.count} drafts in an hour by one agent; Retry-After says how long")
    | error(502, "the AI gave no usable answer after its attempts"),
)
async def draft_reply(user: StaffUser, number: TicketNumber, request: Request) -> DraftOut:
    """A reply drafted by the AI from the thread and the internal notes, in the customer's language, for you to
    edit: it is never sent by itself (send it through /replies). At most 30 an hour per agent."""
    try:
        draft = await drafting.draft(viewer=user, number=number, drafter=get_drafter(request), now=utcnow())
    except TooManyAttempts as limited:
        headers = {"Retry-After": str(limited.retry_after)}
        raise HTTPException(limited.http_status, detail=limited.detail, headers=headers) from None
    return DraftOut(text=draft.text, model=draft.model)


@router.post(
    "/{number}/merge",
    responses=STAFF_ONLY
    | NO_TICKET
    | error(409, "either ticket was merged already, or their requesters differ")
    | BODY,
)
async def merge_ticket(user: StaffUser, number: TicketNumber, body: TicketMerge) -> TicketOut:
    """Merge this ticket into ticket `into` (same requester only; audited): its messages move there, it is closed
    with `merged_into`, and mail answering either ticket lands on `into`. Asking again finishes a merge that was
    cut off. The answer is the ticket that remains."""
    return TicketOut.of(await merging.merge(actor=user, number=number, into=body.into), staff=True)


@router.post(
    "/{number}/replies",
    status_code=201,
    response_model_by_alias=True,
    responses=STAFF_ONLY
    | NO_TICKET
    | error(
        413,
        "the attachments are larger than HELPGATE_MAX_REPLY_ATTACHMENT_BYTES, or the body is larger than that "
        "(in base64) and HELPGATE_MAX_REQUEST_BYTES together",
    )
    | BODY,
)
async def reply(user: StaffUser, number: TicketNumber, body: ReplyRequest, outgoing: OutgoingMail) -> MessageOut:
    """Answer the customer by mail (threaded, from the support address), with optional Cc and attachments;
    the ticket moves to `status` (pending by default). The answer carries the mail's delivery state."""
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


@router.post("/{number}/notes", status_code=201, response_model_by_alias=True, responses=STAFF_ONLY | NO_TICKET | BODY)
async def add_note(user: StaffUser, number: TicketNumber, body: NoteRequest) -> MessageOut:
    """An internal note for agents and admins: never mailed, never shown to the customer."""
    return MessageOut.of(await replies.note(author=user, number=number, text=body.text))


@router.post(
    "/{number}/messages",
    status_code=201,
    response_model_by_alias=True,
    responses=error(403, "only the ticket's requester writes here; agents and admins reply through /replies")
    | NO_TICKET
    | BODY,
)
async def add_requester_message(
    user: CurrentUser, number: TicketNumber, body: RequesterMessage, idempotency_key: IdempotencyKey = None
) -> MessageOut:
    """The requester answers on their own ticket, as by mail: a pending or solved ticket opens again."""
    message = await tickets.reply_as_requester(
        author=user, number=number, text=body.text, idempotency_key=idempotency_key
    )
    return MessageOut.of(message, staff=False)
