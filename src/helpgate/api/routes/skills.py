"""The skill catalog: agents and admins read it, admins replace it (triage chooses only from it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from helpgate.accounts import skills
from helpgate.accounts.skills import SkillEntry
from helpgate.api.deps import AdminUser, StaffUser
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.admin import MAX_SKILLS, SkillIn, SkillOut

router = APIRouter(prefix="/api/skills", tags=["skills"], responses=errors(401))

Catalog = Annotated[list[SkillIn], Body(max_length=MAX_SKILLS)]


@router.get("", responses=error(403, "only agents and admins can do this", detail="only agents and admins can do this"))
async def list_skills(user: StaffUser) -> list[SkillOut]:
    """The catalog triage chooses skills from, by name."""
    return [SkillOut.of(skill) for skill in await skills.catalog()]


@router.put("", responses=error(403, "only admins can do this") | errors(400, 422))
async def replace_skills(admin: AdminUser, body: Catalog) -> list[SkillOut]:
    """The catalog becomes exactly this list (audited); a skill left out is also taken from every agent."""
    entries = [SkillEntry(name=entry.name, description=entry.description) for entry in body]
    catalog = await skills.replace(entries, actor=admin)
    return [SkillOut.of(skill) for skill in catalog]
