"""GET /api/events: the live feed of ticket changes as server-sent events, each stream filtered for its viewer.

A stream starts with a `retry:` hint, then sends every visible event as it is stored (its outbox id as the
SSE `id`, so Last-Event-ID resumes after a reconnect), a comment line when nothing was sent for a while, and
`stream/closed` (no id) with the reason before it ends on purpose: the gateway stops, the token expired,
the account was deactivated or its role changed, or the client fell too far behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Depends, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from helpgate.accounts import sessions
from helpgate.api.deps import BearerToken, CurrentUser, Issuer
from helpgate.api.event_streams import EventStreams, StreamPolicy, Subscription
from helpgate.api.openapi import Responses, error
from helpgate.core.errors import NotAuthenticated
from helpgate.core.security import TokenIssuer
from helpgate.models import User
from helpgate.outbox import event_feed
from helpgate.outbox.event_feed import FeedEvent

router = APIRouter(prefix="/api/events", tags=["events"])

RETRY_MS = 3000  # how long an EventSource waits before it reconnects
CLOSED = "stream/closed"
REMEMBERED = 2000  # ids sent, so events read both on resuming and live are sent once


class FeedEventOut(BaseModel):
    """The JSON `data` of one event: which change, on which ticket, and the fields this viewer may see."""

    name: str = Field(examples=["ticket/created"])
    ticket_number: int | None = Field(description="null for user/created")
    data: dict[str, Any] = Field(examples=[{"automatic": False}])
    at: datetime


class ClosedOut(BaseModel):
    reason: str


EXAMPLE = (
    ": helpgate events\nretry: 3000\n\n"
    "event: ticket/created\n"
    'data: {"name":"ticket/created","ticket_number":42,"data":{"automatic":false},"at":"2026-11-27T09:30:00Z"}\n'
    "id: 6960a1c0e4b0c1a2b3c4d5e6\n\n"
    "event: ticket/updated\n"
    'data: {"name":"ticket/updated","ticket_number":42,"data":{"status":"solved"},"at":"2026-11-27T09:41:07Z"}\n'
    "id: 6960a463e4b0c1a2b3c4d5f1\n\n"
    ": heartbeat\n\n"
    "event: stream/closed\n"
    'data: {"reason":"the server is stopping"}\n\n'
)


def _as_json(documented: Responses) -> Responses:
    """Error answers with their schema on application/json: FastAPI puts a response `model` under the route's
    own media type, which here is text/event-stream."""
    for response in documented.values():
        response.pop("model", None)
        response["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/ErrorOut"}
    return documented


_TOO_MANY = error(
    429,
    "this account has HELPGATE_EVENTS_STREAMS_PER_USER streams open here already: close one first",
    detail="at most 5 event streams per account may be open at once; close one first",
)
del _TOO_MANY[429]["headers"]  # no Retry-After: a place frees up when a stream closes, not after a while
RESPONSES: Responses = {
    200: {
        "description": "A stream that stays open: each event's `data` is a FeedEventOut as JSON (see the example)",
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE}},
    },
    **_as_json(
        error(401, "no valid access token, or the account is deactivated")
        | error(422, "Last-Event-ID is not an event id from this stream")
        | _TOO_MANY
        | {
            503: {
                "description": "the server is stopping",
                "content": {"application/json": {"example": {"detail": "the server is stopping"}}},
            }
        }
    ),
}


def get_event_streams(request: Request) -> EventStreams:
    """`app.state.event_streams`, set by the gateway (which ends the streams when it stops); one with the
    default policy for an app run without a gateway."""
    streams: EventStreams | None = getattr(request.app.state, "event_streams", None)
    if streams is None:
        streams = request.app.state.event_streams = EventStreams()
    return streams


Streams = Annotated[EventStreams, Depends(get_event_streams)]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=100,
        description="The `id` of the last event received: the stream first sends what was stored after it",
    ),
]


@dataclass
class Stream:
    """One open stream: whose it is, how to check they may still see it, and where it resumes."""

    subscription: Subscription
    user: User
    token: str
    issuer: TokenIssuer
    policy: StreamPolicy
    resume: ObjectId | None
    _sent: dict[ObjectId, None] = field(default_factory=dict)  # in the order sent

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        """What was missed (with Last-Event-ID), then what is stored from now on, until the stream must end."""
        loop = asyncio.get_running_loop()
        check_at = loop.time() + self.policy.recheck_seconds
        beat_at = loop.time() + self.policy.heartbeat_seconds
        missed = event_feed.read_since(self.resume) if self.resume is not None else None
        while self.subscription.ended is None:
            if missed is not None:
                batch = await anext(missed, None)
                if batch is None:
                    missed = None
                    continue
            else:
                batch = await self.subscription.next(min(check_at, beat_at) - loop.time())
            shown = self._shown(batch)
            if shown or loop.time() >= check_at:
                reason = await self._reason_to_end()
                if reason is not None:
                    yield closing(reason)
                    return
                check_at = loop.time() + self.policy.recheck_seconds
            for visible in shown:
                yield ServerSentEvent(id=visible.id, event=visible.name, data=_out(visible))
            if shown or loop.time() >= beat_at:
                if not shown:
                    yield ServerSentEvent(comment="heartbeat")
                beat_at = loop.time() + self.policy.heartbeat_seconds
        yield closing(self.subscription.ended)

    def _shown(self, batch: list[FeedEvent]) -> list[event_feed.Visible]:
        shown = []
        for event in batch:
            visible = event_feed.view(event, self.user) if event.id not in self._sent else None
            if visible is not None:
                shown.append(visible)
                self._sent[event.id] = None
        while len(self._sent) > REMEMBERED:
            del self._sent[next(iter(self._sent))]
        return shown

    async def _reason_to_end(self) -> str | None:
        """Why the viewer may no longer stream: read again from the store, as on every request."""
        try:
            user = await sessions.authenticate(token=self.token, issuer=self.issuer)
        except NotAuthenticated:
            return "signed out: the token expired or the account was deactivated; sign in and reconnect"
        if user.role is not self.user.role:
            return "the account's role changed; reconnect"
        return None


def _out(visible: event_feed.Visible) -> FeedEventOut:
    return FeedEventOut(name=visible.name, ticket_number=visible.ticket_number, data=visible.data, at=visible.at)


def closing(reason: str) -> ServerSentEvent:
    return ServerSentEvent(event=CLOSED, data=ClosedOut(reason=reason))


async def open_stream(
    user: CurrentUser, token: BearerToken, issuer: Issuer, streams: Streams, last_event_id: LastEventId = None
) -> AsyncIterator[Stream]:
    """A place among the account's streams (429 past the bound), given back when the stream ends."""
    resume = event_feed.parse_event_id(last_event_id) if last_event_id is not None else None
    subscription = await streams.subscribe(str(user.id))
    try:
        assert token is not None  # CurrentUser had one
        yield Stream(subscription, user, token, issuer, streams.policy, resume)
    finally:
        streams.unsubscribe(subscription)


OpenStream = Annotated[Stream, Depends(open_stream)]


@router.get("", response_class=EventSourceResponse, responses=RESPONSES)
async def stream_events(stream: OpenStream) -> AsyncIterable[ServerSentEvent]:
    """Ticket changes as they happen, as server-sent events (send the Bearer token; the stream stays open).

    Agents and admins get every ticket event; customers only those of tickets they requested, without staff
    fields, internal notes, triage or assignment; `user/created` goes to admins only. Events:
    `ticket/created`, `ticket/message.received`, `ticket/replied`, `ticket/updated` (status, priority,
    category, assignee; customers: status only), `ticket/note.added`, `ticket/triaged`, `ticket/assigned`,
    `user/created`. Each has an `id`: reconnect with `Last-Event-ID` to get what was missed (an event may
    rarely come again: dedupe by id). A `: heartbeat` comment comes every HELPGATE_EVENTS_HEARTBEAT_SECONDS of
    silence. The account is checked again every HELPGATE_EVENTS_RECHECK_SECONDS and before each event: when
    the token has expired, or the account was deactivated or its role changed, `stream/closed` says so and
    the stream ends."""
    yield ServerSentEvent(comment="helpgate events", retry=RETRY_MS)
    async for event in stream.events():
        yield event
