"""Who has a ticket open in the console, and who is writing a reply on it: the collision notice.

Presence is short-lived and kept in this process only: each open ticket page says it is there every
`HEARTBEAT` seconds (and when its reply or note box is typed in), and is forgotten `SEEN_FOR` seconds after it
last did. When someone arrives on a ticket or starts typing, the listeners hear the ticket's number at once
(the console's live streams, which tell the other pages of that ticket to look again). Agents served by
different instances of helpgate do not see each other here (docs/console.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from helpgate.models import User

VIEWING, TYPING = "viewing", "typing"
HEARTBEAT = 20.0  # seconds between a page's "still here"
SEEN_FOR = 45.0  # seconds a page is thought still there after it last said so
TYPING_FOR = 15.0  # seconds "writing a reply" lasts after the last keystroke reported


@dataclass
class Here:
    user_id: str
    name: str
    seen_until: float
    typing_until: float = 0.0

    def state(self, now: float) -> str:
        return TYPING if now < self.typing_until else VIEWING


@dataclass(frozen=True)
class Other:
    name: str
    state: str


class Presence:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[int, dict[str, Here]] = {}
        self._listeners: list[Callable[[int], None]] = []

    def touch(self, number: int, user: User, state: str) -> None:
        """`user` has ticket `number` open (and is typing, with TYPING); the listeners hear of an arrival or
        of typing that starts."""
        now = self._clock()
        self._forget_gone(now)
        people = self._tickets.setdefault(number, {})
        here = people.get(str(user.id))
        arrived = here is None
        if here is None:
            here = people[str(user.id)] = Here(user_id=str(user.id), name=user.name or user.email, seen_until=0.0)
        started_typing = state == TYPING and here.state(now) != TYPING
        here.seen_until = now + SEEN_FOR
        if state == TYPING:
            here.typing_until = now + TYPING_FOR
        if arrived or started_typing:
            for listener in list(self._listeners):
                listener(number)

    def others(self, number: int, user: User) -> list[Other]:
        """Who else has the ticket open, by name, with whether they are writing."""
        now = self._clock()
        self._forget_gone(now)
        people = self._tickets.get(number, {})
        return sorted(
            (Other(name=here.name, state=here.state(now)) for key, here in people.items() if key != str(user.id)),
            key=lambda other: other.name,
        )

    def listen(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call `listener(number)` on arrivals and typing; the function returned stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _forget_gone(self, now: float) -> None:
        for number in list(self._tickets):
            people = self._tickets[number]
            for key in [key for key, here in people.items() if here.seen_until <= now]:
                del people[key]
            if not people:
                del self._tickets[number]
