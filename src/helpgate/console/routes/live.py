"""The console's live stream (GET /live): the API's event feed for the signed-in viewer, on the session
cookie (a browser's EventSource cannot send a Bearer token), turned into the events the pages listen for:
`tickets` (a queue refreshes its rows), `ticket-<number>` (that ticket's page refreshes its thread) and, for
agents and admins, `presence-<number>` (someone arrived on that ticket or started typing: its collision
notice asks again).

Each page opens its own stream, and a browser moving from page to page opens the next before the server
learns the last one's page is gone: past HELPGATE_EVENTS_STREAMS_PER_USER, the account's oldest stream ends
to make room (a tab still showing it reconnects)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from helpgate.api.deps import get_issuer
from helpgate.api.routes.events import CLOSED, RETRY_MS, FeedEventOut, Stream, Streams
from helpgate.console.routes.collisions import presence_of
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer, keep
from helpgate.outbox import event_feed

routes = router()


async def open_stream(
    request: Request,
    viewer: CurrentViewer,
    streams: Streams,
    response: Response,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> AsyncIterator[Stream]:
    """The viewer's place among the account's streams (taken before the answer starts, so a refusal is a
    status, not a broken stream), given back when the stream ends."""
    keep(response, request, viewer)  # a renewed session's cookies, on the stream's headers
    resume = event_feed.parse_event_id(last_event_id) if last_event_id is not None else None
    subscription = await streams.subscribe(str(viewer.user.id), replace_oldest=True)
    try:
        yield Stream(subscription, viewer.user, viewer.token, get_issuer(request), streams.policy, resume)
    finally:
        streams.unsubscribe(subscription)


def for_pages(event: ServerSentEvent) -> list[ServerSentEvent]:
    """What the pages listen for, from one event of the feed (closing and heartbeats pass as they are)."""
    if event.event == CLOSED or not isinstance(event.data, FeedEventOut):
        return [event]
    number = event.data.ticket_number
    shown = [ServerSentEvent(event="tickets", raw_data=str(number or ""), id=event.id)]
    if number is not None:
        shown.append(ServerSentEvent(event=f"ticket-{number}", raw_data=event.data.name))
    return shown


@routes.get("/live", response_class=EventSourceResponse)
async def live(request: Request, stream: Annotated[Stream, Depends(open_stream)]) -> AsyncIterable[ServerSentEvent]:
    """The feed's events and, for staff, presence news, in the order they come; ends when the feed's stream
    ends (its `stream/closed` last)."""
    queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in stream.events():
                for shown in for_pages(event):
                    queue.put_nowait(shown)
        finally:
            queue.put_nowait(None)

    def arrived(number: int) -> None:
        queue.put_nowait(ServerSentEvent(event=f"presence-{number}", raw_data=str(number)))

    stop_listening = presence_of(request).listen(arrived) if stream.user.is_staff else (lambda: None)
    feed = asyncio.create_task(pump(), name="console-live")
    try:
        yield ServerSentEvent(comment="helpgate console", retry=RETRY_MS)
        while (event := await queue.get()) is not None:
            yield event
    finally:
        stop_listening()
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
