"""Request bodies over their route's limit are refused with 413 before the app holds them; replies may carry
their attachments."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from helpgate.models import Role, Ticket
from tests.conftest import login, make_user

SMALL = {"max_request_bytes": 64 * 1024, "max_reply_attachment_bytes": 256 * 1024}


async def _chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """A JSON object of about `total` bytes, sent without a Content-Length (chunked)."""
    yield b'{"subject": "big", "text": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


async def test_a_10_mb_json_body_is_413_with_the_limit_named(gateway: object, api: httpx.AsyncClient) -> None:
    body = json.dumps({"email": "a@example.com", "password": "p" * (10 * 1024 * 1024)})
    response = await api.post("/api/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 1048576 bytes"}


@pytest.mark.parametrize("settings_overrides", [SMALL])
async def test_a_chunked_body_is_cut_off_once_over_the_limit(gateway: object, api: httpx.AsyncClient) -> None:
    await make_user("agent@example.com", Role.AGENT)
    headers = {**await login(api, "agent@example.com"), "Content-Type": "application/json"}
    response = await api.post("/api/tickets", content=_chunks(1024 * 1024), headers=headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 65536 bytes"}
    assert await Ticket.count() == 0
    assert (await api.get("/api/tickets", headers=headers)).status_code == 200  # the server goes on


@pytest.mark.parametrize("settings_overrides", [SMALL])
async def test_a_reply_may_carry_its_attachments_past_the_ordinary_limit(
    gateway: object, api: httpx.AsyncClient
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    opened = await api.post(
        "/api/tickets", json={"subject": "S", "text": "T", "requester": "c@example.com"}, headers=headers
    )
    assert opened.status_code == 201, opened.text
    number = opened.json()["number"]
    file = base64.b64encode(b"%PDF" * (50 * 1024)).decode()  # 200 KiB, 273 KiB as base64
    attachments = [{"filename": "manual.pdf", "content_type": "application/pdf", "content_base64": file}]
    reply = await api.post(
        f"/api/tickets/{number}/replies", json={"text": "Here it is.", "attachments": attachments}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    too_big = await api.post(
        f"/api/tickets/{number}/notes", json={"text": "x" * (100 * 1024)}, headers=headers
    )  # a note carries no attachments: the ordinary limit
    assert too_big.status_code == 413
