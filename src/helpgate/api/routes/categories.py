"""The category catalog: agents and admins read it, admins replace it (triage files tickets under it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from helpgate.api.deps import AdminUser, StaffUser
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.categories import CategoryIn, CategoryOut
from helpgate.tickets import categories
from helpgate.tickets.categories import MAX_CATEGORIES, CategoryEntry

router = APIRouter(prefix="/api/categories", tags=["categories"], responses=errors(401))

Catalog = Annotated[list[CategoryIn], Body(max_length=MAX_CATEGORIES)]


@router.get("", responses=error(403, "only agents and admins can do this", detail="only agents and admins can do this"))
async def list_categories(user: StaffUser) -> list[CategoryOut]:
    """The catalog triage files tickets under, in its order ("other" is always allowed, listed or not)."""
    return [CategoryOut.of(category) for category in await categories.catalog()]


@router.put("", responses=error(403, "only admins can do this") | errors(400, 422))
async def replace_categories(admin: AdminUser, body: Catalog) -> list[CategoryOut]:
    """The catalog becomes exactly this list, in this order (audited). The descriptions tell the AI what belongs
    where; the keywords steer the keyword triage (the earlier category wins a tie). Tickets keep the categories
    they have, removed ones too."""
    entries = [CategoryEntry(entry.name, entry.description, tuple(entry.keywords)) for entry in body]
    return [CategoryOut.of(category) for category in await categories.replace(entries, actor=admin)]
