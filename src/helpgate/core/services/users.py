"""Accounts: staff created by an admin or the CLI, customers created from the mail they send."""

from __future__ import annotations

import logging
import re
from email.errors import HeaderParseError
from email.headerregistry import Address

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.core.errors import Conflict, InvalidInput
from helpgate.core.models import Role, User
from helpgate.core.security import hash_password

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


async def create(*, email: str, role: Role, password: str | None = None, name: str = "") -> User:
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
    log.info("user.created id=%s role=%s", user.id, role)
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
