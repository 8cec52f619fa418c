"""Refresh tokens, stored only as their sha256."""

from datetime import datetime

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class RefreshToken(Document):
    token_hash: str
    user_id: PydanticObjectId
    family: str  # every token rotated from one login shares it; reuse of a spent one revokes them all
    expires_at: datetime
    used_at: datetime | None = None
    revoked: bool = False
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "refresh_tokens"
        indexes = [
            IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
            IndexModel([("family", ASCENDING)], name="family"),
            IndexModel([("user_id", ASCENDING)], name="user"),  # a password change revokes them all
        ]
