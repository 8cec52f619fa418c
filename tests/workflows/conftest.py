"""Fixtures of the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pymongo import monitoring

from tests.fake_inngest import FakeInngest, serving

READS = frozenset({"find", "aggregate", "getMore", "count", "distinct"})


@pytest.fixture
async def fake_inngest() -> AsyncIterator[FakeInngest]:
    fake = FakeInngest()
    async with serving(fake.app()) as url:
        fake.base_url = url
        yield fake


class Commands(monitoring.CommandListener):
    """The store commands sent while recording, as (command, collection)."""

    def __init__(self) -> None:
        self.recording = False
        self.seen: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            target = event.command.get(event.command_name)
            self.seen.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def writes(self, collection: str) -> list[str]:
        """The commands that wrote to `collection` (or may have: findAndModify), in order."""
        return [name for name, target in self.seen if target == collection and name not in READS]


@pytest.fixture(scope="session")
def listener() -> Commands:
    """One listener for the session: pymongo keeps registered listeners for the clients made afterwards (the
    `store` fixture makes its client per test, after this)."""
    commands = Commands()
    monitoring.register(commands)
    return commands


@pytest.fixture
def commands(listener: Commands) -> Iterator[Commands]:
    listener.seen.clear()
    yield listener
    listener.recording = False
