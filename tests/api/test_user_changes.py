"""Changing an account over PATCH /api/users/{id}: sessions end with a new role or deactivation, and
concurrent demotions never leave the installation without an active admin."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from helpgate.accounts import users
from helpgate.gateway import Gateway
from helpgate.mailboxes import leases
from helpgate.models import Role, User
from tests.conftest import PASSWORD, make_user

Api = httpx.AsyncClient
LAST_ADMIN = "the last active admin cannot be demoted or deactivated"


async def _pair(api: Api, email: str) -> tuple[dict[str, str], str]:
    """Bearer headers and the refresh token of a new session."""
    response = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["refresh_token"]


async def _refresh(api: Api, token: str) -> httpx.Response:
    return await api.post("/api/auth/refresh", json={"refresh_token": token})


async def _patch(api: Api, headers: dict[str, str], email: str, body: dict[str, object]) -> httpx.Response:
    user = await users.get_by_email(email)
    assert user is not None
    return await api.patch(f"/api/users/{user.id}", json=body, headers=headers)


async def test_deactivation_ends_every_session_for_good(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    _, first = await _pair(api, "agent@example.com")
    access, second = await _pair(api, "agent@example.com")

    assert (await _patch(api, admin, "agent@example.com", {"active": False})).status_code == 200

    assert (await api.get("/api/auth/me", headers=access)).status_code == 401
    assert (await _refresh(api, first)).status_code == 401
    assert (await _patch(api, admin, "agent@example.com", {"active": True})).status_code == 200
    # Back in service, the account starts afresh: the sessions from before stay ended.
    assert (await _refresh(api, second)).status_code == 401
    assert (await _refresh(api, first)).status_code == 401
    assert (await api.get("/api/auth/me", headers=access)).status_code == 401  # its old access token too
    again, fresh = await _pair(api, "agent@example.com")
    assert (await _refresh(api, fresh)).status_code == 200
    assert (await api.get("/api/auth/me", headers=again)).status_code == 200


async def test_role_change_ends_sessions_at_once(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    access, refresh = await _pair(api, "agent@example.com")
    assert (await api.get("/api/skills", headers=access)).status_code == 200

    changed = await _patch(api, admin, "agent@example.com", {"role": "customer"})

    assert changed.status_code == 200 and changed.json()["role"] == "customer"
    ended = await api.get("/api/skills", headers=access)  # the access token too, not only the refresh token
    assert ended.status_code == 401 and ended.json()["detail"] == "session ended; log in again"
    assert (await _refresh(api, refresh)).status_code == 401
    again, _ = await _pair(api, "agent@example.com")  # logging in again works, as a customer
    assert (await api.get("/api/skills", headers=again)).status_code == 403


async def test_other_changes_keep_sessions(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    _, refresh = await _pair(api, "agent@example.com")

    body = {"name": "Renamed", "away": True, "role": "agent", "active": True}  # the same role and state
    assert (await _patch(api, admin, "agent@example.com", body)).status_code == 200

    assert (await _refresh(api, refresh)).status_code == 200


async def _active_admins() -> list[str]:
    return sorted(user.email for user in await User.find({"role": "admin", "active": True}).to_list())


async def test_cross_demotions_at_once_leave_an_admin(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    """Admins demoting or deactivating each other at the same moment: each request alone is allowed (nobody
    touches themselves), together they would leave no admin. Some must be refused; one admin always stays."""
    emails = ["admin@example.com", "second@example.com", "third@example.com"]
    for email in emails[1:]:
        await make_user(email, Role.ADMIN)
    sessions = {email: (await _pair(api, email))[0] for email in emails}
    refused = last_admin = 0
    for round_number in range(6):
        body: dict[str, object] = {"role": "agent"} if round_number % 2 else {"active": False}
        # Each admin acts on the next one: a ring, all sent together.
        answers = await asyncio.gather(
            *(_patch(api, sessions[email], emails[(n + 1) % len(emails)], body) for n, email in enumerate(emails))
        )

        statuses = sorted(answer.status_code for answer in answers)
        # 401/403: the actor was deactivated/demoted before its request was read; 409: the last admin.
        assert set(statuses) <= {200, 401, 403, 409}, [answer.text for answer in answers]
        assert 200 in statuses, [answer.text for answer in answers]
        assert await _active_admins(), f"round {round_number}: no active admin left ({statuses})"
        refused += len(emails) - statuses.count(200)
        last_admin += sum(answer.json() == {"detail": LAST_ADMIN} for answer in answers)
        for email in emails:  # every admin back in service for the next round, with a new session
            await User.get_pymongo_collection().update_one(
                {"email": email}, {"$set": {"role": "admin", "active": True}}
            )
            sessions[email] = (await _pair(api, email))[0]
    assert refused >= 6
    assert last_admin >= 1  # at least once, all three requests were read before any change was written


async def test_demotions_wait_for_the_guard(
    gateway: Gateway, api: Api, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that may take an admin away waits for the guard (409 when it stays held); others do not."""
    await make_user("agent@example.com", Role.AGENT)
    monkeypatch.setattr(users, "ADMIN_GUARD_WAIT", 0.3)
    assert await leases.take(users.ADMIN_GUARD, owner="someone else", ttl=timedelta(minutes=1)) is not None

    held = await _patch(api, admin, "agent@example.com", {"active": False})
    renamed = await _patch(api, admin, "agent@example.com", {"name": "Still here", "role": "admin", "away": True})

    assert held.status_code == 409
    assert held.json() == {"detail": "another change to an admin account is being made; try again"}
    assert renamed.status_code == 200 and renamed.json()["role"] == "admin"  # a promotion takes nobody away
    assert await leases.release(users.ADMIN_GUARD, owner="someone else")
    after = await _patch(api, admin, "agent@example.com", {"active": False})
    assert after.status_code == 200, after.text
    assert await leases.get(users.ADMIN_GUARD) is None  # released after the change
