"""Bodies of accounts and sessions: login, tokens, sign-up, passwords, your own account."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from helpgate.api import examples
from helpgate.api.schemas.fields import Email, Name
from helpgate.models import User


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.LOGIN]})
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REFRESH]})
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TOKENS]})
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class SignupRequest(BaseModel):
    """A customer account for yourself. No password here: the address gets a code to confirm it and choose one.
    The name (one line, at most 100 characters) is kept for the account once the code is confirmed."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "jane@example.org", "name": "Jane"}]}
    )
    email: Email
    name: Name = ""


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REFRESH]})
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PASSWORD_CHANGE]})
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "jane@example.org"}]})
    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PASSWORD_RESET_CONFIRM]})
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Accepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ACCEPTED]})
    detail: str


class TokenForm(BaseModel):
    """The OAuth2 password grant (RFC 6749 section 4.3.2): `username` is the email address."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.TOKEN_FORM]})
    grant_type: Literal["password"] | None = None
    username: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    scope: Annotated[str, StringConstraints(max_length=1024)] = ""  # no scopes: the role decides
    client_id: Annotated[str, StringConstraints(max_length=256)] | None = None  # sent by some clients; unused
    client_secret: Annotated[str, StringConstraints(max_length=256)] | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ME]})
    id: str
    email: str
    name: str
    role: str
    skills: list[str]
    active: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=str(user.id),
            email=user.email,
            name=user.name,
            role=user.role,
            skills=user.skills,
            active=user.active,
        )
