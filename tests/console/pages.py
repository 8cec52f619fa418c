"""What the console's tests share: a browser-like HTTP client that logs in with the form and keeps its
cookies, the CSRF token read from a page, and waiting for mail to become a ticket."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx

from helpgate.gateway import Gateway
from helpgate.models import Ticket
from helpgate.tickets import tickets
from tests.conftest import PASSWORD

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def base_url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.http_port}"


async def browser_client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending what a browser sends on same-origin requests (Sec-Fetch-Site), without following redirects."""
    headers = {"Sec-Fetch-Site": "same-origin"}
    async with httpx.AsyncClient(base_url=base_url(gateway), headers=headers, timeout=30) as client:
        yield client


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    response = await client.post("/login", data={"email": email, "password": password, "next": "/"})
    assert response.status_code == 303, response.text
    return response


async def post_form(client: httpx.AsyncClient, path: str, page: str, **fields: str) -> httpx.Response:
    """Post a form from `page` (read for its CSRF token), as the page's form would."""
    token = csrf_of(await client.get(page))
    return await client.post(path, data={"csrf": token, **fields})


async def ticket_numbered(number: int, timeout: float = 15.0) -> Ticket:
    """The ticket once the pipeline stored it (waits on the store, not on time)."""
    async with asyncio.timeout(timeout):
        while (ticket := await tickets.get_by_number(number)) is None:  # noqa: ASYNC110 - polls the store
            await asyncio.sleep(0.05)
    return ticket
