"""The console's browser sessions: the API's session records, carried in cookies, with a CSRF token per session.

A browser logs in with a form and gets two cookies, both `HttpOnly`, `SameSite=Lax`, `Path=/` and `Secure` when
the console is served over https: `helpgate_access` (the access token the API hands out) and
`helpgate_refresh` (its refresh token). Each request is authenticated as the API's are (`sessions.authenticate`:
role, active and session re-read from the store); an expired access token is renewed with the refresh token,
within a leeway so that tabs refreshing at once do not look like a stolen token. Only the console's routes
read these cookies: the API takes Bearer tokens only, so a cookie cannot be made to act on it.

Every request that changes something carries the session's CSRF token (a form field, or the X-CSRF-Token
header), an HMAC of the session's id under the installation's secret, and must come from this origin
(Sec-Fetch-Site, or else Origin). Logging in has no session yet: it is checked for origin only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from helpgate.accounts import sessions
from helpgate.api.deps import get_issuer, get_refresh_ttl
from helpgate.core.clock import utcnow
from helpgate.core.errors import Forbidden, NotAuthenticated
from helpgate.core.security import TokenIssuer
from helpgate.models import User

log = logging.getLogger(__name__)

ACCESS_COOKIE = "helpgate_access"
REFRESH_COOKIE = "helpgate_refresh"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: Two tabs (or a tab and its live stream) may renew the session at once with the one refresh cookie they
#: share; a refresh token spent again within this is not taken for theft.
REFRESH_LEEWAY = timedelta(seconds=30)
_CSRF_PURPOSE = b"helpgate-console-csrf\0"


class SignInNeeded(NotAuthenticated):
    """No session, or one that cannot be renewed: pages send the browser to the login form."""


@dataclass
class Viewer:
    """Who is asking, in which session, and the cookies to renew on the answer (after a refresh)."""

    user: User
    session: str  # the session's id (the refresh token family)
    csrf: str
    token: str  # the access token it came with (or was renewed to): the live stream re-checks it
    renewed: sessions.TokenPair | None = None


def csrf_token(issuer: TokenIssuer, session: str) -> str:
    return hmac.new(issuer.secret.encode(), _CSRF_PURPOSE + session.encode(), hashlib.sha256).hexdigest()


async def _from_access(token: str, issuer: TokenIssuer) -> Viewer:
    claims = issuer.claims_of(token)
    if claims.session is None:  # every token the console hands out names its session
        raise NotAuthenticated("invalid token")
    user = await sessions.authenticate(token=token, issuer=issuer)
    return Viewer(user=user, session=claims.session, csrf=csrf_token(issuer, claims.session), token=token)


async def viewer_of(request: Request) -> Viewer:
    """The signed-in viewer, renewing the access token when it expired; SignInNeeded otherwise."""
    issuer = get_issuer(request)
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            return await _from_access(access, issuer)
        except NotAuthenticated:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        raise SignInNeeded("sign in")
    try:
        pair = await sessions.refresh(
            token=refresh, issuer=issuer, refresh_ttl=get_refresh_ttl(request), now=utcnow(), leeway=REFRESH_LEEWAY
        )
        viewer = await _from_access(pair.access_token, issuer)
    except NotAuthenticated:
        raise SignInNeeded("your session ended; sign in again") from None
    viewer.renewed = pair
    return viewer


CurrentViewer = Annotated[Viewer, Depends(viewer_of)]


def same_origin(request: Request) -> None:
    """Forbidden unless the browser says the request comes from a page of this origin. Browsers send
    Sec-Fetch-Site on every request; without it (older browsers, other clients) an Origin header, when
    present, must name this origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            log.warning("console.refused path=%s reason=cross-site sec-fetch-site=%s", request.url.path, site)
            raise Forbidden("refused: the request came from another site")
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        log.warning("console.refused path=%s reason=cross-origin origin=%s", request.url.path, origin)
        raise Forbidden("refused: the request came from another origin")


def check_csrf(request: Request, viewer: Viewer, given: str | None) -> None:
    """Forbidden unless the request comes from this origin with the session's token (form field or header)."""
    same_origin(request)
    token = given or request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
        log.warning("console.refused path=%s reason=csrf user=%s", request.url.path, viewer.user.id)
        raise Forbidden("refused: the form is stale or did not come from this console; reload the page")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookies(response: Response, request: Request, pair: sessions.TokenPair) -> None:
    max_age = int(get_refresh_ttl(request).total_seconds())
    for name, value in ((ACCESS_COOKIE, pair.access_token), (REFRESH_COOKIE, pair.refresh_token)):
        response.set_cookie(
            name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=_secure(request)
        )


def clear_cookies(response: Response, request: Request) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=_secure(request))


def keep(response: Response, request: Request, viewer: Viewer | None) -> Response:
    """The answer, with the renewed session's cookies when this request renewed it."""
    if viewer is not None and viewer.renewed is not None:
        set_cookies(response, request, viewer.renewed)
    return response
