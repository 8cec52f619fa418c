"""A lease: one holder of a named piece of work at a time (an IMAP mailbox polled by one instance).

The lease's name is its `_id` (`mailbox:<mailbox id>`): one unique string key, not a compound unique
index, which on the embedded store makes every write to the collection scan it. A lease that is absent
is free; one whose `expires_at` has passed may be taken by anyone.
"""

from datetime import datetime

from beanie import Document
from pydantic import Field

from helpgate.core.clock import utcnow


class Lease(Document):
    id: str  # type: ignore[assignment]  # the lease's name is its _id
    owner: str  # the instance holding it (HELPGATE_INSTANCE_ID)
    expires_at: datetime  # by the holder's clock; see mailboxes/leases.py for the timing rule
    acquired_at: datetime = Field(default_factory=utcnow)  # when this owner took it
    renewed_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "leases"
