"""Accounts and sessions over real HTTP: sign-up, login (and its limits), refresh, logout, passwords, tokens."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from helpgate.accounts import account_codes, sessions, users
from helpgate.core.clock import utcnow
from helpgate.core.errors import ConfigurationError
from helpgate.core.security import TokenIssuer
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import OutboundMail, PasswordResetToken, Role, User
from tests.conftest import JWT_SECRET, PASSWORD, login, make_user
from tests.mail import make_mail, send

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


async def test_a_deleted_users_tokens_are_401(gateway: Gateway, api: Api) -> None:
    user = await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")
    refresh = (await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})).json()
    await user.delete()
    response = await api.get("/api/auth/me", headers=headers)
    assert response.status_code == 401 and response.json() == {"detail": "invalid token"}
    again = await api.post("/api/auth/refresh", json={"refresh_token": refresh["refresh_token"]})
    assert again.status_code == 401


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
    # The replay revoked the whole family, including the token rotated from it, and voided the access tokens
    # issued with them: one of them is in a thief's hands.
    after = await api.post("/api/auth/refresh", json={"refresh_token": rotated})
    assert after.status_code == 401
    for access in (first["access_token"], second.json()["access_token"]):
        me = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 401 and me.json()["detail"] == "session ended; log in again"


# --- the account rules, sign-up, the OAuth2 form ---------------------------------------------------------

NEW_PASSWORD = "another long passphrase"


@pytest.fixture
def policy(gateway: Gateway) -> sessions.AuthPolicy:
    """The gateway's account rules from its Settings, on its app (unless the gateway set them already)."""
    assert gateway._http is not None
    app = gateway._http.config.app
    assert isinstance(app, FastAPI)
    state = app.state
    if getattr(state, "auth_policy", None) is None:
        state.auth_policy = sessions.AuthPolicy.from_settings(gateway.settings)
    current: sessions.AuthPolicy = state.auth_policy
    return current


async def _signup(api: Api, email: str, **extra: str) -> httpx.Response:
    response = await api.post("/api/auth/signup", json={"email": email, **extra})
    assert response.status_code == 202, response.text
    return response


async def _confirm(api: Api, email: str, password: str = NEW_PASSWORD) -> httpx.Response:
    token = await _reset_token(email)
    return await api.post("/api/auth/password-reset/confirm", json={"token": token, "password": password})


async def test_signup_mails_a_code_and_the_account_waits_for_it(policy: sessions.AuthPolicy, api: Api) -> None:
    await _signup(api, "Jane@Example.org", name="Jane")
    stored = await users.get_by_email("jane@example.org")
    # The name waits for the code to be confirmed (issue 14, finding 8).
    assert stored is not None and (stored.role, stored.name, stored.password_hash) == (Role.CUSTOMER, "", None)
    mail = await OutboundMail.find_one({"template": "password_reset", "to": "jane@example.org"})
    assert mail is not None and mail.automatic
    assert "confirm your address and choose a password" in mail.text
    token = await _reset_token("jane@example.org")
    assert await PasswordResetToken.find({"user_id": stored.id, "used_at": None}).count() == 1

    for password in (NEW_PASSWORD, PASSWORD):  # no password until the code is confirmed
        response = await api.post("/api/auth/login", json={"email": "jane@example.org", "password": password})
        assert response.status_code == 401
    confirm = await api.post("/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert confirm.status_code == 204, confirm.text
    me = (await api.get("/api/auth/me", headers=await login(api, "jane@example.org", NEW_PASSWORD))).json()
    assert (me["email"], me["role"], me["name"]) == ("jane@example.org", "customer", "Jane")


async def test_signup_answers_alike_for_new_and_existing_addresses(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("jane@example.org", Role.CUSTOMER)
    existing = await _signup(api, "jane@example.org", name="Someone Else")
    new = await _signup(api, "bob@example.org")
    assert existing.json() == new.json()
    assert existing.headers.get("content-length") == new.headers.get("content-length")
    # The existing account keeps its name and password until its owner confirms the mailed code.
    await login(api, "jane@example.org")
    stored = await users.get_by_email("jane@example.org")
    assert stored is not None and stored.name == ""
    await _reset_token("jane@example.org")
    await _reset_token("bob@example.org")
    assert await User.find_all().count() == 2


async def test_customer_from_mail_claims_the_account_by_signing_up(gateway: Gateway, api: Api) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender="jane@example.org"), sender="jane@example.org")
    await gateway.worker.idle()
    await _signup(api, "jane@example.org")
    assert (await _confirm(api, "jane@example.org")).status_code == 204
    tickets = (await api.get("/api/tickets", headers=await login(api, "jane@example.org", NEW_PASSWORD))).json()
    assert [ticket["subject"] for ticket in tickets["items"]] == ["Printer on fire"]


