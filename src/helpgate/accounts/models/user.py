"""People: customers who write in, agents who answer, admins who run the place."""

from datetime import datetime
from enum import StrEnum

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    CUSTOMER = "customer"


class User(Document):
    email: str  # stored lower-cased; the unique key
    name: str = ""
    role: Role = Role.CUSTOMER
    password_hash: str | None = None  # customers created from mail have none until they set one
    active: bool = True
    skills: list[str] = Field(default_factory=list)
    away: bool = False  # on leave: not given new tickets
    # No longer written nor read: automatic assignment breaks ties by the tickets' assigned_at (tickets/routing.py).
    # Kept so that accounts stored by earlier versions, which have it, read as they are.
    last_assigned_at: datetime | None = None
    applied: list[str] = Field(default_factory=list)  # the audit marks of the last changes written (audit.marked)
    # Counts the times the account's sessions were ended; an access token from an earlier epoch is void.
    session_epoch: int = 0
    # Sessions ended one by one (logout, a refresh token spent twice): session id -> when its last access token
    # expires. Access tokens carry their session id; one of an ended session is void. Entries go once expired.
    ended_sessions: dict[str, datetime] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "users"
        indexes = [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.ADMIN, Role.AGENT)
