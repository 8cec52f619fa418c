"""Login, refresh and token checks over real HTTP."""

from __future__ import annotations

import warnings
from datetime import timedelta

import httpx
import jwt
import pytest

from helpgate.core.models import Role, User
from helpgate.core.models.clock import utcnow
from helpgate.core.security import TokenIssuer
from helpgate.gateway import Gateway
from tests.conftest import JWT_SECRET, PASSWORD, login, make_user

Api = httpx.AsyncClient


def _issuer(**overrides: object) -> TokenIssuer:
    values: dict[str, object] = {
        "secret": JWT_SECRET,
        "issuer": "helpgate",
        "audience": "helpgate-api",
        "access_ttl": timedelta(minutes=15),
        **overrides,
    }
    return TokenIssuer(**values)  # type: ignore[arg-type]


async def test_login_returns_bearer_pair(gateway: Gateway, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    response = await api.post("/api/auth/login", json={"email": "Agent@Example.com", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type"}
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="helpgate-api")
    assert {"sub", "exp", "iat", "iss", "aud", "jti"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert "role" not in claims


@pytest.mark.parametrize(
    ("email", "password"),
    [("agent@example.com", "wrong-password"), ("nobody@example.com", PASSWORD), ("customer@example.com", "")],
)
async def test_bad_credentials_are_401(gateway: Gateway, api: Api, email: str, password: str) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await make_user("customer@example.com", Role.CUSTOMER, password=None)
    response = await api.post("/api/auth/login", json={"email": email, "password": password or "x"})
    assert response.status_code == 401
    assert response.json() == {"detail": "incorrect email or password"}


async def test_login_input_is_validated(gateway: Gateway, api: Api) -> None:
    for body in ({}, {"email": "a@b.c"}, {"email": "a@b.c", "password": "x", "role": "admin"}, {"email": 5}):
        response = await api.post("/api/auth/login", json=body)
        assert response.status_code == 422, body
    response = await api.post("/api/auth/login", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def _same_secret_other_algorithm() -> str:
    """Valid claims signed with our secret, but HS512: the decoder pins HS256."""
    claims = {"sub": "000000000000000000000000", "iss": "helpgate", "aud": "helpgate-api", "jti": "x", "typ": "access"}
    now = int(utcnow().timestamp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the key is short for HS512, which is beside the point
        return jwt.encode({**claims, "iat": now, "exp": now + 60}, JWT_SECRET, algorithm="HS512")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        _issuer(secret="another-secret-of-at-least-32-bytes!").issue_access("000000000000000000000000", utcnow()),
        _issuer(audience="elsewhere").issue_access("000000000000000000000000", utcnow()),
        _issuer(access_ttl=timedelta(seconds=-1)).issue_access("000000000000000000000000", utcnow()),
        _same_secret_other_algorithm(),
        jwt.encode({"sub": "x"}, key="", algorithm="none"),
    ],
    ids=["garbage", "other-secret", "other-audience", "expired", "hs512", "alg-none"],
)
async def test_bad_tokens_are_401(gateway: Gateway, api: Api, token: str) -> None:
    response = await api.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] in {"invalid token", "token expired"}


async def test_expired_token_says_so(gateway: Gateway, api: Api) -> None:
    user = await make_user("agent@example.com", Role.AGENT)
    token = _issuer().issue_access(str(user.id), utcnow() - timedelta(hours=1))
    response = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json() == {"detail": "token expired"}


async def test_role_is_read_from_the_store_on_each_request(gateway: Gateway, api: Api) -> None:
    user = await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    assert (await api.get("/api/auth/me", headers=headers)).json()["role"] == "agent"

    user.role = Role.CUSTOMER
    await user.save()
    assert (await api.get("/api/auth/me", headers=headers)).json()["role"] == "customer"

    user.active = False
    await user.save()
    response = await api.get("/api/tickets", headers=headers)
    assert response.status_code == 401


async def test_no_password_hash_in_responses(gateway: Gateway, api: Api) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    login_response = await api.post("/api/auth/login", json={"email": "admin@example.com", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login_response.json()['access_token']}"}
    me = await api.get("/api/auth/me", headers=headers)
    stored = await User.find_one({"email": "admin@example.com"})
    assert stored is not None and stored.password_hash
    for response in (login_response, me):
        assert "password" not in response.text and stored.password_hash not in response.text
        assert "$argon2" not in response.text


async def test_refresh_rotates_and_reuse_revokes_family(gateway: Gateway, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    first = (await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})).json()

    second = await api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]

    replay = await api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The replay revoked the whole family, including the token rotated from it.
    after = await api.post("/api/auth/refresh", json={"refresh_token": rotated})
    assert after.status_code == 401