async def test_staff_signing_up_get_a_reset_mail(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await _signup(api, "agent@example.com")
    mail = await OutboundMail.find_one({"template": "password_reset", "to": "agent@example.com"})
    assert mail is not None and "reset the password" in mail.text and mail.subject.startswith("Reset your password")
    stored = await users.get_by_email("agent@example.com")
    assert stored is not None and stored.role is Role.AGENT
    await login(api, "agent@example.com")


async def test_signup_shares_the_reset_mail_limit(policy: sessions.AuthPolicy, api: Api) -> None:
    for _ in range(account_codes.RESET_MAILS_PER_ACCOUNT.count):
        await _signup(api, "jane@example.org")
    assert (await api.post("/api/auth/password-reset", json={"email": "jane@example.org"})).status_code == 202
    sent = await OutboundMail.find({"template": "password_reset"}).count()
    assert sent == account_codes.RESET_MAILS_PER_ACCOUNT.count


async def test_signup_input_is_validated(policy: sessions.AuthPolicy, api: Api) -> None:
    for body in (
        {},
        {"email": "a@example.org", "password": NEW_PASSWORD},  # the password comes with the mailed code
        {"email": "a@example.org", "role": "admin"},
        {"email": {"$ne": None}},
        {"email": "not an address"},
    ):
        response = await api.post("/api/auth/signup", json=body)
        assert response.status_code == 422, body
    assert await User.find_all().count() == 0
    assert await OutboundMail.find_all().count() == 0


LURE = "URGENT: your account is locked, verify at http://evil.example/login"


@pytest.mark.parametrize(
    "name",
    [
        "Jane\nURGENT: your account is locked, verify at http://evil.example/login",
        "Jane\r\nBcc: everyone@example.org",
        "Jane\u2028URGENT",
        "Jane\x85URGENT",
        "Jane\u202egro.elpmaxe",
        "x" * 101,
    ],
    ids=["lf", "crlf", "line-separator", "nel", "bidi-override", "101-chars"],
)
async def test_signup_name_is_one_bounded_line(policy: sessions.AuthPolicy, api: Api, name: str) -> None:
    """Issue 14, finding 8: a multi-line name went into the sign-up mail, mailed from our address to any address."""
    response = await api.post("/api/auth/signup", json={"email": "victim@example.org", "name": name})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert await User.find_all().count() == 0
    assert await OutboundMail.find_all().count() == 0


async def test_signup_name_reaches_no_mail_before_the_address_is_confirmed(
    policy: sessions.AuthPolicy, api: Api
) -> None:
    await _signup(api, "victim@example.org", name=LURE)
    assert (await api.post("/api/auth/password-reset", json={"email": "victim@example.org"})).status_code == 202
    mails = await OutboundMail.find({"to": "victim@example.org"}).to_list()
    assert len(mails) == 2  # the sign-up code, then a reset code: neither greets by the name given
    for mail in mails:
        assert "evil.example" not in mail.text and "evil.example" not in mail.html and "URGENT" not in mail.subject
        assert mail.text.startswith("Hello,")
    stored = await users.get_by_email("victim@example.org")
    assert stored is not None and stored.name == ""

    assert (await _confirm(api, "victim@example.org")).status_code == 204
    named = await users.get_by_email("victim@example.org")
    assert named is not None and named.name == LURE  # the address's owner chose to confirm it


async def test_signup_name_never_renames_an_existing_account(policy: sessions.AuthPolicy, api: Api) -> None:
    await users.create(actor=None, email="jane@example.org", role=Role.CUSTOMER, name="Jane Doe")
    await _signup(api, "jane@example.org", name="Someone Else")
    assert (await _confirm(api, "jane@example.org")).status_code == 204
    stored = await users.get_by_email("jane@example.org")
    assert stored is not None and stored.name == "Jane Doe"


@pytest.mark.parametrize("settings_overrides", [{"allow_signup": False}])
async def test_signup_can_be_turned_off(policy: sessions.AuthPolicy, api: Api) -> None:
    response = await api.post("/api/auth/signup", json={"email": "jane@example.org"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert "turned off" in response.json()["detail"]
    assert await users.get_by_email("jane@example.org") is None
    assert await OutboundMail.find_all().count() == 0


async def test_signups_are_limited_per_client_address(policy: sessions.AuthPolicy, api: Api) -> None:
    for number in range(account_codes.SIGNUPS_PER_IP.count):
        await _signup(api, f"new-{number}@example.org")
    response = await api.post("/api/auth/signup", json={"email": "one-more@example.org"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert await users.get_by_email("one-more@example.org") is None


@pytest.mark.parametrize(
    "password",
    [
        "short",
        "aaaaaaaaaaaa",
        "abababababab",
        "1234567890",
        "abcdefghijkl",
        "qwertyuiop",
        "P@ssw0rd2024!",
        "jane.doe1234",
    ],
)
async def test_weak_passwords_are_422_at_confirm(policy: sessions.AuthPolicy, api: Api, password: str) -> None:
    await _signup(api, "jane.doe@example.org")
    response = await _confirm(api, "jane.doe@example.org", password)
    assert response.status_code == 422
    assert "password" in response.json()["detail"]
    assert (await _confirm(api, "jane.doe@example.org")).status_code == 204  # the code was not spent


async def test_oauth2_form_logs_in_and_docs_use_it(gateway: Gateway, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    form = {"grant_type": "password", "username": "agent@example.com", "password": PASSWORD, "scope": ""}
    response = await api.post("/api/auth/token", data=form)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    me = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["email"] == "agent@example.com"

    wrong = await api.post("/api/auth/token", data={**form, "password": "wrong-password"})
    assert wrong.status_code == 401
    as_json = await api.post("/api/auth/token", json=form)
    assert as_json.status_code == 422
    assert (await api.post("/api/auth/token", data={"username": "agent@example.com"})).status_code == 422
    assert (await api.post("/api/auth/token", data={**form, "grant_type": "client_credentials"})).status_code == 422

    schema = (await api.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert [scheme["flows"]["password"]["tokenUrl"] for scheme in schemes.values()] == ["/api/auth/token"]
    assert "application/x-www-form-urlencoded" in schema["paths"]["/api/auth/token"]["post"]["requestBody"]["content"]
    assert schema["paths"]["/api/auth/me"]["get"]["security"]
    assert (await api.get("/docs")).status_code == 200


# --- sessions end ----------------------------------------------------------------------------------------


async def test_logout_ends_the_session(gateway: Gateway, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    first = (await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})).json()
    other = (await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})).json()
    rotated = (await api.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()

    def bearer(pair: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {pair['access_token']}"}

    assert (await api.get("/api/auth/me", headers=bearer(first))).status_code == 200
    response = await api.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204 and not response.content
    for token in (rotated["refresh_token"], first["refresh_token"]):
        assert (await api.post("/api/auth/refresh", json={"refresh_token": token})).status_code == 401
    # The session's access tokens end with it, not when they expire.
    for pair in (first, rotated):
        me = await api.get("/api/auth/me", headers=bearer(pair))
        assert me.status_code == 401 and me.json()["detail"] == "session ended; log in again"
    # Another session of the same account goes on.
    assert (await api.get("/api/auth/me", headers=bearer(other))).status_code == 200
    assert (await api.post("/api/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200
    # Logging out twice, or with a token we never issued, is no error.
    assert (await api.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]})).status_code == 204
    assert (await api.post("/api/auth/logout", json={"refresh_token": "never-issued"})).status_code == 204


async def test_ended_sessions_are_forgotten_once_their_tokens_have_expired(gateway: Gateway) -> None:
    user = await make_user("agent@example.com", Role.AGENT)
    assert user.id is not None
    now = utcnow()
    await users.end_session(user.id, "first", until=now + timedelta(minutes=15), now=now)
    await users.end_session(user.id, "second", until=now + timedelta(minutes=20), now=now + timedelta(minutes=5))
    stored = await User.get(user.id)
    assert stored is not None and set(stored.ended_sessions) == {"first", "second"}
    await users.end_session(user.id, "third", until=now + timedelta(minutes=31), now=now + timedelta(minutes=16))
    stored = await User.get(user.id)
    assert stored is not None and set(stored.ended_sessions) == {"second", "third"}


async def test_password_change_ends_other_sessions(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    elsewhere = (await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})).json()
    headers = await login(api, "agent@example.com")

    wrong = {"current_password": "wrong-password", "new_password": NEW_PASSWORD}
    assert (await api.post("/api/auth/password", json=wrong, headers=headers)).status_code == 422
    weak = {"current_password": PASSWORD, "new_password": "1234567890"}
    assert (await api.post("/api/auth/password", json=weak, headers=headers)).status_code == 422
    same = {"current_password": PASSWORD, "new_password": PASSWORD}
    assert (await api.post("/api/auth/password", json=same, headers=headers)).status_code == 422

    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = await api.post("/api/auth/password", json=body, headers=headers)
    assert response.status_code == 200, response.text
    refreshed = await api.post("/api/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert refreshed.status_code == 401
    for access in (elsewhere["access_token"], headers["Authorization"].removeprefix("Bearer ")):
        stale = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"})
        assert stale.status_code == 401 and stale.json() == {"detail": "session ended; log in again"}
    fresh = {"Authorization": f"Bearer {response.json()['access_token']}"}  # issued with the change: valid
    assert (await api.get("/api/auth/me", headers=fresh)).status_code == 200
    assert (await api.post("/api/auth/refresh", json={"refresh_token": response.json()["refresh_token"]})).is_success
    old = await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})
    assert old.status_code == 401
    await login(api, "agent@example.com", NEW_PASSWORD)
    assert (await api.post("/api/auth/password", json=body)).status_code == 401


# --- password reset --------------------------------------------------------------------------------------


async def _reset_token(email: str) -> str:
    """The token in the newest reset mail queued for `email`."""
    mails = await OutboundMail.find({"template": "password_reset", "to": email}).sort("-created_at").to_list()
    assert mails, f"no reset mail to {email}"
    found = re.search(r"^ {4}(\S+)$", mails[0].text, re.MULTILINE)
    assert found is not None, mails[0].text
    return found.group(1)


async def test_reset_by_mailed_token_once(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("jane@example.org", Role.CUSTOMER, password=None)  # a customer from mail sets a password
    stranger = await api.post("/api/auth/password-reset", json={"email": "nobody@example.org"})
    response = await api.post("/api/auth/password-reset", json={"email": "Jane@Example.org"})
    assert response.status_code == stranger.status_code == 202
    assert response.json() == stranger.json()  # the same answer: no account enumeration
    assert await OutboundMail.find({"to": "nobody@example.org"}).count() == 0
    mail = await OutboundMail.find_one({"template": "password_reset"})
    assert mail is not None and mail.automatic and mail.to == ["jane@example.org"]
    token = await _reset_token("jane@example.org")
    stored = await PasswordResetToken.find_one({})
    assert stored is not None and token not in stored.model_dump_json()  # only its hash is kept

    confirm = await api.post("/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert confirm.status_code == 204, confirm.text
    await login(api, "jane@example.org", NEW_PASSWORD)
    again = await api.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "yet another passphrase"}
    )
    assert again.status_code == 400
    assert again.json() == {"detail": "invalid or expired reset token"}
    await login(api, "jane@example.org", NEW_PASSWORD)


async def test_reset_ends_sessions_and_voids_older_tokens(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("jane@example.org", Role.CUSTOMER)
    session = (await api.post("/api/auth/login", json={"email": "jane@example.org", "password": PASSWORD})).json()
    await api.post("/api/auth/password-reset", json={"email": "jane@example.org"})
    older = await _reset_token("jane@example.org")
    await api.post("/api/auth/password-reset", json={"email": "jane@example.org"})
    newer = await _reset_token("jane@example.org")
    assert newer != older

    body = {"token": older, "password": NEW_PASSWORD}
    assert (await api.post("/api/auth/password-reset/confirm", json=body)).status_code == 400
    weak = {"token": newer, "password": "aaaaaaaaaaaa"}
    assert (await api.post("/api/auth/password-reset/confirm", json=weak)).status_code == 422  # token not spent
    assert (await api.post("/api/auth/password-reset/confirm", json={**body, "token": newer})).status_code == 204
    assert (await api.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})).status_code == 401
    stale = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert stale.status_code == 401


async def test_reset_token_expires(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("jane@example.org", Role.CUSTOMER)
    await api.post("/api/auth/password-reset", json={"email": "jane@example.org"})
    token = await _reset_token("jane@example.org")
    stored = await PasswordResetToken.find_one({})
    assert stored is not None
    assert stored.expires_at - stored.created_at == timedelta(minutes=30)
    await PasswordResetToken.get_pymongo_collection().update_one(
        {"_id": stored.id}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    response = await api.post("/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 400
    await login(api, "jane@example.org")


async def test_reset_mails_are_limited_per_account(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("jane@example.org", Role.CUSTOMER)
    for _ in range(account_codes.RESET_MAILS_PER_ACCOUNT.count + 2):
        assert (await api.post("/api/auth/password-reset", json={"email": "jane@example.org"})).status_code == 202
    sent = await OutboundMail.find({"template": "password_reset"}).count()
    assert sent == account_codes.RESET_MAILS_PER_ACCOUNT.count


# --- login rate limits -----------------------------------------------------------------------------------


async def _fail(api: Api, email: str) -> httpx.Response:
    return await api.post("/api/auth/login", json={"email": email, "password": "wrong-password"})


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 3}])
async def test_failed_logins_lock_the_account_for_a_while(
    policy: sessions.AuthPolicy, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await make_user("admin@example.com", Role.ADMIN)
    caplog.set_level(logging.INFO, logger="helpgate.accounts.sessions")
    for _ in range(3):
        assert (await _fail(api, "agent@example.com")).status_code == 401

    locked = await api.post("/api/auth/login", json={"email": "Agent@example.com", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json() == {"detail": "too many failed logins; try again later"}
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    form = {"username": "agent@example.com", "password": PASSWORD}
    assert (await api.post("/api/auth/token", data=form)).status_code == 429
    # Another account, from the same address, is not affected.
    await login(api, "admin@example.com")

    failures = [record.getMessage() for record in caplog.records if "auth.login_failed" in record.getMessage()]
    assert len(failures) == 3 and all("agent@example.com" in line for line in failures)
    assert not [record for record in caplog.records if "wrong-password" in record.getMessage()]


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_ip": 3, "login_failures_per_account": 100}])
async def test_failed_logins_from_one_address_lock_it(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    assert (await _fail(api, "one@example.org")).status_code == 401
    assert (await _fail(api, "two@example.org")).status_code == 401
    await login(api, "agent@example.com")  # a success does not clear the address's failures
    assert (await _fail(api, "three@example.org")).status_code == 401

    locked = await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


CONCURRENT = 30


def _statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counted: dict[int, int] = {}
    for response in responses:
        counted[response.status_code] = counted.get(response.status_code, 0) + 1
    return counted


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 5, "login_failures_per_ip": 1000}])
async def test_concurrent_wrong_passwords_get_the_account_limit_of_checks(
    policy: sessions.AuthPolicy, api: Api
) -> None:
    """Issue 14, finding 10: 100 concurrent wrong passwords for one account got 26 checks against a limit of 5.
    Each 401 is one password checked; every other attempt must be refused before its check."""
    await make_user("agent@example.com", Role.AGENT)
    answers = await asyncio.gather(*(_fail(api, "agent@example.com") for _ in range(CONCURRENT)))
    assert _statuses(answers) == {401: 5, 429: CONCURRENT - 5}
    locked = await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})
    assert locked.status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 1000, "login_failures_per_ip": 5}])
