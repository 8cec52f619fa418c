"""Accounts: staff created by an admin or the CLI (audited), customers created from the mail they send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from helpgate.accounts import availability
from helpgate.accounts import skills as catalog
from helpgate.audit import audit
from helpgate.core import paging
from helpgate.core.errors import Conflict, InvalidInput, NotFound
from helpgate.core.paging import Page
from helpgate.core.security import hash_password, password_weakness
from helpgate.mailboxes import leases
from helpgate.models import AuditAction, RefreshToken, Role, User
from helpgate.outbox import events

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
ADMIN_GUARD = "users:admin-changes"  # the lease held by each change that may take an admin away
ADMIN_GUARD_TTL = timedelta(seconds=30)
ADMIN_GUARD_WAIT = 10.0  # seconds a change waits for another one to finish
ADMIN_GUARD_POLL = 0.02
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)|xn--[a-z0-9-]{1,59}")


def normalise_email(email: str) -> str:
    """Lower-cased addr-spec after an RFC 5322 syntax check; single-label domains (localhost) are fine."""
    candidate = email.strip()
    try:
        address = Address(addr_spec=candidate)
    except (ValueError, IndexError, HeaderParseError):
        raise InvalidInput(f"invalid email address: {candidate!r}") from None
    domain = address.domain.lower()
    local_ok = address.username and not any(char.isspace() or ord(char) < 32 for char in address.username)
    if not local_ok or len(candidate) > 254 or not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        raise InvalidInput(f"invalid email address: {candidate!r}")
    # Address(...).addr_spec quotes a local part that needs it ("a,b"@example.com), so the address stays one
    # address when it is written into a To or Cc header.
    return Address(username=address.username.lower(), domain=domain).addr_spec


def check_password(password: str, *, email: str | None = None) -> None:
    """InvalidInput (422) for a password too short or trivially weak for the account with this email."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    weakness = password_weakness(password, email=email)
    if weakness is not None:
        raise InvalidInput(weakness)


async def get(user_id: PydanticObjectId) -> User | None:
    return await User.get(user_id)


async def get_by_email(email: str) -> User | None:
    return await User.find_one({"email": email.strip().lower()})


async def create(
    *,
    actor: User | str | None,
    email: str,
    role: Role,
    password: str | None = None,
    name: str = "",
    source: str = "api",
    skills: Sequence[str] = (),
) -> User:
    """A new account (admin API or CLI: `source` says which), announced as `user/created` and audited as made by
    `actor`. None audits nothing: nobody made it for someone else (a customer's own sign-up, a store seeded for
    tests). `skills` must be in the catalog, and only agents and admins have any."""
    address = normalise_email(email)
    if password is not None:
        check_password(password, email=address)
    if skills and role is Role.CUSTOMER:
        raise InvalidInput("customers have no skills; only agents and admins do")
    user = User(
        id=PydanticObjectId(),
        email=address,
        name=name,
        role=role,
        password_hash=await asyncio.to_thread(hash_password, password) if password is not None else None,
        skills=await catalog.check_known(skills) if skills else [],
    )
    created = (
        events.USER_CREATED,
        f"{events.USER_CREATED} {user.id}",
        {"user_id": str(user.id), "role": str(role), "source": source},
    )
    entry = None
    if actor is not None:  # one unit: the entry (pending), the account carrying its mark, then the announcement
        asked = {"email": email, "name": name, "role": role, "password": password, "skills": list(skills)}
        given = {key: value for key, value in asked.items() if value is not None}  # the password as "(changed)"
        entry = await _begin(actor, AuditAction.USER_CREATED, user, given, then=[created])
        user.applied = [audit.mark(entry)]
    try:
        await user.insert()
    except DuplicateKeyError:
        if entry is not None:
            await audit.abandon(entry)
        raise Conflict(f"a user with email {address} exists") from None
    if user.is_staff:
        availability.forget()
    log.info("user.created id=%s role=%s source=%s", user.id, role, source)
    if entry is not None:
        await audit.confirm(entry)
    else:
        await events.emit(created[0], key=created[1], data=created[2])
    return user


async def set_password(user: User, password: str) -> None:
    """Store a new password (checked first) for the account."""
    check_password(password, email=user.email)
    user.password_hash = await asyncio.to_thread(hash_password, password)  # argon2: off the event loop
    await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": {"password_hash": user.password_hash}})
    log.info("user.password_set id=%s", user.id)


async def name_if_unnamed(user: User, name: str) -> None:
    """Give the account this name unless it has one (a confirmed sign-up's name never replaces another)."""
    named = await User.get_pymongo_collection().update_one({"_id": user.id, "name": ""}, {"$set": {"name": name}})
    if named.modified_count:
        user.name = name
        if user.is_staff:
            availability.forget()
        log.info("user.named id=%s", user.id)


