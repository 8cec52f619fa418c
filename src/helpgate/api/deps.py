"""Dependencies shared by the routes: the token issuer, the current user, role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from helpgate.core.errors import NotAuthenticated
from helpgate.core.models import User
from helpgate.core.security import TokenIssuer
from helpgate.core.services import sessions

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
