"""Accounts: staff created by an admin or the CLI, customers created from the mail they send."""

from __future__ import annotations

import logging
import re
from email.errors import HeaderParseError
from email.headerregistry import Address

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.core.errors import Conflict, InvalidInput, NotFound
from helpgate.core.models import Role, User
from helpgate.core.security import hash_password
from helpgate.core.services import events
from helpgate.core.services import skills as catalog

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
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
    return f"{address.username}@{domain}".lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


async def get(user_id: PydanticObjectId) -> User | None:
    return await User.get(user_id)


async def get_by_email(email: str) -> User | None:
    return await User.find_one({"email": email.strip().lower()})


async def create(*, email: str, role: Role, password: str | None = None, name: str = "", source: str = "api") -> User:
    """A new account (admin API or CLI: `source` says which), announced as `user/created`."""
    address = normalise_email(email)
    if password is not None:
        check_password(password)
    user = User(
        email=address,
        name=name,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
    )
    try:
        await user.insert()
    except DuplicateKeyError:
        raise Conflict(f"a user with email {address} exists") from None
    log.info("user.created id=%s role=%s source=%s", user.id, role, source)
    await events.emit(
        events.USER_CREATED,
        key=f"{events.USER_CREATED} {user.id}",
        data={"user_id": str(user.id), "role": str(role), "source": source},
    )
    return user


async def get_or_create_customer(*, email: str, name: str = "") -> User:
    """The user behind an inbound address; created as a customer on first contact."""
    address = email.strip().lower()
    existing = await get_by_email(address)
    if existing is not None:
        return existing
    user = User(email=address, name=name, role=Role.CUSTOMER)
    try:
        await user.insert()
    except DuplicateKeyError:  # created concurrently by another delivery
        again = await get_by_email(address)
        assert again is not None
        return again
    log.info("user.created id=%s role=customer source=mail", user.id)
    return user


async def update_staff(email: str, *, skills: list[str] | None = None, away: bool | None = None) -> User:
    """Set an agent's or admin's skills (names from the catalog) and away flag; NotFound/InvalidInput else."""
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
        await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": values})
        log.info("user.updated id=%s fields=%s", user.id, ",".join(sorted(values)))
    return user
