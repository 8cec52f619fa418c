"""Log in, refresh, who am I."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from helpgate.api.deps import CurrentUser, Issuer
from helpgate.api.schemas import LoginRequest, RefreshRequest, TokenResponse, UserOut
from helpgate.core.models.clock import utcnow
from helpgate.core.services import sessions

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _refresh_ttl(request: Request) -> timedelta:
    ttl: timedelta = request.app.state.refresh_ttl
    return ttl


@router.post("/login")
async def login(body: LoginRequest, issuer: Issuer, request: Request) -> TokenResponse:
    pair = await sessions.login(
        email=body.email,
        password=body.password,
        issuer=issuer,
        refresh_ttl=_refresh_ttl(request),
        now=utcnow(),
    )
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post("/refresh")
async def refresh(body: RefreshRequest, issuer: Issuer, request: Request) -> TokenResponse:
    pair = await sessions.refresh(
        token=body.refresh_token, issuer=issuer, refresh_ttl=_refresh_ttl(request), now=utcnow()
    )
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)
