"""Bodies JSON can carry but a naive answer cannot echo are 422 in the documented form, with a short log line
(issue 14, finding 12): a lone surrogate, a value nested thousands deep, NaN."""

from __future__ import annotations

import logging

import httpx
import jsonschema_rs
import pytest

from helpgate.gateway import Gateway
from tests.api.test_routes_by_role import running_app

JSON = {"content-type": "application/json"}


def _nested(depth: int) -> bytes:
    return b'{"email": ' + b"[" * depth + b"]" * depth + b', "password": "x"}'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login", b'{"email": "\\ud800@x.y", "password": "x"}'),
        ("/api/auth/password-reset", b'{"email": "\\ud800@x.y"}'),
        ("/api/auth/signup", b'{"email": "jane@example.org", "name": "\\udfff", "\\ud800": 1}'),
        ("/api/auth/login", _nested(5_000)),
        ("/api/auth/login", _nested(100_000)),  # past the JSON parser's own recursion limit
        ("/api/auth/login", b'{"email": NaN, "password": Infinity}'),
    ],
    ids=["surrogate", "surrogate-reset", "surrogate-key", "nested-5000", "nested-100000", "nan"],
)
async def test_unencodable_bodies_are_422_in_the_documented_form(
    gateway: Gateway, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str, body: bytes
) -> None:
    caplog.set_level(logging.INFO)
    response = await api.post(path, content=body, headers=JSON)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    spec = running_app(gateway).openapi()
    validator = jsonschema_rs.Draft202012Validator(
        {"components": spec["components"], "$ref": "#/components/schemas/ErrorOut"}
    )
    answer = response.json()
    assert validator.is_valid(answer) and isinstance(answer["detail"], list) and answer["detail"], answer
    assert not [record for record in caplog.records if record.exc_info or len(record.getMessage()) > 300]
    [line] = [record.getMessage() for record in caplog.records if "api.invalid_request" in record.getMessage()]
    assert f"path={path}" in line


async def test_a_lone_surrogate_is_shown_replaced(gateway: Gateway, api: httpx.AsyncClient) -> None:
    response = await api.post("/api/auth/login", content=b'{"email": "\\ud800@x.y", "password": "x"}', headers=JSON)
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "email"] and problem["input"] == "\ufffd@x.y"
