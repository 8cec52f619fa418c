"""Dependencies shared by the routes: the token issuer, the current user, role checks, outgoing mail."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from helpgate.core.errors import Forbidden, NotAuthenticated
from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.models import Role, User
from helpgate.core.security import TokenIssuer
from helpgate.core.services import sessions, tickets

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/auth/login")


def get_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


Issuer = Annotated[TokenIssuer, Depends(get_issuer)]


async def get_current_user(
    issuer: Issuer,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("not authenticated")
    return await sessions.authenticate(token=credentials.credentials, issuer=issuer)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_staff_user(user: CurrentUser, request: Request) -> User:
    """An agent or admin. Anyone else gets 403, or 404 for a ticket in the path they cannot see (no leak)."""
    if user.is_staff:
        return user
    number = str(request.path_params.get("number", ""))
    if number.isdigit():
        await tickets.get_visible(viewer=user, number=int(number))
    raise Forbidden("only agents and admins can do this")


StaffUser = Annotated[User, Depends(get_staff_user)]


async def get_admin_user(user: CurrentUser) -> User:
    """An admin; agents and customers get 403."""
    if user.role is not Role.ADMIN:
        raise Forbidden("only admins can do this")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


def get_outgoing(request: Request) -> Outgoing:
    outgoing: Outgoing = request.app.state.outgoing
    return outgoing


OutgoingMail = Annotated[Outgoing, Depends(get_outgoing)]
