"""The page a customer's rating link opens (no login: the signed link is the key). Opening it records nothing,
since mail scanners open links too; its form records the rating, with a comment if the customer writes one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from starlette.responses import Response

from helpgate.api.deps import get_outgoing
from helpgate.console import pages
from helpgate.console.forms import read_form
from helpgate.console.routing import router
from helpgate.console.session import same_origin
from helpgate.core.clock import utcnow
from helpgate.tickets import ratings, tickets

routes = router()

Token = Annotated[str, Path(max_length=120)]


@routes.get("/rate/{token}")
async def rating_page(request: Request, token: Token, score: Annotated[str, Query(max_length=10)] = "") -> Response:
    number = ratings.ticket_of(token, secret=get_outgoing(request).secret, now=utcnow())
    ticket = await tickets.get_by_number(number)
    context: dict[str, Any] = {"token": token, "score": score if score in ratings.SCORES else ratings.GOOD}
    context["ticket"] = ticket
    return pages.page(request, None, "rate.html.j2", done=False, **context)


@routes.post("/rate/{token}")
async def rate(request: Request, token: Token) -> Response:
    same_origin(request)
    form = await read_form(request)
    ticket = await ratings.rate(
        given=token,
        secret=get_outgoing(request).secret,
        score=form.get("score", ""),
        comment=form.get("comment", ""),
        now=utcnow(),
    )
    return pages.page(request, None, "rate.html.j2", done=True, token=token, score=form["score"], ticket=ticket)