async def test_concurrent_wrong_passwords_get_the_address_limit_of_checks(
    policy: sessions.AuthPolicy, api: Api
) -> None:
    answers = await asyncio.gather(*(_fail(api, f"user-{number}@example.org") for number in range(CONCURRENT)))
    assert _statuses(answers) == {401: 5, 429: CONCURRENT - 5}


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 3, "login_failures_per_ip": 3}])
async def test_right_passwords_use_up_no_attempts(policy: sessions.AuthPolicy, api: Api) -> None:
    """Attempts are counted before the check: a right password gives its attempt back, to the address too."""
    await make_user("agent@example.com", Role.AGENT)
    for _ in range(5):
        await login(api, "agent@example.com")
    for _ in range(3):
        assert (await _fail(api, "agent@example.com")).status_code == 401
    assert (await _fail(api, "agent@example.com")).status_code == 429


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_ip": 2, "login_failures_per_account": 100}])
async def test_a_trusted_proxy_names_the_client_the_limit_counts(
    policy: sessions.AuthPolicy, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The test client connects from 127.0.0.1, a trusted proxy by default: each forwarded client has its own limit."""
    await make_user("agent@example.com", Role.AGENT)
    credentials = {"email": "agent@example.com", "password": PASSWORD}
    for _ in range(2):
        wrong = await api.post(
            "/api/auth/login", json={**credentials, "password": "nope"}, headers=_from("203.0.113.7")
        )
        assert wrong.status_code == 401
    assert (await api.post("/api/auth/login", json=credentials, headers=_from("203.0.113.7"))).status_code == 429
    assert (await api.post("/api/auth/login", json=credentials, headers=_from("203.0.113.8"))).status_code == 200
    assert any("ip=203.0.113.7" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "settings_overrides", [{"login_failures_per_ip": 2, "login_failures_per_account": 100, "trusted_proxies": []}]
)
async def test_with_no_trusted_proxy_a_forwarded_address_is_not_believed(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    credentials = {"email": "agent@example.com", "password": PASSWORD}
    for address in ("203.0.113.7", "203.0.113.8"):
        wrong = await api.post("/api/auth/login", json={**credentials, "password": "nope"}, headers=_from(address))
        assert wrong.status_code == 401
    # Both failures were counted against the peer itself, whatever the header claimed.
    assert (await api.post("/api/auth/login", json=credentials, headers=_from("203.0.113.9"))).status_code == 429


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1,*").trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "*"]
    assert Settings(trusted_proxies="").trusted_proxies == []
    with pytest.raises(ValueError, match="neither an IP address"):
        Settings(trusted_proxies="proxy.example.org")


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 3}])
async def test_success_clears_the_account_failures(policy: sessions.AuthPolicy, api: Api) -> None:
    await make_user("agent@example.com", Role.AGENT)
    for _ in range(2):
        await _fail(api, "agent@example.com")
    await login(api, "agent@example.com")
    for _ in range(2):
        assert (await _fail(api, "agent@example.com")).status_code == 401
    await login(api, "agent@example.com")


# --- start-up --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"jwt_secret": "x" * 31}])
async def test_short_jwt_secret_is_refused_at_start(settings: Settings) -> None:
    gateway = Gateway(settings)
    with pytest.raises(ConfigurationError, match="JWT_SECRET must be at least 32 bytes"):
        await gateway.start()
