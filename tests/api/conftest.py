"""What the API tests share: an admin's headers, and a check that no response leaks a secret."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from helpgate.models import Role
from tests.conftest import login, make_user


@pytest.fixture
async def admin(api: httpx.AsyncClient) -> dict[str, str]:
    await make_user("admin@example.com", Role.ADMIN)
    return await login(api, "admin@example.com")


@contextlib.contextmanager
def forbid_in_responses(api: httpx.AsyncClient, *secrets: str) -> Iterator[None]:
    """Fail any request made meanwhile whose response body contains one of `secrets`."""

    async def check(response: httpx.Response) -> None:
        body = (await response.aread()).decode(errors="replace")
        for secret in secrets:
            assert secret not in body, f"{response.request.method} {response.request.url} leaks {secret}"

    api.event_hooks["response"].append(check)
    try:
        yield
    finally:
        api.event_hooks["response"].remove(check)
