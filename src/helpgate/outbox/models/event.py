"""The transactional outbox: one OutboxEvent per change that workflows react to.

A service writes it in the same call as the change it announces. `key` makes emitting idempotent (the same
change announced twice is stored once); the relay (workflows/relay.py) delivers pending events, each with
its own id as the event id, so the receiving side (Inngest or the local runner) dedupes a redelivery.

    pending ──claim (lease)──▶ delivering ──▶ sent
       ▲                          │ error: back to pending with backoff, `attempts` + 1, `last_error`
       └── lease lapsed ──────────┘
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from helpgate.core.clock import utcnow


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    SENT = "sent"


class OutboxEvent(Document):
    name: str  # e.g. "ticket/created"
    key: str  # idempotency of emit: "ticket/created <ticket id>"
    data: dict[str, Any] = Field(default_factory=dict)
    status: EventStatus = EventStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claim: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None

    class Settings:
        name = "outbox_events"
        indexes = [
            IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="status_due"),
        ]
