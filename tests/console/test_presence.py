"""Who has a ticket open, on an injected clock: arrivals and typing are heard at once, and a page that stops
saying it is there is forgotten."""

from __future__ import annotations

from helpgate.console.presence import SEEN_FOR, TYPING, TYPING_FOR, VIEWING, Other, Presence
from helpgate.models import Role, User


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def person(email: str, name: str = "") -> User:
    user: User = User.model_construct(id=email, email=email, name=name, role=Role.AGENT)  # never stored
    return user


def test_arrivals_and_typing_are_heard_and_the_gone_forgotten() -> None:
    clock = Clock()
    presence = Presence(clock)
    heard: list[int] = []
    stop = presence.listen(heard.append)
    ann, bob = person("ann@example.com", "Ann"), person("bob@example.com")

    presence.touch(7, ann, VIEWING)
    presence.touch(7, bob, VIEWING)
    presence.touch(7, bob, VIEWING)  # still there: nothing new to tell
    assert heard == [7, 7]
    assert presence.others(7, ann) == [Other(name="bob@example.com", state=VIEWING)]
    assert presence.others(8, ann) == []

    presence.touch(7, bob, TYPING)
    presence.touch(7, bob, TYPING)  # still typing
    presence.touch(7, bob, VIEWING)  # the page's heartbeat does not stop the typing
    assert heard == [7, 7, 7]
    assert presence.others(7, ann) == [Other(name="bob@example.com", state=TYPING)]
    clock.now += TYPING_FOR
    assert presence.others(7, ann) == [Other(name="bob@example.com", state=VIEWING)]

    clock.now += SEEN_FOR - TYPING_FOR - 1
    presence.touch(7, ann, VIEWING)
    clock.now += 1  # bob last said he was there SEEN_FOR ago
    assert presence.others(7, ann) == []
    assert presence.others(7, bob) == [Other(name="Ann", state=VIEWING)]
    stop()
    presence.touch(9, bob, VIEWING)
    assert heard == [7, 7, 7]
