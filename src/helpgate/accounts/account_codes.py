"""Proving an address by a one-time code mailed to it: customer sign-up and password reset.

Sign-up and reset share one proof: the code, spent with a password at confirm_reset. Until then a signed-up
account has no password and cannot log in, so nobody can claim an address (and the mail that comes from it)
they cannot read; both answer alike whether the account exists. Codes are stored hashed, work once and expire.
The name a sign-up gives waits with its code and reaches the account when the code is spent: until the address
is proven, no mail carries what a stranger typed (issue 14, finding 8).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from helpgate.accounts import sessions, users
from helpgate.core import rate_limits
from helpgate.core.errors import Conflict, Forbidden, InvalidResetToken, TooManyAttempts
from helpgate.core.rate_limits import Limit
from helpgate.core.security import hash_token, new_one_time_token
from helpgate.mail_out import outbound
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import TemplateKind
from helpgate.models import PasswordResetToken, Role, User

log = logging.getLogger(__name__)

RESET_MAILS_PER_ACCOUNT = Limit(3, timedelta(minutes=15))  # sign-up and reset codes; more are answered alike, unmailed
SIGNUPS_PER_IP = Limit(10, timedelta(hours=1))


class CodePurpose(StrEnum):
    """Why a one-time code is mailed: the `purpose` of the password_reset template."""

    SIGNUP = "signup"
    RESET = "reset"


CODE_SUBJECTS = {CodePurpose.SIGNUP: "Confirm your address at {}", CodePurpose.RESET: "Reset your password at {}"}


async def admit_signup(*, email: str, client: sessions.Client, policy: sessions.AuthPolicy) -> str:
    """The normalised address a sign-up may go on with: Forbidden when self-service is off, TooManyAttempts
    past SIGNUPS_PER_IP, InvalidInput for an address that is none. The same work for any address: whether it
    has an account is for `signup` to find out, after the answer."""
    if not policy.allow_signup:
        raise Forbidden("sign-up is turned off here; ask support for an account")
    if not await rate_limits.hit(key=f"signup:ip:{client.ip}", limit=SIGNUPS_PER_IP, now=client.now):
        log.warning("auth.signup_limited ip=%s", client.ip)
        raise TooManyAttempts(
            "too many sign-ups from this address", retry_after=sessions.retry_after(SIGNUPS_PER_IP, client.now)
        )
    return users.normalise_email(email)


async def signup(
    *, address: str, name: str, outgoing: Outgoing, client: sessions.Client, policy: sessions.AuthPolicy
) -> None:
    """Start a customer account for yourself (the address as admit_signup gave it): the address gets a one-time
    code to confirm it and choose a password (confirm_reset). An address with an account already (one made from
    mail, say) gets a code too, so the mail never tells whether it existed. Staff get a reset-purpose code:
    sign-up is not for them, but the mail is no more than password reset would send. Run after the answer
    (api/deferred.py), so neither does the answer's time."""
    user = await users.get_by_email(address)
    pending_name = ""  # the name waits on the code: only an account this sign-up made takes it
    if user is None:
        try:
            user = await users.create(actor=None, email=address, role=Role.CUSTOMER, password=None, source="signup")
            pending_name = name
        except Conflict:  # made meanwhile, by inbound mail or another sign-up
            user = await users.get_by_email(address)
    if user is None or not user.active:
        log.info("auth.signup_ignored email=%s reason=inactive", address)
        return
    purpose = CodePurpose.SIGNUP if user.role is Role.CUSTOMER else CodePurpose.RESET
    await _mail_code(user, purpose=purpose, outgoing=outgoing, policy=policy, now=client.now, name=pending_name)


async def request_reset(*, email: str, outgoing: Outgoing, policy: sessions.AuthPolicy, now: datetime) -> None:
    """Mail a one-time reset token to an active account. Says nothing either way (no account enumeration), and
    runs after the answer (api/deferred.py), so that the answer's time says nothing either."""
    address = email.strip().lower()
    user = await users.get_by_email(address)
    if user is None or not user.active:
        log.info("auth.reset_ignored email=%s reason=%s", address, "no such account" if user is None else "inactive")
        return
    await _mail_code(user, purpose=CodePurpose.RESET, outgoing=outgoing, policy=policy, now=now)


async def _mail_code(
    user: User,
    *,
    purpose: CodePurpose,
    outgoing: Outgoing,
    policy: sessions.AuthPolicy,
    now: datetime,
    name: str = "",
) -> None:
    """Mail a one-time code for confirm_reset. A newer code makes the older ones void, and at most
    RESET_MAILS_PER_ACCOUNT go out per window, sign-up and reset together. `name`, a sign-up's, is kept with
    the code for the account: the mail greets by the account's own name only."""
    assert user.id is not None
    if not await rate_limits.hit(key=f"reset:{user.id}", limit=RESET_MAILS_PER_ACCOUNT, now=now):
        log.warning("auth.reset_limited user=%s purpose=%s", user.id, purpose)
        return
    token = new_one_time_token()
    collection = PasswordResetToken.get_pymongo_collection()
    if not name:  # a sign-up's name, not confirmed yet, passes on to the code that voids its own
        waiting = await collection.find_one({"user_id": user.id, "used_at": None, "name": {"$ne": None}}, {"name": 1})
        name = str(waiting["name"]) if waiting is not None else ""
    await collection.update_many({"user_id": user.id, "used_at": None}, {"$set": {"used_at": now}})
    await PasswordResetToken(
        token_hash=hash_token(token),
        user_id=user.id,
        expires_at=now + policy.reset_ttl,
        created_at=now,
        name=name or None,
    ).insert()
    await outbound.queue_automatic(
        outgoing=outgoing,
        template=TemplateKind.PASSWORD_RESET,
        to=user.email,
        subject=CODE_SUBJECTS[purpose].format(outgoing.display_name),
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
    if stored.name:
        await users.name_if_unnamed(user, stored.name)
    assert user.id is not None
    await users.end_sessions(user.id)
    log.info("auth.password_reset user=%s: all sessions revoked", user.id)
