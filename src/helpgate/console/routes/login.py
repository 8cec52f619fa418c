"""Logging in with a form (the API's login, its lockout included) and out (the session ends everywhere)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.responses import Response

from helpgate.accounts import sessions
from helpgate.api.deps import get_auth_policy, get_client, get_issuer, get_refresh_ttl
from helpgate.console import pages, session
from helpgate.console.forms import posted, read_form
from helpgate.console.routing import router
from helpgate.core.clock import utcnow
from helpgate.core.errors import NotAuthenticated, TooManyAttempts

routes = router()


#: A path of ours: one slash, then printable ASCII without backslashes (browsers drop tabs and newlines from a
#: URL, so "/\t/evil.example" would be "//evil.example", another site).
_OUR_PATH = re.compile(r"/(?![/])[\x21-\x5b\x5d-\x7e]*")


def _next(value: str | None) -> str:
    """Where to go after logging in: a path of ours only (never `//host`, a URL, or a path with control
    characters or backslashes), else the queue."""
    if value and _OUR_PATH.fullmatch(value):
        return value
    return "/"


@routes.get("/login")
async def login_form(request: Request, next: str | None = None, chosen: bool = False) -> Response:
    return pages.page(request, None, "login.html.j2", next=_next(next), email="", error=None, chosen=chosen)


@routes.post("/login")
async def login(request: Request) -> Response:
    session.same_origin(request)
    form = await read_form(request)
    email, to = form.get("email", ""), _next(form.get("next"))
    try:
        pair = await sessions.login(
            email=email,
            password=form.get("password", ""),
            issuer=get_issuer(request),
            refresh_ttl=get_refresh_ttl(request),
            client=get_client(request),
            policy=get_auth_policy(request),
        )
    except (NotAuthenticated, TooManyAttempts) as error:
        status = error.http_status
        context: dict[str, Any] = {"next": to, "email": email, "error": error.detail, "chosen": False}
        return pages.page(request, None, "login.html.j2", status=status, **context)
    response = pages.redirect(request, None, to)
    session.set_cookies(response, request, pair)
    return response


@routes.post("/logout")
async def logout(request: Request, viewer: session.CurrentViewer) -> Response:
    await posted(request, viewer)
    refresh = viewer.renewed.refresh_token if viewer.renewed else request.cookies.get(session.REFRESH_COOKIE, "")
    await sessions.logout(token=refresh, issuer=get_issuer(request), now=utcnow())
    response = pages.redirect(request, None, "/login")
    session.clear_cookies(response, request)
    return response
