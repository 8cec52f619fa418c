"""A staff change to a ticket (or a merge) whose audit entry and announcements may not all be stored yet.

Written before the change, deleted once its audit entry and events are stored: if the instance stops in between,
whoever finishes unfinished changes (tickets/unfinished.py) finds it and stores what is missing, so a change is
never left unaudited or unannounced. `key` goes into the ticket's `applied` list with the change's own write: a
record whose key the ticket lacks is of a change that never happened (its request failed before the write).
"""

from datetime import datetime
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic import Field

from helpgate.core.clock import utcnow
from helpgate.tickets.models.ticket import APPLIED_KEPT


class UnfinishedChange(Document):
    ticket_id: PydanticObjectId
    number: int
    at: datetime  # the change's moment: the ticket's `updated_at`, and what its events are keyed by
    actor_id: PydanticObjectId | None = None
    actor_email: str
    asked: dict[str, Any] = Field(default_factory=dict)  # what the request asked for: the audit entry's changes
    values: dict[str, Any] = Field(default_factory=dict)  # what the write set on the ticket
    fields: list[str] = Field(default_factory=list)  # the fields `ticket/updated` names
    assigned: bool = False  # announce `ticket/assigned`
    solved: bool = False  # announce `ticket/solved`
    merge_into: int | None = None  # a merge (tickets/merging.py): the number of the ticket that remains
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        """What the change's write pushes on the ticket's `applied`."""
        return f"change {self.id}"

    @property
    def write(self) -> dict[str, Any]:
        """The change's own update of the ticket: its values, and its key pushed on `applied`."""
        return {"$set": self.values, "$push": {"applied": {"$each": [self.key], "$slice": -APPLIED_KEPT}}}

    class Settings:
        name = "unfinished_changes"
