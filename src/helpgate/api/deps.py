"""Dependencies shared by the routes: the token issuer, the current user, role checks, outgoing mail, work
started after the answer, the account policy, who is asking and the box that encrypts stored secrets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from pydantic import ValidationError

from helpgate.accounts import sessions
from helpgate.api.deferred import DeferredWork
from helpgate.api.schemas.auth import TokenForm
from helpgate.core.clock import utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.errors import ConfigurationError, Forbidden, InvalidInput, NotAuthenticated, PayloadTooLarge
from helpgate.core.security import TokenIssuer
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mailboxes.oauth import Tokens
from helpgate.models import Role, User
from helpgate.tickets import tickets
from helpgate.workflows.ai.provider import Provider

# The OAuth2 password flow makes the "Authorize" button of /docs log in through POST /api/auth/token;
# any client may send the same bearer token it gets from POST /api/auth/login instead.
TOKEN_URL = "/api/auth/token"  # noqa: S105 - a path
_bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="Access token from POST /api/auth/login (JSON) or POST /api/auth/token (OAuth2 form)",
)


def get_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


Issuer = Annotated[TokenIssuer, Depends(get_issuer)]


def get_refresh_ttl(request: Request) -> timedelta:
    """How long a refresh token lives (`app.state.refresh_ttl`, from Settings)."""
    ttl: timedelta = request.app.state.refresh_ttl
    return ttl


def get_drafter(request: Request) -> Provider | None:
    """The AI that drafts replies (`app.state.drafter`, set by the gateway when an AI provider is configured); None
    without."""
    drafter: Provider | None = getattr(request.app.state, "drafter", None)
    return drafter


BearerToken = Annotated[str | None, Depends(_bearer)]


async def get_current_user(issuer: Issuer, token: BearerToken) -> User:
    if not token:
        raise NotAuthenticated("not authenticated")
    return await sessions.authenticate(token=token, issuer=issuer)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_staff_user(user: CurrentUser, request: Request) -> User:
    """An agent or admin. Anyone else gets 403, or 404 for a ticket in the path they cannot see (no leak)."""
    if user.is_staff:
        return user
    number = str(request.path_params.get("number", ""))
    # ASCII digits only ("²".isdigit() is true) and no longer than a ticket number can be: anything else
    # fails the path's own validation (422) once this dependency has answered 403.
    if number.isascii() and number.isdigit() and len(number) <= len(str(tickets.MAX_NUMBER)):
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


def get_deferred(request: Request) -> DeferredWork:
    """Where routes start work they answer before (`app.state.deferred`, owned by the gateway)."""
    deferred: DeferredWork = request.app.state.deferred
    return deferred


Deferred = Annotated[DeferredWork, Depends(get_deferred)]


_DEFAULT_POLICY = sessions.AuthPolicy()


def get_auth_policy(request: Request) -> sessions.AuthPolicy:
    """The installation's account rules (`app.state.auth_policy`, from Settings); the defaults until set."""
    policy: sessions.AuthPolicy = getattr(request.app.state, "auth_policy", _DEFAULT_POLICY)
    return policy


Policy = Annotated[sessions.AuthPolicy, Depends(get_auth_policy)]


def get_client(request: Request) -> sessions.Client:
    """The caller's address (per-IP limits; uvicorn resolves X-Forwarded-For from trusted proxies) and now."""
    return sessions.Client(ip=request.client.host if request.client else "unknown", now=utcnow())


ClientInfo = Annotated[sessions.Client, Depends(get_client)]

MAX_FORM_BYTES = 8 * 1024
URLENCODED = "application/x-www-form-urlencoded"


def media_type(request: Request) -> str:
    """The request body's media type, without its parameters, lower-cased."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_urlencoded(request: Request, *, what: str, limit: int, max_fields: int) -> dict[str, list[str]]:
    """A url-encoded form's fields, with every value each was sent with (`what` names the form in the errors):
    InvalidInput for another body or one that cannot be read, PayloadTooLarge past `limit` bytes. Parsed here
    rather than with FastAPI's form support, which needs python-multipart for url-encoded bodies as well."""
    if media_type(request) != URLENCODED:
        raise InvalidInput(f"send the {what} as {URLENCODED}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"a {what} is at most {limit} bytes")
    try:
        return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=max_fields, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form cannot be read") from None


async def get_token_form(request: Request) -> TokenForm:
    """The OAuth2 password grant's form (RFC 6749 section 4.3.2)."""
    fields = await read_urlencoded(request, what="token request", limit=MAX_FORM_BYTES, max_fields=20)
    values: dict[str, object] = {name: given[0] if len(given) == 1 else given for name, given in fields.items()}
    try:
        return TokenForm.model_validate(values)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None


PasswordForm = Annotated[TokenForm, Depends(get_token_form)]


def get_secret_box(request: Request) -> SecretBox:
    """Encrypts secrets stored for the installation (IMAP passwords): `app.state.box`, set by the gateway."""
    box: SecretBox | None = getattr(request.app.state, "box", None)
    if box is None:
        raise ConfigurationError("no secret key is configured: secrets cannot be stored")
    return box


Box = Annotated[SecretBox, Depends(get_secret_box)]


def _nothing() -> None:
    return None


def get_mailboxes_changed(request: Request) -> Callable[[], None]:
    """Tells the running IMAP supervisor that mailboxes changed (`app.state.mailboxes_changed`), if any."""
    changed: Callable[[], None] = getattr(request.app.state, "mailboxes_changed", _nothing)
    return changed


MailboxesChanged = Annotated[Callable[[], None], Depends(get_mailboxes_changed)]


def get_oauth_tokens(request: Request) -> Tokens:
    """OAuth2 mailboxes' tokens (`app.state.oauth_tokens`, set by the gateway)."""
    tokens: Tokens | None = getattr(request.app.state, "oauth_tokens", None)
    if tokens is None:
        raise ConfigurationError("OAuth2 mailboxes are not served by this process")
    return tokens


OAuthTokens = Annotated[Tokens, Depends(get_oauth_tokens)]
