"""The console's live stream (GET /live): the API's event feed for the signed-in viewer, on the session
cookie (a browser's EventSource cannot send a Bearer token), turned into the events the pages listen for:
`tickets` (a queue refreshes its rows) and `ticket-<number>` (that ticket's page refreshes its thread).

Each page opens its own stream, and a browser moving from page to page opens the next before the server
learns the last one's page is gone: past HELPGATE_EVENTS_STREAMS_PER_USER, the account's oldest stream ends
to make room (a tab still showing it reconnects)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from helpgate.api.routes.events import CLOSED, RETRY_MS, FeedEventOut, Stream, Streams
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer, issuer_of, keep
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
        yield Stream(subscription, viewer.user, viewer.token, issuer_of(request), streams.policy, resume)
    finally:
        streams.unsubscribe(subscription)


@routes.get("/live", response_class=EventSourceResponse)
async def live(stream: Annotated[Stream, Depends(open_stream)]) -> AsyncIterable[ServerSentEvent]:
    yield ServerSentEvent(comment="helpgate console", retry=RETRY_MS)
    async for event in stream.events():
        if event.event == CLOSED or not isinstance(event.data, FeedEventOut):
            yield event
            continue
        number = event.data.ticket_number
        yield ServerSentEvent(event="tickets", raw_data=str(number or ""), id=event.id)
        if number is not None:
            yield ServerSentEvent(event=f"ticket-{number}", raw_data=event.data.name)
