"""Fixed-window counters for rate limits: one document per (key, window), removed after it expires."""

from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel


class RateWindow(Document):
    id: str  # type: ignore[assignment]  # "<key>@<window start, unix seconds>"
    hits: int = 0
    expires_at: datetime

    class Settings:
        name = "rate_windows"
        indexes = [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")]
