"""Log in and refresh: short-lived access tokens, rotating refresh tokens stored only hashed."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from beanie import PydanticObjectId

from helpgate.core.errors import NotAuthenticated
from helpgate.core.models import RefreshToken, User
from helpgate.core.security import TokenIssuer, hash_token, new_refresh_token, verify_password
from helpgate.core.services import users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


async def login(*, email: str, password: str, issuer: TokenIssuer, refresh_ttl: timedelta, now: datetime) -> TokenPair:
    user = await users.get_by_email(email)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.active:
        log.info("auth.login_failed email=%s reason=%s", email.lower(), "inactive" if ok else "bad credentials")
        raise NotAuthenticated("incorrect email or password")
    log.info("auth.login user=%s", user.id)
    return await _issue(user, issuer=issuer, family=uuid.uuid4().hex, refresh_ttl=refresh_ttl, now=now)


async def refresh(*, token: str, issuer: TokenIssuer, refresh_ttl: timedelta, now: datetime) -> TokenPair:
    """Spend a refresh token for a new pair. A token spent twice revokes its whole family."""
    stored = await RefreshToken.find_one({"token_hash": hash_token(token)})
    if stored is None or stored.revoked or stored.expires_at <= now:
        raise NotAuthenticated("invalid refresh token")
    spent = await RefreshToken.get_pymongo_collection().update_one(
        {"_id": stored.id, "used_at": None}, {"$set": {"used_at": now}}
    )
    if spent.modified_count != 1:
        await RefreshToken.get_pymongo_collection().update_many({"family": stored.family}, {"$set": {"revoked": True}})
        log.warning("auth.refresh_reuse user=%s family=%s: family revoked", stored.user_id, stored.family)
        raise NotAuthenticated("invalid refresh token")
    user = await users.get(stored.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("invalid refresh token")
    return await _issue(user, issuer=issuer, family=stored.family, refresh_ttl=refresh_ttl, now=now)


async def _issue(user: User, *, issuer: TokenIssuer, family: str, refresh_ttl: timedelta, now: datetime) -> TokenPair:
    assert user.id is not None
    refresh_token = new_refresh_token()
    await RefreshToken(
        token_hash=hash_token(refresh_token),
        user_id=user.id,
        family=family,
        expires_at=now + refresh_ttl,
        created_at=now,
    ).insert()
    return TokenPair(access_token=issuer.issue_access(str(user.id), now), refresh_token=refresh_token)


async def authenticate(*, token: str, issuer: TokenIssuer) -> User:
    """The active user an access token names, read from the store now (roles are never taken from the token)."""
    subject = issuer.subject_of(token)
    try:
        user_id = PydanticObjectId(subject)
    except Exception:
        raise NotAuthenticated("invalid token") from None
    user = await users.get(user_id)
    if user is None or not user.active:
        raise NotAuthenticated("invalid token")
    return user