async def get_or_create_customer(*, email: str, name: str = "") -> User:
    """The user behind an inbound address, created as a customer (named `name`) on first contact. One command
    either way: an upsert that inserts only when no account has the address, and otherwise returns that account
    as it is (staff, inactive, named). One created meanwhile by another delivery is returned."""
    address = email.strip().lower()
    new = User(id=PydanticObjectId(), email=address, name=name, role=Role.CUSTOMER)
    try:
        before = await User.get_pymongo_collection().find_one_and_update(
            {"email": address},
            {"$setOnInsert": new.model_dump(by_alias=True)},  # the whole document, as new.insert() writes it
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
    except DuplicateKeyError:  # two upserts at once: the other one inserted it
        again = await get_by_email(address)
        assert again is not None
        return again
    if before is not None:
        existing: User = User.model_validate(before)
        return existing
    log.info("user.created id=%s role=customer source=mail", new.id)
    return new


async def update_staff(
    email: str, *, actor: User | str, skills: list[str] | None = None, away: bool | None = None
) -> User:
    """Set an agent's or admin's skills (names from the catalog) and away flag, audited as `actor`;
    NotFound/InvalidInput else. Neither given only reads the account."""
    user = await get_by_email(email)
    if user is None:
        raise NotFound(f"no user with email {email.strip().lower()}")
    if not user.is_staff:
        raise InvalidInput(f"{user.email} is a customer; only agents and admins have skills")
    values: dict[str, object] = {}
    if skills is not None:
        values["skills"] = user.skills = await catalog.check_known(skills)
    if away is not None:
        values["away"] = user.away = away
    if values:
        entry = await _begin(actor, AuditAction.USER_UPDATED, user, values)
        await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": values, **audit.marked(entry)})
        availability.forget()
        log.info("user.updated id=%s fields=%s", user.id, ",".join(sorted(values)))
        await audit.confirm(entry)
    return user


async def list_users(
    *, role: Role | None = None, q: str | None = None, page: int = 1, page_size: int = 25
) -> Page[User]:
    """Newest first. `q` matches a part of the email or name, case-insensitively, as literal text:
    it is escaped, so a user-supplied pattern never runs as a regex (no operators, no ReDoS)."""
    page, page_size = paging.bounds(page, page_size)
    query: dict[str, object] = {}
    if role is not None:
        query["role"] = str(role)
    if q and q.strip():
        pattern = {"$regex": re.escape(q.strip()), "$options": "i"}
        query["$or"] = [{"email": pattern}, {"name": pattern}]
    total = await User.find(query).count()
    found = User.find(query).sort("-created_at", "-_id")
    return await paging.page_of(found, total=total, page=page, page_size=page_size)


async def staff() -> list[User]:
    """The active agents and admins, by email: whom a ticket can be assigned to."""
    found = User.find({"role": {"$in": [str(Role.AGENT), str(Role.ADMIN)]}, "active": True}).sort("+email")
    return await found.to_list()


@dataclass(frozen=True)
class UserChanges:
    """What an admin asks to change on an account; fields left None are kept."""

    name: str | None = None
    role: Role | None = None
    skills: Sequence[str] | None = None
    active: bool | None = None
    away: bool | None = None


def parse_id(user_id: str) -> PydanticObjectId:
    """The id in a path; NotFound (not a validation error) when it cannot name a user."""
    found = paging.object_id(user_id)
    if found is None:
        raise NotFound(f"user {user_id[:64]!r} not found")
    return found


async def update(*, actor: User | str, user_id: str, changes: UserChanges) -> User:
    """Change an account, audited as `actor` with the fields asked for; customers have no skills (an agent demoted
    to customer loses them). A new role or a deactivation ends the account's sessions (end_sessions).

    There is always an active admin: an admin cannot demote or deactivate themselves, and the last active
    admin cannot be demoted or deactivated (Conflict). Changes that may take an admin away run one at a time
    under a guard, so that rule holds when the change is written: without it, two admins demoting each other
    at the same moment would each see the other still in place and leave none."""
    target = parse_id(user_id)
    itself = isinstance(actor, User) and target == actor.id
    if itself and (changes.role not in (None, Role.ADMIN) or changes.active is False):
        raise Conflict("you cannot demote or deactivate yourself; ask another admin")
    asked = {name: value for name, value in asdict(changes).items() if value is not None}
    if changes.role in (None, Role.ADMIN) and changes.active is not False:
        return await _apply(target, changes, actor=actor, asked=asked)
    async with _admin_guard():
        return await _apply(target, changes, actor=actor, asked=asked, keep_an_admin=True)


async def _begin(
    actor: User | str,
    action: AuditAction,
    user: User,
    changes: Mapping[str, object],
    *,
    then: Sequence[audit.Announcement] = (),
) -> audit.Pending:
    """The change's audit entry, pending until audit.confirm (the change's write carries its mark)."""
    return await audit.begin(
        actor=actor,
        action=action,
        target_type="user",
        target_id=str(user.id),
        target_label=user.email,
        changes=changes,
        then=then,
    )


async def _apply(
    user_id: PydanticObjectId,
    changes: UserChanges,
    *,
    actor: User | str,
    asked: Mapping[str, object],
    keep_an_admin: bool = False,
) -> User:
    """Write the change and its audit entry as one unit (audit.begin); nothing to change is audited at once."""
    user = await get(user_id)
    if user is None:
        raise NotFound(f"user {str(user_id)!r} not found")
    if keep_an_admin and user.role is Role.ADMIN and user.active and not await _another_active_admin(user):
        raise Conflict("the last active admin cannot be demoted or deactivated")
    values: dict[str, object] = {}
    if changes.name is not None:
        values["name"] = changes.name
    if changes.role is not None:
        values["role"] = str(changes.role)
    if changes.active is not None:
        values["active"] = changes.active
    if changes.away is not None:
        values["away"] = changes.away
    role = changes.role or user.role
    if changes.skills is not None:
        if changes.skills and role is Role.CUSTOMER:
            raise InvalidInput(f"{user.email} is a customer; only agents and admins have skills")
        values["skills"] = await catalog.check_known(changes.skills)
    elif role is Role.CUSTOMER and user.skills:
        values["skills"] = []
    if not values:
        await audit.record(
            actor=actor,
            action=AuditAction.USER_UPDATED,
            target_type="user",
            target_id=str(user.id),
            target_label=user.email,
            changes=asked,
        )
        return user
    entry = await _begin(actor, AuditAction.USER_UPDATED, user, asked)
    await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": values, **audit.marked(entry)})
    availability.forget()
    log.info("user.updated id=%s fields=%s", user.id, ",".join(sorted(values)))
    if role is not user.role or changes.active is False:
        await end_sessions(user_id)
    await audit.confirm(entry)
    changed: User = user.model_copy(update={**values, "role": role})
    return changed


async def _another_active_admin(user: User) -> bool:
    return await User.find_one({"role": str(Role.ADMIN), "active": True, "_id": {"$ne": user.id}}) is not None


@contextlib.asynccontextmanager
async def _admin_guard() -> AsyncIterator[None]:
    """Hold the lease every change that may take an admin away holds; Conflict when another one keeps it
    longer than ADMIN_GUARD_WAIT. The lease lapses after ADMIN_GUARD_TTL should its holder die."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + ADMIN_GUARD_WAIT
    while await leases.take(ADMIN_GUARD, owner=owner, ttl=ADMIN_GUARD_TTL) is None:
        if time.monotonic() > deadline:
            raise Conflict("another change to an admin account is being made; try again")
        await asyncio.sleep(ADMIN_GUARD_POLL)
    try:
        yield
    finally:
        await leases.release(ADMIN_GUARD, owner=owner)


async def end_session(user_id: PydanticObjectId, session: str, *, until: datetime, now: datetime) -> None:
    """Void the access tokens of one session (they are good until `until` at the latest); entries for sessions
    whose tokens have all expired are dropped on the way, so the list stays as short as the access token lifetime."""
    user = await User.get(user_id)
    if user is None:
        return
    update: dict[str, Any] = {"$set": {f"ended_sessions.{session}": until}}
    expired = {
        f"ended_sessions.{old}": "" for old, ends in user.ended_sessions.items() if ends <= now and old != session
    }
    if expired:
        update["$unset"] = expired
    await User.get_pymongo_collection().update_one({"_id": user_id}, update)
    log.info("user.session_ended id=%s session=%s", user_id, session)


async def end_sessions(user_id: PydanticObjectId) -> int:
    """Revoke every refresh token of the account and void its access tokens (a new `session_epoch`), so it
    must log in again. Returns the new epoch, for the pair issued with a password change."""
    updated = await User.get_pymongo_collection().find_one_and_update(
        {"_id": user_id}, {"$inc": {"session_epoch": 1}}, {"session_epoch": 1}, return_document=ReturnDocument.AFTER
    )
    result = await RefreshToken.get_pymongo_collection().update_many(
        {"user_id": user_id, "revoked": False}, {"$set": {"revoked": True}}
    )
    epoch = int(updated["session_epoch"]) if updated is not None else 0
    log.info("user.sessions_ended id=%s revoked=%d epoch=%d", user_id, result.modified_count, epoch)
    return epoch
