"""Suppression lookups are reused for a few seconds: a change through this process is seen at once, one made
through another instance (here: written to the store directly) once the reuse ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.mail_out import suppressions
from helpgate.models import Suppression

Store = AsyncMongoClient[dict[str, Any]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    monkeypatch.setattr(suppressions, "_clock", clock)
    yield clock


async def test_a_lookup_is_reused_until_a_change_here_or_the_time_is_up(store: Store, clock: Clock) -> None:
    assert await suppressions.reasons(["Ann@Acme.test"]) == {}
    # Another instance suppresses it: not seen while the lookup is reused...
    await Suppression(address="ann@acme.test", reason="bounced", created_at=utcnow()).insert()
    clock.now += suppressions.RECENT_SECONDS - 0.1
    assert await suppressions.reasons(["ann@acme.test"]) == {}
    # ...and seen once it is no longer.
    clock.now += 0.2
    assert await suppressions.reasons(["ann@acme.test"]) == {"ann@acme.test": "bounced"}

    # Through this process: at once, both ways.
    assert await suppressions.lift(actor="test", address="ann@acme.test")
    assert await suppressions.reasons(["ann@acme.test"]) == {}
    await suppressions.suppress(address="ANN@acme.test", reason="bounced again")
    assert await suppressions.reasons(["ann@acme.test", "bob@acme.test"]) == {"ann@acme.test": "bounced again"}


async def test_lookups_kept_are_bounded(store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suppressions, "KEPT_LIMIT", 3)
    monkeypatch.setattr(suppressions, "_looked_up", {})
    await suppressions.reasons(["a@x.test", "b@x.test"])
    clock.now += suppressions.RECENT_SECONDS
    await suppressions.reasons(["c@x.test", "d@x.test"])  # the stale two make room
    assert len(suppressions._looked_up) == 2
    await suppressions.reasons(["e@x.test", "f@x.test"])  # none stale: all go
    assert len(suppressions._looked_up) == 2
