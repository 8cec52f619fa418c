"""Accounts and sessions: sign up, log in (JSON or the OAuth2 form), refresh, log out, who am I, passwords."""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import APIRouter, HTTPException, Request, Response

from helpgate.accounts import account_codes, sessions
from helpgate.api.deps import (
    ClientInfo,
    CurrentUser,
    Deferred,
    Issuer,
    OutgoingMail,
    PasswordForm,
    Policy,
    get_refresh_ttl,
)
from helpgate.api.openapi import PUBLIC, error, errors
from helpgate.api.schemas.auth import (
    Accepted,
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    SignupRequest,
    TokenForm,
    TokenResponse,
    UserOut,
)
from helpgate.core.clock import utcnow
from helpgate.core.errors import TooManyAttempts

router = APIRouter(prefix="/api/auth", tags=["auth"])

INVALID = errors(400, 422)
WRONG_CREDENTIALS = error(401, "the email or the password is not correct", detail="incorrect email or password")
LIMITED = error(429, "too many failed attempts; the Retry-After header says how many seconds to wait")


async def _limited[T](call: Awaitable[T]) -> T:
    """What the session call returns; over a rate limit, 429 with Retry-After."""
    try:
        return await call
    except TooManyAttempts as error:
        headers = {"Retry-After": str(error.retry_after)}
        raise HTTPException(status_code=error.http_status, detail=error.detail, headers=headers) from None


async def _pair(call: Awaitable[sessions.TokenPair]) -> TokenResponse:
    pair = await _limited(call)
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post(
    "/signup",
    status_code=202,
    openapi_extra=PUBLIC,
    responses=error(403, "sign-up is turned off (HELPGATE_ALLOW_SIGNUP=false)")
    | INVALID
    | error(429, "too many sign-ups from one address; Retry-After says how many seconds to wait"),
)
async def signup(
    body: SignupRequest, outgoing: OutgoingMail, client: ClientInfo, policy: Policy, deferred: Deferred
) -> Accepted:
    """Ask for a customer account (unless HELPGATE_ALLOW_SIGNUP=false): the address gets a one-time code to
    confirm it and choose a password at /password-reset/confirm. The answer is the same for any address, and
    comes before the address is looked up."""
    address = await _limited(account_codes.admit_signup(email=body.email, client=client, policy=policy))
    work = account_codes.signup(address=address, name=body.name, outgoing=outgoing, client=client, policy=policy)
    deferred.start(work, what="signup")
    return Accepted(detail="if the address can receive mail, a message with a code to set your password is on its way")


@router.post("/login", openapi_extra=PUBLIC, responses=WRONG_CREDENTIALS | INVALID | LIMITED)
async def login(
    body: LoginRequest, issuer: Issuer, request: Request, client: ClientInfo, policy: Policy
) -> TokenResponse:
    """Log in with email and password: a short-lived access token (send it as `Authorization: Bearer ...`)
    and a refresh token for /refresh. Repeated failures per account and per address are locked out (429)."""
    return await _pair(
        sessions.login(
            email=body.email,
            password=body.password,
            issuer=issuer,
            refresh_ttl=get_refresh_ttl(request),
            client=client,
            policy=policy,
        )
    )


@router.post(
    "/token",
    responses=WRONG_CREDENTIALS | error(413, "the form is larger than 8 KiB") | errors(422) | LIMITED,
    openapi_extra={
        **PUBLIC,
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": TokenForm.model_json_schema()}},
        },
    },
)
async def token(
    form: PasswordForm, issuer: Issuer, request: Request, client: ClientInfo, policy: Policy
) -> TokenResponse:
    """The OAuth2 password flow (form fields `username` = email, `password`): what /docs' Authorize uses."""
    return await _pair(
        sessions.login(
            email=form.username,
            password=form.password,
            issuer=issuer,
            refresh_ttl=get_refresh_ttl(request),
            client=client,
            policy=policy,
        )
    )


@router.post(
    "/refresh",
    openapi_extra=PUBLIC,
    responses=error(401, "the refresh token is unknown, spent or expired", detail="invalid refresh token") | INVALID,
)
async def refresh(body: RefreshRequest, issuer: Issuer, request: Request) -> TokenResponse:
    """A new pair for a refresh token, which is spent: sending it again ends its whole session (reuse means theft)."""
    pair = await sessions.refresh(
        token=body.refresh_token, issuer=issuer, refresh_ttl=get_refresh_ttl(request), now=utcnow()
    )
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post("/logout", status_code=204, response_class=Response, openapi_extra=PUBLIC, responses=INVALID)
async def logout(body: LogoutRequest, issuer: Issuer) -> None:
    """End the session the refresh token belongs to: its whole family of refresh tokens, and the access
    tokens issued with them, which are refused from now on (401 "session ended")."""
    await sessions.logout(token=body.refresh_token, issuer=issuer, now=utcnow())


@router.get("/me", responses=errors(401))
async def me(user: CurrentUser) -> UserOut:
    """Your own account: id, email, name, role, skills."""
    return UserOut.of(user)


@router.post(
    "/password",
    responses=errors(400, 401)
    | error(422, "the request does not fit the schema, the current password is wrong, or the new one is too weak")
    | LIMITED,
)
async def change_password(
    body: PasswordChange, user: CurrentUser, issuer: Issuer, request: Request, client: ClientInfo, policy: Policy
) -> TokenResponse:
    """Change your password: every session of the account ends, and this one gets a fresh pair."""
    return await _pair(
        sessions.change_password(
            user=user,
            current=body.current_password,
            new=body.new_password,
            issuer=issuer,
            refresh_ttl=get_refresh_ttl(request),
            client=client,
            policy=policy,
        )
    )


@router.post("/password-reset", status_code=202, openapi_extra=PUBLIC, responses=INVALID)
async def request_password_reset(
    body: PasswordResetRequest, outgoing: OutgoingMail, policy: Policy, client: ClientInfo, deferred: Deferred
) -> Accepted:
    """Mail a one-time reset token to the account, if there is one: the answer is the same either way, and
    comes before the address is looked up."""
    work = account_codes.request_reset(email=body.email, outgoing=outgoing, policy=policy, now=client.now)
    deferred.start(work, what="password reset")
    return Accepted(detail="if an account exists for this address, a reset mail is on its way")


@router.post(
    "/password-reset/confirm",
    status_code=204,
    response_class=Response,
    openapi_extra=PUBLIC,
    responses=error(
        400, "the body is not JSON, or the token is unknown, spent or expired", detail="invalid or expired reset token"
    )
    | error(422, "the request does not fit the schema, or the new password is too weak"),
)
async def confirm_password_reset(body: PasswordResetConfirm, client: ClientInfo) -> None:
    """Set a new password with the mailed token (once, before it expires); every session ends."""
    await account_codes.confirm_reset(token=body.token, password=body.password, now=client.now)
