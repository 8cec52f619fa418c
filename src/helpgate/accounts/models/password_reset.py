"""Password reset tokens: mailed once, stored only as their sha256, single use, removed after they expire."""

from datetime import datetime

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class PasswordResetToken(Document):
    token_hash: str
    user_id: PydanticObjectId
    expires_at: datetime
    used_at: datetime | None = None  # spent, or superseded by a newer token for the same user
    # The name a sign-up gave for the account it made: the account takes it when the code is spent, so nothing
    # a stranger typed reaches mail (or the account) before the address is proven (issue 14, finding 8).
    name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "password_reset_tokens"
        indexes = [
            IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
            IndexModel([("user_id", ASCENDING)], name="user"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
        ]
