"""Whom automatic assignment picks from: the active agents and admins who are not away.

Read from the store at most every RECENT_SECONDS per process and database (one read less per ticket). A change made
through this process's services (an account created, its role, active or away flag, skills or name changed, a skill
taken out of the catalog) is seen by its very next assignment; one made through another instance, or with the
command line (a process of its own), within RECENT_SECONDS. Their open tickets are not kept: tickets/routing.py
counts them for every ticket.
"""

from __future__ import annotations

from helpgate.core.recent import Recent
from helpgate.models import Role, User

RECENT_SECONDS = 10.0  # another instance's change to a staff account reaches automatic assignment here within this


async def _load() -> tuple[User, ...]:
    found = User.find({"role": {"$in": [Role.AGENT, Role.ADMIN]}, "active": True, "away": False})
    return tuple(await found.to_list())


_RECENT = Recent(_load, seconds=RECENT_SECONDS)


def _database() -> str:
    return str(User.get_pymongo_collection().database.name)


async def available_staff() -> tuple[User, ...]:
    """The active agents and admins not away, as the store had them at most RECENT_SECONDS ago (shared: not to be
    changed)."""
    return await _RECENT.get(_database())


def forget() -> None:
    """Read the staff again at the next assignment: called by every change to an account made in this process
    that may change whom it picks."""
    _RECENT.forget(_database())
