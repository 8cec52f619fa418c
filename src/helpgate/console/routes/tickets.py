"""One ticket: its thread (mail, replies with their delivery state, internal notes set apart), the triage
panel and response target, and what can be done on it: reply, note, change (staff) or answer (its customer).
Every form post carries the session's CSRF token and goes through the same services as the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query, Request
from starlette.responses import Response

from helpgate.accounts import users
from helpgate.api.deps import get_drafter, get_outgoing
from helpgate.api.schemas.ticket_changes import NoteRequest, ReplyRequest, RequesterMessage, TicketMerge, TicketPatch
from helpgate.console import pages
from helpgate.console.forms import first, posted, posted_with_files, valid
from helpgate.console.routing import router
from helpgate.console.session import CSRF_FIELD, CurrentViewer, Viewer, keep
from helpgate.core import safe_html
from helpgate.core.clock import utcnow
from helpgate.core.errors import Conflict, Forbidden, TooManyAttempts
from helpgate.models import Direction, Message, MessageKind, OutboundMail, Priority, TicketStatus
from helpgate.tickets import downloads, merging, replies, tickets
from helpgate.tickets.replies import NewFile
from helpgate.tickets.tickets import TicketChanges
from helpgate.workflows import drafting
from helpgate.workflows.ai.provider import TriageFailed

routes = router()

TicketNumber = Annotated[int, Path(ge=1, le=tickets.MAX_NUMBER)]
MAX_FILES = 20  # attachments to one reply, as over the API
#: The sandboxed frame's own policy, on top of the page's (which it inherits): nothing loads but data: images,
#: and https: images once the viewer asked for that message's (the page then allows them too).
FRAME_CSP = "default-src 'none'; img-src data:"
FRAME_CSP_IMAGES = "default-src 'none'; img-src data: https:"


@dataclass(frozen=True)
class Attached:
    filename: str
    size: int
    url: str
    purged: bool


@dataclass(frozen=True)
class Shown:
    """A message as the console shows it."""

    id: str
    note: bool
    inbound: bool
    from_email: str
    from_name: str
    at: datetime
    text: str
    full_text: str
    frame: str | None  # the srcdoc of its sandboxed frame, when it has HTML
    remote_images: int  # images not loaded (their source set aside)
    images_shown: bool  # the viewer asked for this message's https: images
    attachments: list[Attached]
    delivery: str | None  # outbound: queued, sent, failed...
    delivery_error: str | None
    flags: list[str]


def srcdoc(html: str, *, images: bool = False) -> str:
    """A complete document for a sandboxed frame: its own CSP, then the sanitised HTML."""
    policy = f'<meta http-equiv="Content-Security-Policy" content="{FRAME_CSP_IMAGES if images else FRAME_CSP}">'
    return f'<!doctype html><meta charset="utf-8">{policy}{html}'


def shown(
    message: Message, delivery: OutboundMail | None, *, staff: bool, our_address: str, images: bool = False
) -> Shown:
    safe = safe_html.for_display(message.html, remote_images=images) if message.html else None
    base = f"/tickets/{message.ticket_number}/messages/{message.id}/attachments"
    from_email = message.from_email
    if not staff and message.direction is not Direction.INBOUND:
        from_email = our_address  # as the customer got it: never an agent's own address
    return Shown(
        id=str(message.id),
        note=message.kind is MessageKind.NOTE,
        inbound=message.direction is Direction.INBOUND,
        from_email=from_email,
        from_name=message.from_name,
        at=message.created_at,
        text=message.text,
        full_text=message.full_text or message.text,
        frame=srcdoc(safe.html, images=images) if safe is not None and safe.html.strip() else None,
        remote_images=safe.remote_images if safe is not None else 0,
        images_shown=images,
        attachments=[
            Attached(filename=ref.filename, size=ref.size, url=f"{base}/{index}", purged=ref.purged_at is not None)
            for index, ref in enumerate(message.attachments)
        ],
        delivery=str(delivery.status) if delivery is not None else None,
        delivery_error=delivery.last_error if delivery is not None and staff else None,
        flags=message.flags if staff else [],
    )


@routes.get("/tickets/{number}")
async def ticket_page(
    request: Request,
    viewer: CurrentViewer,
    number: TicketNumber,
    images: Annotated[str, Query(max_length=24, description="the message whose https: images to load")] = "",
) -> Response:
    """The ticket; with `images`, that message is shown with its remote (https:) images, which the page's
    policy then allows: tracking pixels load only when the viewer asks, for that message."""
    user = viewer.user
    detail = await tickets.get_detail(viewer=user, number=number)
    our_address = get_outgoing(request).from_address
    thread = [
        shown(
            message,
            detail.deliveries.get(message.id),
            staff=user.is_staff,
            our_address=our_address,
            images=str(message.id) == images,
        )
        for message in detail.messages
        if message.id is not None
    ]
    shows_images = any(message.images_shown for message in thread)
    csp = pages.CSP.replace("img-src 'self' data:", "img-src 'self' data: https:") if shows_images else None
    context: dict[str, Any] = {
        "ticket": detail.ticket,
        "thread": thread,
        "images": images if shows_images else "",
        "staff": await users.staff() if user.is_staff else [],
        "statuses": list(TicketStatus),
        "priorities": list(Priority),
        "csrf_field": CSRF_FIELD,
        "can_draft": user.is_staff and get_drafter(request) is not None,
    }
    if request.headers.get("hx-request"):
        return pages.page(request, viewer, "_thread.html.j2", csp=csp, **context)
    return pages.page(request, viewer, "ticket.html.j2", csp=csp, **context)


@routes.get("/tickets/{number}/messages/{message_id}/attachments/{index}")
async def download(
    request: Request,
    viewer: CurrentViewer,
    number: TicketNumber,
    message_id: Annotated[str, Path(max_length=24)],
    index: Annotated[int, Path(ge=0, le=1000)],
) -> Response:
    """A file as a download, never shown in the page: a type a browser would render or run is sent as
    application/octet-stream, and `nosniff` keeps the browser to it."""
    found = await downloads.attachment(viewer=viewer.user, number=number, message_id=message_id, index=index)
    disposition = f"attachment; filename*=UTF-8''{quote(found.filename, safe='')}"
    headers = {**pages.HEADERS, "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    return keep(Response(found.data, media_type=found.content_type, headers=headers), request, viewer)


async def _posted(request: Request, viewer: Viewer, *, staff: bool) -> dict[str, str]:
    fields = await posted(request, viewer)
    if staff and not viewer.user.is_staff:
        raise Forbidden("only agents and admins can do this")
    return {name: values[0] for name, values in fields.items()}


def _back(request: Request, viewer: Viewer, number: int) -> Response:
    return pages.redirect(request, viewer, f"/tickets/{number}")


@routes.post("/tickets/{number}/reply")
async def reply(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    """The reply, with the files attached (multipart): at most MAX_FILES, HELPGATE_MAX_REPLY_ATTACHMENT_BYTES
    together (413 past it, as over the API)."""
    fields, uploads = await posted_with_files(request, viewer, max_files=MAX_FILES)
    if not viewer.user.is_staff:
        raise Forbidden("only agents and admins can do this")
    cc_list = first(fields, "cc").replace(";", ",").split(",")
    body = valid(
        ReplyRequest,
        {
            "text": first(fields, "text"),
            "cc": [address.strip() for address in cc_list if address.strip()],
            "status": first(fields, "status") or "pending",
        },
    )
    await replies.reply(
        author=viewer.user,
        number=number,
        text=body.text,
        cc=body.cc,
        files=[NewFile(filename=each.filename, content_type=each.content_type, data=each.data) for each in uploads],
        status=body.status,
        outgoing=get_outgoing(request),
    )
    return _back(request, viewer, number)


@routes.post("/tickets/{number}/note")
async def note(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    form = await _posted(request, viewer, staff=True)
    body = valid(NoteRequest, {"text": form.get("text", "")})
    await replies.note(author=viewer.user, number=number, text=body.text)
    return _back(request, viewer, number)


@routes.post("/tickets/{number}/change")
async def change(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    """Status, priority, assignee and category as the form shows them: only what differs from the ticket
    now is changed (and audited), so a form left as it was changes nothing."""
    form = await _posted(request, viewer, staff=True)
    ticket = await tickets.get_for_staff(viewer=viewer.user, number=number)
    now: dict[str, object] = {
        "status": str(ticket.status),
        "priority": str(ticket.priority) if ticket.priority else None,
        "assignee": ticket.assignee.email if ticket.assignee else None,
        "category": ticket.category,
        "skills": ticket.skills,
    }
    asked: dict[str, object] = {name: form[name] or None for name in now if name in form and name != "skills"}
    if "skills" in form:
        asked["skills"] = [name.strip() for name in form["skills"].replace(";", ",").split(",") if name.strip()]
    patch = valid(TicketPatch, {name: value for name, value in asked.items() if value != now[name]})
    if patch.model_fields_set:
        changes = TicketChanges(given=frozenset(patch.model_fields_set), **patch.model_dump(exclude_unset=True))
        await tickets.update(actor=viewer.user, number=number, changes=changes)
    return _back(request, viewer, number)


@routes.post("/tickets/{number}/draft")
async def draft(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    """The AI's draft in the reply box (htmx swaps the box), or why there is none: the agent edits and sends."""
    await posted_with_files(request, viewer, max_files=1)  # the reply form's encoding; only its token is read
    text, problem = "", None
    try:
        drafted = await drafting.draft(viewer=viewer.user, number=number, drafter=get_drafter(request), now=utcnow())
        text = drafted.text
    except (Conflict, TooManyAttempts, TriageFailed) as error:
        problem = error.detail
    ticket = await tickets.get_for_staff(viewer=viewer.user, number=number)
    return pages.page(request, viewer, "_reply_box.html.j2", ticket=ticket, draft=text, draft_error=problem)


@routes.post("/tickets/{number}/merge")
async def merge(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    """Merge this ticket into another (same requester): the page of the one that remains follows."""
    form = await _posted(request, viewer, staff=True)
    body = valid(TicketMerge, {"into": form.get("into", "").strip().lstrip("#")})
    target = await merging.merge(actor=viewer.user, number=number, into=body.into)
    return _back(request, viewer, target.number)


@routes.post("/tickets/{number}/answer")
async def answer(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    """The ticket's customer answers on it, as by mail."""
    form = await _posted(request, viewer, staff=False)
    body = valid(RequesterMessage, {"text": form.get("text", "")})
    await tickets.reply_as_requester(author=viewer.user, number=number, text=body.text)
    return _back(request, viewer, number)
