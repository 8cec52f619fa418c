"""Accounts' sessions: log in (rate-limited), refresh, log out, change a password. Sign-up and password reset,
which prove an address by a mailed code, are in `account_codes`.

Access tokens are short-lived JWTs; refresh tokens rotate and are stored only hashed, and a spent one used
again ends its whole session. Login attempts are counted in the store per account and per client address
(fixed windows, rate_limits.count) before the password is checked, and a right password takes its attempt
back; past a limit the answer is 429 with the seconds to wait, without checking the password, so a locked
account tells nothing about the password tried.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from beanie import PydanticObjectId

from helpgate.accounts import users
from helpgate.core import rate_limits
from helpgate.core.errors import (
    InvalidInput,
    NotAuthenticated,
    TooManyAttempts,
)
from helpgate.core.rate_limits import Limit
from helpgate.core.security import (
    TokenIssuer,
    hash_token,
    new_refresh_token,
    verify_password,
)
from helpgate.core.settings import Settings
from helpgate.models import RefreshToken, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthPolicy:
    """The account rules an installation chose (HELPGATE_ALLOW_SIGNUP, HELPGATE_LOGIN_*, ...)."""

    allow_signup: bool = True
    failures_per_account: Limit = field(default_factory=lambda: Limit(5, timedelta(minutes=15)))
    failures_per_ip: Limit = field(default_factory=lambda: Limit(20, timedelta(minutes=15)))
    reset_ttl: timedelta = timedelta(minutes=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthPolicy:
        window = timedelta(minutes=settings.login_failure_window_minutes)
        return cls(
            allow_signup=settings.allow_signup,
            failures_per_account=Limit(settings.login_failures_per_account, window),
            failures_per_ip=Limit(settings.login_failures_per_ip, window),
            reset_ttl=timedelta(minutes=settings.password_reset_minutes),
        )


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class Client:
    """Who is asking: the client's address (for per-IP limits) and the time of the request."""

    ip: str
    now: datetime


# --- rate limits on failures ------------------------------------------------------------------------------


def retry_after(limit: Limit, now: datetime) -> int:
    seconds = max(1, int(limit.window.total_seconds()))
    return max(1, rate_limits.window_start(limit, now) + seconds - int(now.timestamp()))


def _keys(email: str, client: Client, policy: AuthPolicy) -> tuple[tuple[str, Limit], tuple[str, Limit]]:
    return (f"login:ip:{client.ip}", policy.failures_per_ip), (f"login:account:{email}", policy.failures_per_account)


async def _count_attempt(email: str, client: Client, policy: AuthPolicy) -> None:
    """Count this attempt against the address and the account before the password is checked, refusing it
    (TooManyAttempts) when either count passes its limit. Each count is one atomic `$inc` whose result decides,
    so however many attempts arrive at once, at most the limit of them reach the password check (a check of
    the count followed by a later increment let 26 of 100 concurrent ones through a limit of 5: issue 14,
    finding 10). An attempt the account's limit refuses is taken back from the address's count: the address
    is charged only for passwords actually tried."""
    (ip_key, ip_limit), (account_key, account_limit) = _keys(email, client, policy)
    refused: Limit | None = None
    if await rate_limits.count(key=ip_key, limit=ip_limit, now=client.now) > ip_limit.count:
        refused = ip_limit
    elif await rate_limits.count(key=account_key, limit=account_limit, now=client.now) > account_limit.count:
        await rate_limits.uncount(key=ip_key, limit=ip_limit, now=client.now)
        refused = account_limit
    if refused is not None:
        wait = retry_after(refused, client.now)
        log.warning("auth.login_locked email=%s ip=%s retry_after=%d", email, client.ip, wait)
        raise TooManyAttempts("too many failed logins; try again later", retry_after=wait)


async def _forget_attempt(email: str, client: Client, policy: AuthPolicy) -> None:
    """The password was right: the account's count is cleared, and the address's gives this attempt back (its
    earlier failures stay: one address, many accounts)."""
    (ip_key, ip_limit), (account_key, account_limit) = _keys(email, client, policy)
    await rate_limits.forget(key=account_key, limit=account_limit, now=client.now)
    await rate_limits.uncount(key=ip_key, limit=ip_limit, now=client.now)


# --- sessions ---------------------------------------------------------------------------------------------


async def login(
    *, email: str, password: str, issuer: TokenIssuer, refresh_ttl: timedelta, client: Client, policy: AuthPolicy
) -> TokenPair:
    """A new session; NotAuthenticated for wrong credentials, TooManyAttempts past the failure limits."""
    address = email.strip().lower()
    await _count_attempt(address, client, policy)
    user = await users.get_by_email(address)
    # argon2 takes tens of milliseconds of CPU: in a thread (it releases the GIL), not on the loop mail and
    # the API share.
    ok = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
    if user is None or not ok or not user.active:
        reason = "inactive" if ok else "bad credentials"
        log.info("auth.login_failed email=%s ip=%s reason=%s", address, client.ip, reason)
        raise NotAuthenticated("incorrect email or password")
    await _forget_attempt(address, client, policy)
    log.info("auth.login user=%s ip=%s", user.id, client.ip)
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=client.now)


