"""Accounts' sessions: sign up, log in (rate-limited), refresh, log out, change or reset a password.

Sign-up and reset share one proof of the address: a one-time code mailed to it, spent with a password at
confirm_reset. Until then a signed-up account has no password and cannot log in, so nobody can claim an
address (and the mail that comes from it) they cannot read; both answer alike whether the account exists.

Access tokens are short-lived JWTs; refresh tokens rotate and are stored only hashed, and a spent one used
again revokes its whole family. Failed logins are counted in the store per account and per client address
(fixed windows, rate_limits.hit); past a limit the answer is 429 with the seconds to wait, before the
password is even checked, so a locked account tells nothing about the password tried.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from beanie import PydanticObjectId

from helpgate.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidResetToken,
    NotAuthenticated,
    TooManyAttempts,
)
from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import TemplateKind
from helpgate.core.models import PasswordResetToken, RateWindow, RefreshToken, Role, User
from helpgate.core.security import (
    TokenIssuer,
    hash_token,
    new_one_time_token,
    new_refresh_token,
    verify_password,
)
from helpgate.core.services import outbound, rate_limits, users
from helpgate.core.services.rate_limits import Limit
from helpgate.core.settings import Settings

log = logging.getLogger(__name__)

RESET_MAILS_PER_ACCOUNT = Limit(3, timedelta(minutes=15))  # sign-up and reset codes; more are answered alike, unmailed
SIGNUPS_PER_IP = Limit(10, timedelta(hours=1))


class CodePurpose(StrEnum):
    """Why a one-time code is mailed: the `purpose` of the password_reset template."""

    SIGNUP = "signup"
    RESET = "reset"


_CODE_SUBJECTS = {CodePurpose.SIGNUP: "Confirm your address at {}", CodePurpose.RESET: "Reset your password at {}"}


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


def _window(limit: Limit, now: datetime) -> tuple[int, int]:
    """(start, end) in unix seconds of the fixed window `now` falls in, as rate_limits.hit counts it."""
    seconds = max(1, int(limit.window.total_seconds()))
    start = int(now.timestamp()) // seconds * seconds
    return start, start + seconds


def _retry_after(limit: Limit, now: datetime) -> int:
    return max(1, _window(limit, now)[1] - int(now.timestamp()))


async def _wait_seconds(key: str, limit: Limit, now: datetime) -> int | None:
    """Seconds until `key` may try again when its failures in this window reached the limit, else None."""
    start, _ = _window(limit, now)
    window = await RateWindow.get_pymongo_collection().find_one({"_id": f"{key}@{start}"}, {"hits": 1})
    if window is None or int(window["hits"]) < limit.count:
        return None
    return _retry_after(limit, now)


async def _check_not_locked(email: str, client: Client, policy: AuthPolicy) -> None:
    waits = [
        wait
        for key, limit in (
            (f"login:ip:{client.ip}", policy.failures_per_ip),
            (f"login:account:{email}", policy.failures_per_account),
        )
        if (wait := await _wait_seconds(key, limit, client.now)) is not None
    ]
    if waits:
        log.warning("auth.login_locked email=%s ip=%s retry_after=%d", email, client.ip, max(waits))
        raise TooManyAttempts("too many failed logins; try again later", retry_after=max(waits))


async def _count_failure(email: str, client: Client, policy: AuthPolicy, reason: str) -> None:
    await rate_limits.hit(key=f"login:ip:{client.ip}", limit=policy.failures_per_ip, now=client.now)
    await rate_limits.hit(key=f"login:account:{email}", limit=policy.failures_per_account, now=client.now)
    log.info("auth.login_failed email=%s ip=%s reason=%s", email, client.ip, reason)


async def _forget_failures(email: str, policy: AuthPolicy, now: datetime) -> None:
    """A successful login clears the account's count; the address's count stays (one IP, many accounts)."""
    start, _ = _window(policy.failures_per_account, now)
    await RateWindow.get_pymongo_collection().delete_one({"_id": f"login:account:{email}@{start}"})


# --- sessions ---------------------------------------------------------------------------------------------


async def login(
    *, email: str, password: str, issuer: TokenIssuer, refresh_ttl: timedelta, client: Client, policy: AuthPolicy
) -> TokenPair:
    """A new session; NotAuthenticated for wrong credentials, TooManyAttempts past the failure limits."""
    address = email.strip().lower()
    await _check_not_locked(address, client, policy)
    user = await users.get_by_email(address)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.active:
        await _count_failure(address, client, policy, "inactive" if ok else "bad credentials")
        raise NotAuthenticated("incorrect email or password")
    await _forget_failures(address, policy, client.now)
    log.info("auth.login user=%s ip=%s", user.id, client.ip)
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=client.now)


async def signup(*, email: str, name: str, outgoing: Outgoing, client: Client, policy: AuthPolicy) -> None:
    """Start a customer account for yourself: the address gets a one-time code to confirm it and choose a
    password (confirm_reset). An address with an account already (one made from mail, say) gets a code too,
    so the answer never tells whether it existed. Staff get a reset-purpose code: sign-up is not for them, but
    the mail is no more than password reset would send. Forbidden when self-service is off."""
    if not policy.allow_signup:
        raise Forbidden("sign-up is turned off here; ask support for an account")
    if not await rate_limits.hit(key=f"signup:ip:{client.ip}", limit=SIGNUPS_PER_IP, now=client.now):
        log.warning("auth.signup_limited ip=%s", client.ip)
        raise TooManyAttempts(
            "too many sign-ups from this address", retry_after=_retry_after(SIGNUPS_PER_IP, client.now)
        )
    address = users.normalise_email(email)
    user = await users.get_by_email(address)
    if user is None:
        try:
            user = await users.create(email=address, role=Role.CUSTOMER, password=None, name=name, source="signup")
        except Conflict:  # made meanwhile, by inbound mail or another sign-up
            user = await users.get_by_email(address)
    if user is None or not user.active:
        log.info("auth.signup_ignored email=%s reason=inactive", address)
        return
    purpose = CodePurpose.SIGNUP if user.role is Role.CUSTOMER else CodePurpose.RESET
    await _mail_code(user, purpose=purpose, outgoing=outgoing, policy=policy, now=client.now)


async def refresh(*, token: str, issuer: TokenIssuer, refresh_ttl: timedelta, now: datetime) -> TokenPair:
    """Spend a refresh token for a new pair. A token spent twice revokes its whole family."""
    stored = await RefreshToken.find_one({"token_hash": hash_token(token)})
    if stored is None or stored.revoked or stored.expires_at <= now:
        raise NotAuthenticated("invalid refresh token")
    spent = await RefreshToken.get_pymongo_collection().update_one(
        {"_id": stored.id, "used_at": None}, {"$set": {"used_at": now}}
    )
    if spent.modified_count != 1:
        await _end(stored, issuer=issuer, now=now)
        log.warning("auth.refresh_reuse user=%s family=%s: session ended", stored.user_id, stored.family)
        raise NotAuthenticated("invalid refresh token")
    user = await users.get(stored.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("invalid refresh token")
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=now, family=stored.family)


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
    await _check_not_locked(user.email, client, policy)
    if not verify_password(current, user.password_hash):
        await _count_failure(user.email, client, policy, "wrong current password")
        raise InvalidInput("the current password is not correct")
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    await users.set_password(user, new)
    user.session_epoch = await users.end_sessions(user.id)
    log.info("auth.password_changed user=%s: all sessions revoked", user.id)
    return await _issue(user, issuer=issuer, refresh_ttl=refresh_ttl, now=client.now)


async def request_reset(*, email: str, outgoing: Outgoing, policy: AuthPolicy, now: datetime) -> None:
    """Mail a one-time reset token to an active account. Says nothing either way (no account enumeration)."""
    address = email.strip().lower()
    user = await users.get_by_email(address)
    if user is None or not user.active:
        log.info("auth.reset_ignored email=%s reason=%s", address, "no such account" if user is None else "inactive")
        return
    await _mail_code(user, purpose=CodePurpose.RESET, outgoing=outgoing, policy=policy, now=now)


async def _mail_code(
    user: User, *, purpose: CodePurpose, outgoing: Outgoing, policy: AuthPolicy, now: datetime
) -> None:
    """Mail a one-time code for confirm_reset. A newer code makes the older ones void, and at most
    RESET_MAILS_PER_ACCOUNT go out per window, sign-up and reset together."""
    assert user.id is not None
    if not await rate_limits.hit(key=f"reset:{user.id}", limit=RESET_MAILS_PER_ACCOUNT, now=now):
        log.warning("auth.reset_limited user=%s purpose=%s", user.id, purpose)
        return
    token = new_one_time_token()
    collection = PasswordResetToken.get_pymongo_collection()
    await collection.update_many({"user_id": user.id, "used_at": None}, {"$set": {"used_at": now}})
    await PasswordResetToken(
        token_hash=hash_token(token), user_id=user.id, expires_at=now + policy.reset_ttl, created_at=now
    ).insert()
    await outbound.queue_automatic(
        outgoing=outgoing,
        template=TemplateKind.PASSWORD_RESET,
        to=user.email,
        subject=_CODE_SUBJECTS[purpose].format(outgoing.display_name),
        context={
            "purpose": str(purpose),
            "user_name": user.name,
            "email": user.email,
            "token": token,
            "expires_minutes": int(policy.reset_ttl.total_seconds() // 60),
        },
        now=now,
    )
    log.info("auth.reset_mailed user=%s purpose=%s", user.id, purpose)


async def confirm_reset(*, token: str, password: str, now: datetime) -> None:
    """Spend a reset token (once, before it expires) to set a new password; every session is revoked."""
    stored = await PasswordResetToken.find_one({"token_hash": hash_token(token)})
    user = await users.get(stored.user_id) if stored is not None else None
    if stored is None or user is None or not user.active or stored.used_at is not None or stored.expires_at <= now:
        raise InvalidResetToken("invalid or expired reset token")
    users.check_password(password, email=user.email)  # before spending the token, so a weak choice can be fixed
    spent = await PasswordResetToken.get_pymongo_collection().update_one(
        {"_id": stored.id, "used_at": None}, {"$set": {"used_at": now}}
    )
    if spent.modified_count != 1:  # spent concurrently
        raise InvalidResetToken("invalid or expired reset token")
    await users.set_password(user, password)
    assert user.id is not None
    await users.end_sessions(user.id)
    log.info("auth.password_reset user=%s: all sessions revoked", user.id)
