"""Admin bodies: accounts, the skill catalog, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpgate.api import examples
from helpgate.api.schemas.auth import UserOut
from helpgate.api.schemas.fields import Email, Name
from helpgate.models import AuditAction, AuditEntry, Role, Skill, Suppression, User

# --- admin: accounts and the skill catalog --------------------------------------------------------------

Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
SkillName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
MAX_SKILLS = 200  # per agent, and in the catalog


class UserAdminOut(UserOut):
    """An account as admins see it (still no password hash)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.AGENT]})

    away: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserAdminOut:
        return cls.model_validate({**UserOut.of(user).model_dump(), "away": user.away, "created_at": user.created_at})


class UserPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.USER_PAGE]})
    items: list[UserAdminOut]
    total: int
    page: int
    page_size: int


class UserCreate(BaseModel):
    """A new account; without a password it cannot log in until one is set."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.USER_CREATE]})
    email: Email
    name: Name = ""
    role: Role
    password: Password | None = None
    skills: list[SkillName] = Field(default_factory=list, max_length=MAX_SKILLS)


class UserPatch(BaseModel):
    """Only the fields sent change; none of them may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.USER_PATCH]})
    name: Name | None = None
    role: Role | None = None
    skills: list[SkillName] | None = Field(default=None, max_length=MAX_SKILLS)
    active: bool | None = None
    away: bool | None = None

    @field_validator("name", "role", "skills", "active", "away")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class SkillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.SKILL]})
    name: SkillName
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class SkillOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SKILL]})
    name: str
    description: str

    @classmethod
    def of(cls, skill: Skill) -> SkillOut:
        return cls(name=skill.name, description=skill.description)


# --- admin: the audit log ----------------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    id: str
    at: datetime
    actor_id: str | None
    actor_email: str
    action: AuditAction
    target_type: str
    target_id: str
    target_label: str
    changes: dict[str, object] = Field(description='field -> new value; secrets only as "(changed)"')

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=str(entry.id),
            at=entry.at,
            actor_id=str(entry.actor_id) if entry.actor_id else None,
            actor_email=entry.actor_email,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            target_label=entry.target_label,
            changes=entry.changes,
        )


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.AUDIT_PAGE]})
    items: list[AuditEntryOut]
    total: int
    page: int
    page_size: int


class SuppressionOut(BaseModel):
    """An address helpgate does not mail, and why (a bounce's status and diagnostic)."""

    address: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, suppression: Suppression) -> SuppressionOut:
        return cls(address=suppression.address, reason=suppression.reason, created_at=suppression.created_at)


class SuppressionPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SUPPRESSION_PAGE]})
    items: list[SuppressionOut]
    total: int
    page: int
    page_size: int
