"""Addresses helpgate must not mail (they bounced, or asked not to be mailed)."""

from datetime import datetime

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class Suppression(Document):
    address: str  # lower-cased; unique
    reason: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "suppressions"
        indexes = [IndexModel([("address", ASCENDING)], unique=True, name="address_unique")]
