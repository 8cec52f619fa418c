"""Ticket numbers in paths that no ticket can have: past int64 (BSON cannot carry them), or digits Python
reads but a URL should not carry (found by tests/api/test_fuzz_openapi.py). Never a 500."""

from __future__ import annotations

import httpx
import pytest

from helpgate.models import Role
from tests.conftest import login, make_user

TOO_BIG = str(2**63)  # one past the largest BSON int64
ROUTES = [
    ("GET", "/api/tickets/{}"),
    ("PATCH", "/api/tickets/{}"),
    ("POST", "/api/tickets/{}/replies"),
    ("POST", "/api/tickets/{}/notes"),
    ("POST", "/api/tickets/{}/messages"),
]
BODIES = {"PATCH": {"priority": "high"}, "POST": {"text": "Hello"}}


NUMBERS = [TOO_BIG, "81270321217080026810286080", "²", "1" * 5000]


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
async def test_an_impossible_ticket_number_is_refused_not_a_server_error(api: httpx.AsyncClient, role: Role) -> None:
    await make_user(f"{role}@example.com", role)
    headers = await login(api, f"{role}@example.com")
    for number in NUMBERS:
        for method, template in ROUTES:
            response = await api.request(method, template.format(number), json=BODIES.get(method), headers=headers)
            # 422: the path does not fit the schema; 403/404: a customer on a staff route, checked before the path
            assert response.status_code in (403, 404, 422), (method, number[:30], response.status_code, response.text)
            assert "detail" in response.json()