async def refresh(
    *, token: str, issuer: TokenIssuer, refresh_ttl: timedelta, now: datetime, leeway: timedelta = timedelta(0)
) -> TokenPair:
    """Spend a refresh token for a new pair. A token spent twice revokes its whole family, unless the second
    spend comes within `leeway` of the first: a browser's tabs (the console) share one cookie and may all
    refresh at once, which is no theft; each gets a pair of the same session."""
    stored = await RefreshToken.find_one({"token_hash": hash_token(token)})
    if stored is None or stored.revoked or stored.expires_at <= now:
        raise NotAuthenticated("invalid refresh token")
    spent = await RefreshToken.get_pymongo_collection().update_one(
        {"_id": stored.id, "used_at": None}, {"$set": {"used_at": now}}
    )
    if spent.modified_count != 1 and not await _spent_within(stored, leeway, now):
        await _end(stored, issuer=issuer, now=now)
        log.warning("auth.refresh_reuse user=%s family=%s: session ended", stored.user_id, stored.family)
        raise NotAuthenticated("invalid refresh token")
    user = await users.get(stored.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("invalid refresh token")
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=now, family=stored.family)


async def _spent_within(stored: RefreshToken, leeway: timedelta, now: datetime) -> bool:
    """Whether the token, found spent, was spent no longer than `leeway` ago (and its session still lives)."""
    if leeway <= timedelta(0):
        return False
    again = await RefreshToken.get(stored.id)
    return again is not None and not again.revoked and again.used_at is not None and now - again.used_at <= leeway


async def logout(*, token: str, issuer: TokenIssuer, now: datetime) -> None:
    """End the session: its refresh tokens (the whole family) and the access tokens issued with them. An
    unknown or spent token is no error."""
    stored = await RefreshToken.find_one({"token_hash": hash_token(token)})
    if stored is None:
        return
    await _end(stored, issuer=issuer, now=now)
    log.info("auth.logout user=%s family=%s", stored.user_id, stored.family)


async def _end(stored: RefreshToken, *, issuer: TokenIssuer, now: datetime) -> None:
    """Revoke a session's refresh tokens and void its access tokens (any still valid expire by now + their TTL)."""
    await RefreshToken.get_pymongo_collection().update_many({"family": stored.family}, {"$set": {"revoked": True}})
    await users.end_session(stored.user_id, stored.family, until=now + issuer.access_ttl, now=now)


async def _issue(
    user: User, *, issuer: TokenIssuer, refresh_ttl: timedelta, now: datetime, family: str | None = None
) -> TokenPair:
    assert user.id is not None
    refresh_token = new_refresh_token()
    session = family or uuid.uuid4().hex
    await RefreshToken(
        token_hash=hash_token(refresh_token),
        user_id=user.id,
        family=session,
        expires_at=now + refresh_ttl,
        created_at=now,
    ).insert()
    access_token = issuer.issue_access(str(user.id), now, session_epoch=user.session_epoch, session=session)
    return TokenPair(access_token=access_token, refresh_token=refresh_token)


async def authenticate(*, token: str, issuer: TokenIssuer) -> User:
    """The active user an access token names, read from the store now (roles are never taken from the token).
    A token issued before the account's sessions were ended (new role, deactivation, new password) is void,
    even once the account is active again; so is one of a session ended by logout or by refresh token reuse."""
    claims = issuer.claims_of(token)
    try:
        user_id = PydanticObjectId(claims.subject)
    except Exception:
        raise NotAuthenticated("invalid token") from None
    user = await users.get(user_id)
    if user is None or not user.active:
        raise NotAuthenticated("invalid token")
    if claims.session_epoch != user.session_epoch or (
        claims.session is not None and claims.session in user.ended_sessions
    ):
        raise NotAuthenticated("session ended; log in again")
    return user


# --- passwords --------------------------------------------------------------------------------------------


async def change_password(
    *,
    user: User,
    current: str,
    new: str,
    issuer: TokenIssuer,
    refresh_ttl: timedelta,
    client: Client,
    policy: AuthPolicy,
) -> TokenPair:
    """Set a new password after checking the current one (a wrong one counts as a failed login).
    Every session of the account is revoked; the caller gets a fresh pair."""
    assert user.id is not None
    await _count_attempt(user.email, client, policy)
    if not await asyncio.to_thread(verify_password, current, user.password_hash):
        log.info("auth.login_failed email=%s ip=%s reason=wrong current password", user.email, client.ip)
        raise InvalidInput("the current password is not correct")
    await _forget_attempt(user.email, client, policy)
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    await users.set_password(user, new)
    user.session_epoch = await users.end_sessions(user.id)
    log.info("auth.password_changed user=%s: all sessions revoked", user.id)
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=client.now)
