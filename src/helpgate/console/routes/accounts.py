"""Accounts without a session: sign up (a customer account for yourself), ask for a password reset, and choose
a password with the mailed code (which is also how customers created by their first mail get one). The API's
services, limits and answers: the same answer for any address, given before the address is looked up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from helpgate.accounts import account_codes
from helpgate.api.deps import get_auth_policy, get_client, get_deferred, get_outgoing
from helpgate.api.schemas.auth import PasswordResetConfirm, PasswordResetRequest, SignupRequest
from helpgate.console import pages
from helpgate.console.forms import read_form, valid
from helpgate.console.routing import router
from helpgate.console.session import same_origin
from helpgate.core.clock import utcnow
from helpgate.core.errors import HelpgateError

routes = router()

MAILED = "If the address can receive mail, a message with a code is on its way. Enter it below with your password."


@routes.get("/signup")
async def signup_form(request: Request) -> Response:
    return pages.page(
        request, None, "signup.html.j2", email="", name="", error=None, open=get_auth_policy(request).allow_signup
    )


@routes.post("/signup")
async def signup(request: Request) -> Response:
    same_origin(request)
    form = await read_form(request)
    email, name = form.get("email", ""), form.get("name", "")
    try:
        body = valid(SignupRequest, {"email": email, "name": name})
        client, policy = get_client(request), get_auth_policy(request)
        address = await account_codes.admit_signup(email=body.email, client=client, policy=policy)
    except HelpgateError as error:
        context: dict[str, Any] = {"email": email, "name": name, "error": error.detail}
        context["open"] = get_auth_policy(request).allow_signup
        return pages.page(request, None, "signup.html.j2", status=error.http_status, **context)
    deferred, outgoing = get_deferred(request), get_outgoing(request)
    work = account_codes.signup(address=address, name=body.name, outgoing=outgoing, client=client, policy=policy)
    deferred.start(work, what="signup")
    return pages.page(request, None, "choose_password.html.j2", token="", notice=MAILED, error=None)


@routes.get("/password-reset")
async def reset_form(request: Request) -> Response:
    return pages.page(request, None, "reset.html.j2", email="", error=None)


@routes.post("/password-reset")
async def reset(request: Request) -> Response:
    same_origin(request)
    form = await read_form(request)
    try:
        body = valid(PasswordResetRequest, {"email": form.get("email", "")})
    except HelpgateError as error:
        email = form.get("email", "")
        return pages.page(request, None, "reset.html.j2", status=error.http_status, email=email, error=error.detail)
    deferred, outgoing = get_deferred(request), get_outgoing(request)
    work = account_codes.request_reset(
        email=body.email, outgoing=outgoing, policy=get_auth_policy(request), now=utcnow()
    )
    deferred.start(work, what="password reset")
    return pages.page(request, None, "choose_password.html.j2", token="", notice=MAILED, error=None)


@routes.get("/password-reset/confirm")
async def choose_form(request: Request, token: Annotated[str, Query(max_length=512)] = "") -> Response:
    return pages.page(request, None, "choose_password.html.j2", token=token, notice=None, error=None)


@routes.post("/password-reset/confirm")
async def choose(request: Request) -> Response:
    """Set the password with the mailed code; every session of the account ends, and the login form follows."""
    same_origin(request)
    form = await read_form(request)
    token = form.get("token", "").strip()
    try:
        body = valid(PasswordResetConfirm, {"token": token, "password": form.get("password", "")})
        await account_codes.confirm_reset(token=body.token, password=body.password, now=utcnow())
    except HelpgateError as error:
        context: dict[str, Any] = {"token": token, "notice": None, "error": error.detail}
        return pages.page(request, None, "choose_password.html.j2", status=error.http_status, **context)
    return pages.redirect(request, None, "/login?chosen=1")
