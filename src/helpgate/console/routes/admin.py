"""What admins do in the console: accounts (invite, role, skills, away, deactivate), the skill catalog and the
audit log. The same services and request schemas as /api/users, /api/skills and /api/audit, so the same rules
and the same audit entries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from starlette.responses import Response

from helpgate.accounts import skills, users
from helpgate.accounts.skills import SkillEntry
from helpgate.accounts.users import UserChanges
from helpgate.api.schemas.admin import MAX_SKILLS, SkillIn, UserCreate, UserPatch
from helpgate.audit import audit
from helpgate.console import pages
from helpgate.console.forms import first, posted, valid
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer, Viewer
from helpgate.core.errors import Forbidden, InvalidInput, NotFound
from helpgate.models import AuditAction, Role

routes = router()

PAGE_SIZE = 25
UserId = Annotated[str, Path(min_length=1, max_length=64)]


def admin_only(viewer: Viewer) -> None:
    if viewer.user.role is not Role.ADMIN:
        raise Forbidden("only admins can do this")


def _skill_list(text: str) -> list[str]:
    return [name.strip() for name in text.replace(";", ",").split(",") if name.strip()]


@routes.get("/admin/users")
async def user_list(
    request: Request,
    viewer: CurrentViewer,
    q: Annotated[str, Query(max_length=200)] = "",
    role: Role | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    admin_only(viewer)
    found = await users.list_users(role=role, q=q or None, page=page, page_size=PAGE_SIZE)

    def link(**changed: object) -> str:
        return pages.link_to("/admin/users", {"q": q, "role": role or "", "page": page, **changed})

    context: dict[str, Any] = {
        "found": found,
        "q": q,
        "role": role,
        "roles": list(Role),
        "catalog": await skills.catalog(),
        "last_page": max(1, -(-found.total // PAGE_SIZE)),
        "link": link,
    }
    return pages.page(request, viewer, "admin_users.html.j2", **context)


@routes.post("/admin/users")
async def invite(request: Request, viewer: CurrentViewer) -> Response:
    """A new account without a password: the welcome mail tells them to choose one (password reset)."""
    fields = await posted(request, viewer)
    admin_only(viewer)
    body = valid(
        UserCreate,
        {
            "email": first(fields, "email"),
            "name": first(fields, "name"),
            "role": first(fields, "role"),
            "skills": _skill_list(first(fields, "skills")),
        },
    )
    user = await users.create(
        actor=viewer.user, email=body.email, role=body.role, name=body.name, source="console", skills=body.skills
    )
    return pages.redirect(request, viewer, f"/admin/users/{user.id}")


@routes.get("/admin/users/{user_id}")
async def user_page(request: Request, viewer: CurrentViewer, user_id: UserId) -> Response:
    admin_only(viewer)
    user = await users.get(users.parse_id(user_id))
    if user is None:
        raise NotFound("no such account")
    context: dict[str, Any] = {"account": user, "roles": list(Role), "catalog": await skills.catalog()}
    return pages.page(request, viewer, "admin_user.html.j2", **context)


@routes.post("/admin/users/{user_id}")
async def change_user(request: Request, viewer: CurrentViewer, user_id: UserId) -> Response:
    """Name, role, skills, away and active as the form shows them (checkboxes left unticked are false)."""
    fields = await posted(request, viewer)
    admin_only(viewer)
    patch = valid(
        UserPatch,
        {
            "name": first(fields, "name"),
            "role": first(fields, "role"),
            "skills": _skill_list(first(fields, "skills")),
            "away": "away" in fields,
            "active": "active" in fields,
        },
    )
    await users.update(actor=viewer.user, user_id=user_id, changes=UserChanges(**patch.model_dump(exclude_unset=True)))
    return pages.redirect(request, viewer, f"/admin/users/{user_id}")


@routes.get("/admin/skills")
async def skill_catalog(request: Request, viewer: CurrentViewer) -> Response:
    admin_only(viewer)
    return pages.page(request, viewer, "admin_skills.html.j2", catalog=await skills.catalog(), blank_rows=3)


@routes.post("/admin/skills")
async def replace_skills(request: Request, viewer: CurrentViewer) -> Response:
    """The catalog becomes the rows of the form that have a name (a row emptied is a skill removed)."""
    fields = await posted(request, viewer)
    admin_only(viewer)
    names, descriptions = fields.get("name", []), fields.get("description", [])
    if len(names) != len(descriptions) or len(names) > MAX_SKILLS + 10:
        raise InvalidInput("the form's rows do not match: reload the page")
    rows = [
        valid(SkillIn, {"name": name, "description": text})
        for name, text in zip(names, descriptions, strict=True)
        if name.strip()
    ]
    await skills.replace([SkillEntry(name=row.name, description=row.description) for row in rows], actor=viewer.user)
    return pages.redirect(request, viewer, "/admin/skills")


@routes.get("/admin/audit")
async def audit_log(
    request: Request,
    viewer: CurrentViewer,
    actor: Annotated[str, Query(max_length=320)] = "",
    action: AuditAction | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    admin_only(viewer)
    found = await audit.list_entries(actor=actor or None, action=action, page=page, page_size=PAGE_SIZE)

    def link(**changed: object) -> str:
        return pages.link_to("/admin/audit", {"actor": actor, "action": action or "", "page": page, **changed})

    context: dict[str, Any] = {
        "found": found,
        "actor": actor,
        "action": action,
        "actions": list(AuditAction),
        "last_page": max(1, -(-found.total // PAGE_SIZE)),
        "link": link,
    }
    return pages.page(request, viewer, "admin_audit.html.j2", **context)
