"""Named counters incremented atomically (ticket numbers, per-status ticket totals)."""

from beanie import Document


class Counter(Document):
    id: str  # type: ignore[assignment]  # the counter's name is its _id
    value: int = 0

    class Settings:
        name = "counters"
