"""Accounts, for admins: list and search, create (a welcome mail follows), change role, skills, state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from helpgate.accounts import users
from helpgate.accounts.users import UserChanges
from helpgate.api.deps import AdminUser
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.admin import UserAdminOut, UserCreate, UserPage, UserPatch
from helpgate.core import paging
from helpgate.models import Role

router = APIRouter(prefix="/api/users", tags=["users"], responses=errors(401, 403, 422))

UserId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("")
async def list_users(
    admin: AdminUser,
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the email or name, as plain text")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)] = 25,
) -> UserPage:
    """Accounts by email, filtered by role and by text in the email or name."""
    result = await users.list_users(role=role, q=q, page=page, page_size=page_size)
    return UserPage(
        items=[UserAdminOut.of(user) for user in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.post("", status_code=201, responses=errors(400) | error(409, "an account with this email exists"))
async def create_user(admin: AdminUser, body: UserCreate) -> UserAdminOut:
    """Create an account of any role (audited). Skills are for agents and admins and must be in the catalog."""
    user = await users.create(
        actor=admin,
        email=body.email,
        role=body.role,
        password=body.password,
        name=body.name,
        source="api",
        skills=body.skills,
    )
    return UserAdminOut.of(user)


@router.patch(
    "/{user_id}",
    responses=errors(400)
    | error(404, "no account with this id")
    | error(409, "you cannot demote or deactivate yourself"),
)
async def update_user(admin: AdminUser, user_id: UserId, body: UserPatch) -> UserAdminOut:
    """Change name, role, skills, `active` (a deactivated account's sessions end) or `away` (no new
    assignments). Only the fields sent change; the change is audited."""
    changes = UserChanges(**body.model_dump(exclude_unset=True))
    user = await users.update(actor=admin, user_id=user_id, changes=changes)
    return UserAdminOut.of(user)
