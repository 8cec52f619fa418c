"""The event streams one gateway serves (GET /api/events): one reader of the feed shared by all of them, a
bound on streams per account, and an end to every stream when the gateway stops.

The reader (event_feed.Tail) runs while any stream is open. It reads the outbox when a service of this process
emits (events.on_emit) and every `poll_seconds` for what other instances store, and hands each new event to
every subscription; each stream then keeps what its viewer may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from helpgate.core.errors import HelpgateError
from helpgate.core.settings import Settings
from helpgate.outbox import event_feed, events
from helpgate.outbox.event_feed import FeedEvent

log = logging.getLogger(__name__)

STOPPING = "the server is stopping"
BEHIND = "the stream fell too far behind; reconnect with Last-Event-ID"
REPLACED = "a newer stream of this account took its place"


class TooManyStreams(HelpgateError):
    http_status = 429


class StreamsClosed(HelpgateError):
    http_status = 503


@dataclass(frozen=True)
class StreamPolicy:
    """HELPGATE_EVENTS_*: see Settings."""

    poll_seconds: float = 1.5
    heartbeat_seconds: float = 15.0
    recheck_seconds: float = 30.0
    per_user: int = 5
    backlog: int = 1000  # events waiting for one stream; past it the stream ends and the client resumes

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamPolicy:
        return cls(
            poll_seconds=settings.events_poll_seconds,
            heartbeat_seconds=settings.events_heartbeat_seconds,
            recheck_seconds=settings.events_recheck_seconds,
            per_user=settings.events_streams_per_user,
        )


class Subscription:
    """One stream's place at the hub: the events read since it subscribed, and why it must end, if it must."""

    def __init__(self, user_id: str, backlog: int) -> None:
        self.user_id = user_id
        self.ended: str | None = None
        self._backlog = backlog
        self._waiting: deque[FeedEvent] = deque()
        self._ready = asyncio.Event()

    def offer(self, batch: list[FeedEvent]) -> None:
        if len(self._waiting) + len(batch) > self._backlog:
            self.end(BEHIND)
            return
        self._waiting.extend(batch)
        if batch:
            self._ready.set()

    def end(self, reason: str) -> None:
        self.ended = self.ended or reason
        self._ready.set()

    async def next(self, timeout: float) -> list[FeedEvent]:
        """The events waiting (an empty list after `timeout` seconds without any, or once ended)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), max(0.0, timeout))
        self._ready.clear()
        batch = list(self._waiting)
        self._waiting.clear()
        return batch


class EventStreams:
    def __init__(self, policy: StreamPolicy | None = None) -> None:
        self.policy = policy or StreamPolicy()
        self._subscriptions: dict[Subscription, None] = {}  # oldest first
        self._per_user: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def open_streams(self) -> int:
        return len(self._subscriptions)

    async def subscribe(self, user_id: str, *, replace_oldest: bool = False) -> Subscription:
        """A place for one more stream of this account; past the bound, TooManyStreams, or with `replace_oldest`
        the account's oldest stream ends (REPLACED) to make room: a browser moving from page to page opens a
        stream per page before the server learns the last one's page is gone. Once this returns, every event
        stored afterwards reaches the subscription."""
        if self._closed:
            raise StreamsClosed(STOPPING)
        if replace_oldest and self._per_user[user_id] >= self.policy.per_user:
            oldest = next(each for each in self._subscriptions if each.user_id == user_id)
            oldest.end(REPLACED)
            self.unsubscribe(oldest)
        if self._per_user[user_id] >= self.policy.per_user:
            log.info("events.stream_refused user=%s reason=limit open=%d", user_id, self._per_user[user_id])
            raise TooManyStreams(
                f"at most {self.policy.per_user} event streams per account may be open at once; close one first"
            )
        subscription = Subscription(user_id, self.policy.backlog)
        self._per_user[user_id] += 1
        self._subscriptions[subscription] = None
        try:
            async with self._lock:
                if self._reader is None or self._reader.done():
                    tail = event_feed.Tail()
                    await tail.read()  # takes note of what is stored already
                    self._unsubscribe = events.on_emit(self._wake.set)
                    self._reader = asyncio.create_task(self._read(tail), name="event-streams")
        except BaseException:
            self.unsubscribe(subscription)
            raise
        log.info("events.stream_opened user=%s open=%d", user_id, len(self._subscriptions))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            return
        del self._subscriptions[subscription]
        self._per_user[subscription.user_id] -= 1
        if self._per_user[subscription.user_id] <= 0:
            del self._per_user[subscription.user_id]
        log.info("events.stream_closed user=%s reason=%s", subscription.user_id, subscription.ended or "client left")
        if not self._subscriptions:
            self._stop_reader()

    async def close(self) -> None:
        """End every stream (each sends its closing event and returns) and refuse new ones."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.end(STOPPING)
        reader = self._stop_reader()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def _stop_reader(self) -> asyncio.Task[None] | None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        return reader

    async def _read(self, tail: event_feed.Tail) -> None:
        while True:
            self._wake.clear()
            try:
                batch = await tail.read()
            except Exception as error:  # the store is away: streams wait, the next pass tries again
                log.warning("events.read_failed %s: %s", type(error).__name__, error)
                batch = []
            if batch:
                for subscription in list(self._subscriptions):
                    subscription.offer(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)
