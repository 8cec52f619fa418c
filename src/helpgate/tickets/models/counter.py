"""Named counters incremented atomically (ticket numbers, the queue's status x priority counts), all in one
document: the shape is `tickets/counters.py`'s, which alone reads and writes it."""

from beanie import Document
from pydantic import Field


class Counter(Document):
    id: str  # type: ignore[assignment]  # always counters.DOCUMENT_ID
    counts: dict[str, int] = Field(default_factory=dict)  # by name, escaped as counters.py says
    folded: dict[str, bool] = Field(default_factory=dict)  # counters moved in from the previous version's documents

    class Settings:
        name = "counters"
