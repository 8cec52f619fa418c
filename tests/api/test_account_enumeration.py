"""Password reset and sign-up do the same work before answering, whether or not the address has an account
(issue 14, finding 11: a reset took 150-290 ms for an account, 9 ms for an unknown address). The store
commands each request makes before its answer are recorded by a pymongo CommandListener and compared; the
timings themselves are bench/account_timing.py's, never a test's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.models import OutboundMail, Role
from tests.conftest import make_user
from tests.store_commands import Commands

KNOWN, UNKNOWN = "jane@example.org", "nobody@example.org"


@pytest.fixture
async def raw_api(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client that does not wait for deferred work (unlike tests/conftest.py's `api`)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30) as client:
        yield client


async def _work(
    gateway: Gateway, api: httpx.AsyncClient, commands: Commands, path: str, email: str
) -> tuple[list[str], list[str]]:
    """The commands `path` made for `email` before answering, and those of the work it left for afterwards."""
    commands.seen.clear()
    commands.recording = True
    response = await api.post(path, json={"email": email})
    await gateway.deferred.idle()
    commands.recording = False
    assert response.status_code == 202, response.text
    before, after = (
        [f"{name} {collection}" for name, collection in commands.of(kind)] for kind in ("request", "deferred")
    )
    return before, after


@pytest.mark.parametrize("path", ["/api/auth/password-reset", "/api/auth/signup"])
async def test_the_answer_costs_the_same_for_any_address(
    commands: Commands, gateway: Gateway, raw_api: httpx.AsyncClient, path: str
) -> None:
    await make_user(KNOWN, Role.CUSTOMER)
    await _work(gateway, raw_api, commands, path, "warm-up@example.org")  # first use: connections, caches

    known, known_after = await _work(gateway, raw_api, commands, path, KNOWN)
    unknown, unknown_after = await _work(gateway, raw_api, commands, path, UNKNOWN)

    assert known == unknown
    assert not [command for command in known if "users" in command or "password_reset" in command]
    # The work that tells the addresses apart was done, after the answer.
    assert "find users" in known_after and "find users" in unknown_after
    assert await OutboundMail.find({"to": KNOWN}).count() == 1
    assert await OutboundMail.find({"to": UNKNOWN}).count() == (1 if path.endswith("signup") else 0)
