"""Fixtures of the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fake_inngest import FakeInngest, serving


@pytest.fixture
async def fake_inngest() -> AsyncIterator[FakeInngest]:
    fake = FakeInngest()
    async with serving(fake.app()) as url:
        fake.base_url = url
        yield fake
