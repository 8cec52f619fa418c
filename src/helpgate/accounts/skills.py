"""The skill catalog: what triage may choose from and what agents are matched on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from helpgate.accounts import availability
from helpgate.audit import audit
from helpgate.core.errors import InvalidInput
from helpgate.core.naming import catalog_name
from helpgate.core.recent import Recent
from helpgate.models import AuditAction, Skill, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkillEntry:
    name: str
    description: str = ""


def normalise(name: str) -> str:
    """A skill's name as stored; InvalidInput for one that cannot be (core/naming.py)."""
    return catalog_name(name, what="skill")


async def catalog() -> list[Skill]:
    return await Skill.find({}).sort("name").to_list()


RECENT_SECONDS = 10.0  # another instance's change to the catalog reaches triage here within this
_RECENT = Recent(catalog, seconds=RECENT_SECONDS)


def _database() -> str:
    return str(Skill.get_pymongo_collection().database.name)


async def for_triage() -> list[Skill]:
    """The catalog as triage reads it: from the store at most every RECENT_SECONDS (one read less per ticket)."""
    return await _RECENT.get(_database())


async def names() -> set[str]:
    return {skill.name for skill in await catalog()}


async def replace(entries: Sequence[SkillEntry], *, actor: User | str | None) -> list[Skill]:
    """Make the catalog exactly `entries` (names normalised, duplicates refused), audited as `actor` (None audits
    nothing: a store seeded for tests or benchmarks)."""
    wanted: dict[str, str] = {}
    for entry in entries:
        name = normalise(entry.name)
        if name in wanted:
            raise InvalidInput(f"skill {name!r} is listed twice")
        wanted[name] = entry.description.strip()[:500]
    # One unit: the entry (pending), the catalog, then the confirmation (a catalog is its own mark).
    pending = await audit.begin_catalog(
        actor=actor, action=AuditAction.SKILLS_REPLACED, catalog="skills", names=sorted(wanted)
    )
    collection = Skill.get_pymongo_collection()
    removed = sorted(await names() - wanted.keys())
    await collection.delete_many({"name": {"$nin": list(wanted)}})
    for name, description in wanted.items():
        await collection.update_one({"name": name}, {"$set": {"description": description}}, upsert=True)
    if removed:  # a skill no longer in the catalog is no agent's skill either
        await User.get_pymongo_collection().update_many(
            {"skills": {"$in": removed}}, {"$pull": {"skills": {"$in": removed}}}
        )
        availability.forget()
    _RECENT.forget(_database())
    log.info("skills.replaced count=%d removed=%s", len(wanted), ",".join(removed) or "-")
    replaced = await catalog()
    if pending is not None:
        await audit.confirm(pending)
    return replaced


async def check_known(requested: Sequence[str]) -> list[str]:
    """`requested` normalised and deduplicated; InvalidInput naming any skill not in the catalog."""
    known = await names()
    result = list(dict.fromkeys(normalise(name) for name in requested))
    unknown = [name for name in result if name not in known]
    if unknown:
        raise InvalidInput(f"unknown skills: {', '.join(unknown)} (add them to the catalog first)")
    return result
