"""The collision notice on a ticket page: the page says it is there (and when its reply or note is being
typed) and gets back who else has the ticket open; the live stream's `presence-<number>` tells it to ask again
as soon as someone arrives or starts typing. Agents and admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from starlette.responses import Response

from helpgate.console import pages
from helpgate.console.forms import first, posted
from helpgate.console.presence import TYPING, VIEWING, Presence
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer
from helpgate.core.errors import Forbidden
from helpgate.tickets import tickets

routes = router()

TicketNumber = Annotated[int, Path(ge=1, le=tickets.MAX_NUMBER)]


def presence_of(request: Request) -> Presence:
    presence: Presence = request.app.state.presence
    return presence


@routes.post("/tickets/{number}/presence")
async def here(request: Request, viewer: CurrentViewer, number: TicketNumber) -> Response:
    fields = await posted(request, viewer)
    if not viewer.user.is_staff:
        raise Forbidden("only agents and admins can do this")
    await tickets.get_for_staff(viewer=viewer.user, number=number)  # 404 for a ticket that is not there
    presence = presence_of(request)
    presence.touch(number, viewer.user, TYPING if first(fields, "state") == TYPING else VIEWING)
    others = presence.others(number, viewer.user)
    return pages.page(request, viewer, "_presence.html.j2", number=number, others=others, arriving=False)
