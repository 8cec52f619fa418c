"""Admin API over real HTTP: accounts (list, create, change) and the skill catalog, per role."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from helpgate.accounts import users
from helpgate.gateway import Gateway
from helpgate.models import OutboxEvent, Role
from helpgate.outbox import events
from tests.api.conftest import forbid_in_responses
from tests.conftest import PASSWORD, login, make_user
from tests.mail import make_mail, send

Api = httpx.AsyncClient
USER_FIELDS = {"id", "email", "name", "role", "skills", "active", "away", "created_at"}


@pytest.fixture(autouse=True)
def _no_secret_in_any_response(api: Api) -> Iterator[None]:
    """Every response of every test here is checked: no hash, no password, whatever the route."""
    # '"password_hash":' as a key: a 422 may name the refused field in its `loc`, which is fine.
    with forbid_in_responses(api, '"password_hash":', "$argon2", PASSWORD):
        yield


async def _catalog(api: Api, admin: dict[str, str], *names: str) -> None:
    response = await api.put("/api/skills", json=[{"name": name} for name in names], headers=admin)
    assert response.status_code == 200, response.text


async def _user_id(email: str) -> str:
    user = await users.get_by_email(email)
    assert user is not None
    return str(user.id)


# --- listing ------------------------------------------------------------------------------------------------


async def test_admin_lists_users_newest_first(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await make_user("customer@example.com", Role.CUSTOMER)

    response = await api.get("/api/users", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3 and body["page"] == 1 and body["page_size"] == 25
    assert [item["email"] for item in body["items"]] == [
        "customer@example.com",
        "agent@example.com",
        "admin@example.com",
    ]
    assert all(item.keys() == USER_FIELDS for item in body["items"])
    assert body["items"][1] | {"id": "", "created_at": ""} == {
        "id": "",
        "email": "agent@example.com",
        "name": "",
        "role": "agent",
        "skills": [],
        "active": True,
        "away": False,
        "created_at": "",
    }


async def test_list_filters_by_role(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await make_user("customer@example.com", Role.CUSTOMER)

    agents = (await api.get("/api/users", params={"role": "agent"}, headers=admin)).json()
    wizards = await api.get("/api/users", params={"role": "wizard"}, headers=admin)

    assert [item["email"] for item in agents["items"]] == ["agent@example.com"] and agents["total"] == 1
    assert wizards.status_code == 422 and isinstance(wizards.json()["detail"], list)


async def test_query_matches_email_or_name_as_plain_text(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await users.create(actor=None, email="ann.lee@example.com", role=Role.AGENT, name="Ann Lee")
    await users.create(actor=None, email="annxlee@example.com", role=Role.AGENT)
    await users.create(actor=None, email="bob@example.com", role=Role.CUSTOMER, name="Bob, for ANN (manager)")

    async def emails(q: str) -> list[str]:
        response = await api.get("/api/users", params={"q": q}, headers=admin)
        assert response.status_code == 200, (q, response.text)
        return sorted(item["email"] for item in response.json()["items"])

    assert await emails("ann.lee") == ["ann.lee@example.com"]  # "." is a dot, not any character
    assert await emails("Ann") == ["ann.lee@example.com", "annxlee@example.com", "bob@example.com"]
    assert await emails("(manager)") == ["bob@example.com"]
    for pattern in (".*", "^a", "a|b", "(x", "[", '{"$ne": null}', "\\"):
        assert await emails(pattern) == [], pattern


async def test_list_pages_and_limits(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    for n in range(4):
        await make_user(f"agent{n}@example.com", Role.AGENT, password=None)

    page2 = (await api.get("/api/users", params={"page": 2, "page_size": 2}, headers=admin)).json()

    assert [item["email"] for item in page2["items"]] == ["agent1@example.com", "agent0@example.com"]
    assert page2["total"] == 5 and page2["page"] == 2 and page2["page_size"] == 2
    for params in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"q": "x" * 201}):
        response = await api.get("/api/users", params=params, headers=admin)
        assert response.status_code == 422, params


# --- who may ------------------------------------------------------------------------------------------------


async def test_agents_and_customers_are_refused(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    await make_user("customer@example.com", Role.CUSTOMER)
    target = await _user_id("customer@example.com")
    requests = [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"email": "new@example.com", "role": "admin"}),
        ("PATCH", f"/api/users/{target}", {"role": "admin"}),
        ("PUT", "/api/skills", [{"name": "billing"}]),
    ]
    for email in ("agent@example.com", "customer@example.com"):
        headers = await login(api, email)
        for method, path, body in requests:
            response = await api.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (email, method, path)
            assert response.json() == {"detail": "only admins can do this"}
    for method, path, body in [*requests, ("GET", "/api/skills", None)]:
        response = await api.request(method, path, json=body)
        assert response.status_code == 401 and response.json() == {"detail": "not authenticated"}, (method, path)
    customer = await api.get("/api/skills", headers=await login(api, "customer@example.com"))
    assert customer.status_code == 403 and customer.json() == {"detail": "only agents and admins can do this"}
    assert await users.get_by_email("new@example.com") is None


# --- creating -----------------------------------------------------------------------------------------------


async def test_admin_creates_agent_with_skills(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing", "printers")
    body = {"email": "New.Agent@Example.com", "name": "New Agent", "role": "agent", "password": PASSWORD}

    response = await api.post("/api/users", json=body | {"skills": ["Printers"]}, headers=admin)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created.keys() == USER_FIELDS
    assert created | {"id": "", "created_at": ""} == {
        "id": "",
        "email": "new.agent@example.com",
        "name": "New Agent",
        "role": "agent",
        "skills": ["printers"],
        "active": True,
        "away": False,
        "created_at": "",
    }
    me = await api.get("/api/auth/me", headers=await login(api, "new.agent@example.com"))
    assert me.json()["id"] == created["id"]
    event = await OutboxEvent.find_one({"name": events.USER_CREATED, "data.user_id": created["id"]})
    assert event is not None and event.data["source"] == "api"  # the welcome-user workflow mails them


async def test_account_without_password_cannot_log_in(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    response = await api.post("/api/users", json={"email": "c@example.com", "role": "customer"}, headers=admin)
    assert response.status_code == 201
    refused = await api.post("/api/auth/login", json={"email": "c@example.com", "password": "anything-at-all"})
    assert refused.status_code == 401


async def test_duplicate_email_is_409(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    response = await api.post("/api/users", json={"email": " AGENT@example.com", "role": "agent"}, headers=admin)
    assert response.status_code == 409
    assert response.json() == {"detail": "a user with email agent@example.com exists"}


async def test_unknown_skills_are_422_naming_them(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing")
    body = {"email": "a@example.com", "role": "agent", "skills": ["billing", "Juggling", "cooking"]}

    response = await api.post("/api/users", json=body, headers=admin)

    assert response.status_code == 422
    assert response.json() == {"detail": "unknown skills: juggling, cooking (add them to the catalog first)"}
    assert await users.get_by_email("a@example.com") is None


async def test_customers_have_no_skills(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing")
    body = {"email": "c@example.com", "role": "customer", "skills": ["billing"]}
    response = await api.post("/api/users", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json() == {"detail": "customers have no skills; only agents and admins do"}


async def test_weak_password_is_422(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    body = {"email": "a@example.com", "role": "agent", "password": "short"}
    response = await api.post("/api/users", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json() == {"detail": "password must be at least 10 characters"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com"},
        {"email": "a@example.com", "role": "root"},
        {"email": {"$ne": None}, "role": "agent"},
        {"email": "a@example.com", "role": "agent", "is_admin": True},
        {"email": "a@example.com", "role": "agent", "name": "x" * 101},
        {"email": "a@example.com", "role": "agent", "name": "Sam\nURGENT: verify at http://evil.example"},
        {"email": "a@example.com", "role": "agent", "skills": "billing"},
        {"email": "a@example.com", "role": "agent", "skills": [{"$gt": ""}]},
        {"email": "not an address", "role": "agent"},
        [],
    ],
)
async def test_create_input_is_validated(gateway: Gateway, api: Api, admin: dict[str, str], body: object) -> None:
    response = await api.post("/api/users", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


# --- changing -----------------------------------------------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing", "printers")
    await users.create(actor=None, email="agent@example.com", role=Role.AGENT, name="Agent A", skills=["billing"])
    path = f"/api/users/{await _user_id('agent@example.com')}"

    away = await api.patch(path, json={"away": True}, headers=admin)
    renamed = await api.patch(path, json={"name": "Agent B", "skills": ["printers", "billing"]}, headers=admin)

    assert away.status_code == 200
    assert (away.json()["name"], away.json()["skills"], away.json()["away"]) == ("Agent A", ["billing"], True)
    assert renamed.status_code == 200
    assert renamed.json() | {"id": "", "created_at": ""} == {
        "id": "",
        "email": "agent@example.com",
        "name": "Agent B",
        "role": "agent",
        "skills": ["printers", "billing"],
        "active": True,
        "away": True,
        "created_at": "",
    }
    stored = await users.get_by_email("agent@example.com")
    assert stored is not None and stored.name == "Agent B" and stored.away and stored.role is Role.AGENT


@pytest.mark.parametrize(
    "body",
    [
        {"role": None},
        {"active": None},
        {"skills": None},
        {"email": "other@example.com"},
        {"password_hash": "x"},
        {"role": "root"},
        {"active": {"$ne": False}},
    ],
)
async def test_patch_input_is_validated(gateway: Gateway, api: Api, admin: dict[str, str], body: object) -> None:
    await make_user("agent@example.com", Role.AGENT)
    response = await api.patch(f"/api/users/{await _user_id('agent@example.com')}", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


async def test_patch_unknown_skill_is_422(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    path = f"/api/users/{await _user_id('agent@example.com')}"
    response = await api.patch(path, json={"skills": ["nope"]}, headers=admin)
    assert response.status_code == 422
    assert response.json() == {"detail": "unknown skills: nope (add them to the catalog first)"}


@pytest.mark.parametrize(
    ("user_id", "detail"),
    [
        ("nope", "user 'nope' not found"),
        ("0" * 24, f"user '{'0' * 24}' not found"),
        ("$where", "user '$where' not found"),
    ],
)
async def test_patch_unknown_user_is_404(
    gateway: Gateway, api: Api, admin: dict[str, str], user_id: str, detail: str
) -> None:
    response = await api.patch(f"/api/users/{user_id}", json={"name": "x"}, headers=admin)
    assert response.status_code == 404
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("name", ["Sam\nAgent", "Sam\u2028Agent", "Sam\x00", "x" * 101])
async def test_patch_name_is_one_bounded_line(gateway: Gateway, api: Api, admin: dict[str, str], name: str) -> None:
    """Issue 14, finding 8: every name input is one line of at most 100 characters."""
    user = await make_user("agent@example.com", Role.AGENT)
    response = await api.patch(f"/api/users/{user.id}", json={"name": name}, headers=admin)
    assert response.status_code == 422, response.text
    stored = await users.get_by_email("agent@example.com")
    assert stored is not None and stored.name == ""


@pytest.mark.parametrize("body", [{"role": "agent"}, {"role": "customer"}, {"active": False}])
async def test_admin_cannot_demote_or_deactivate_self(
    gateway: Gateway, api: Api, admin: dict[str, str], body: dict[str, object]
) -> None:
    path = f"/api/users/{await _user_id('admin@example.com')}"

    response = await api.patch(path, json=body, headers=admin)

    assert response.status_code == 409
    assert response.json() == {"detail": "you cannot demote or deactivate yourself; ask another admin"}
    me = await api.get("/api/auth/me", headers=admin)
    assert me.json()["role"] == "admin" and me.json()["active"] is True


async def test_admin_may_change_own_name_and_demote_another_admin(
    gateway: Gateway, api: Api, admin: dict[str, str]
) -> None:
    await make_user("second@example.com", Role.ADMIN)
    own = await api.patch(f"/api/users/{await _user_id('admin@example.com')}", json={"name": "Boss"}, headers=admin)
    other = await api.patch(f"/api/users/{await _user_id('second@example.com')}", json={"role": "agent"}, headers=admin)
    assert own.status_code == 200 and own.json()["name"] == "Boss" and own.json()["role"] == "admin"
    assert other.status_code == 200 and other.json()["role"] == "agent"


async def test_demoted_agent_loses_access_at_once(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing")
    await users.create(actor=None, email="agent@example.com", role=Role.AGENT, password=PASSWORD, skills=["billing"])
    assert gateway.smtp is not None
    for sender in ("a@example.org", "b@example.org"):
        await send(gateway.smtp.port, make_mail(sender=sender), sender=sender)
    await gateway.worker.idle()
    agent = await login(api, "agent@example.com")
    assert (await api.get("/api/tickets", headers=agent)).json()["total"] == 2

    demoted = await api.patch(
        f"/api/users/{await _user_id('agent@example.com')}", json={"role": "customer"}, headers=admin
    )

    assert demoted.status_code == 200 and demoted.json()["role"] == "customer"
    assert demoted.json()["skills"] == []  # customers have none
    # A new role ends the account's sessions: the agent's token is void, and a new login has the customer's rights.
    assert (await api.get("/api/tickets", headers=agent)).status_code == 401
    agent = await login(api, "agent@example.com")
    listing = await api.get("/api/tickets", headers=agent)
    assert listing.status_code == 200 and listing.json()["items"] == [] and listing.json()["total"] == 0
    assert (await api.get("/api/tickets/1", headers=agent)).status_code == 404
    note = await api.post("/api/tickets/1/notes", json={"text": "still here?"}, headers=agent)
    assert note.status_code == 404
    assert (await api.get("/api/skills", headers=agent)).status_code == 403


async def test_deactivated_user_token_is_refused_at_once(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    path = f"/api/users/{await _user_id('agent@example.com')}"

    deactivated = await api.patch(path, json={"active": False}, headers=admin)

    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    me = await api.get("/api/auth/me", headers=agent)
    assert me.status_code == 401 and me.json() == {"detail": "invalid token"}
    relogin = await api.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD})
    assert relogin.status_code == 401
    assert (await api.patch(path, json={"active": True}, headers=admin)).status_code == 200
    # Reactivation does not revive the tokens the deactivation voided; a new login does.
    assert (await api.get("/api/auth/me", headers=agent)).status_code == 401
    assert (await api.get("/api/auth/me", headers=await login(api, "agent@example.com"))).status_code == 200


# --- the skill catalog --------------------------------------------------------------------------------------


async def test_admin_replaces_catalog_and_staff_read_it(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    catalog = [{"name": " Printers ", "description": "toner, paper jams"}, {"name": "billing"}]

    replaced = await api.put("/api/skills", json=catalog, headers=admin)
    read = await api.get("/api/skills", headers=await login(api, "agent@example.com"))

    expected = [{"name": "billing", "description": ""}, {"name": "printers", "description": "toner, paper jams"}]
    assert replaced.status_code == 200 and replaced.json() == expected
    assert read.status_code == 200 and read.json() == expected
    emptied = await api.put("/api/skills", json=[], headers=admin)
    assert emptied.status_code == 200 and emptied.json() == []


@pytest.mark.parametrize(
    ("catalog", "detail"),
    [
        ([{"name": "bad name"}], "invalid skill name 'bad name': use 1-40 of a-z, 0-9, '_', '.', '-'"),
        ([{"name": "$where"}], "invalid skill name '$where': use 1-40 of a-z, 0-9, '_', '.', '-'"),
        ([{"name": "billing"}, {"name": "Billing"}], "skill 'billing' is listed twice"),
    ],
)
async def test_invalid_or_duplicate_skills_are_422(
    gateway: Gateway, api: Api, admin: dict[str, str], catalog: list[dict[str, str]], detail: str
) -> None:
    await _catalog(api, admin, "printers")
    response = await api.put("/api/skills", json=catalog, headers=admin)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    assert (await api.get("/api/skills", headers=admin)).json() == [{"name": "printers", "description": ""}]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "billing"},
        [{"name": "billing", "extra": 1}],
        [{"name": {"$ne": None}}],
        [{"name": "x" * 41}],
        [{"name": "billing", "description": "x" * 501}],
        [{"name": f"s{n}"} for n in range(201)],
    ],
)
async def test_catalog_input_is_validated(gateway: Gateway, api: Api, admin: dict[str, str], body: object) -> None:
    response = await api.put("/api/skills", json=body, headers=admin)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_removing_a_skill_takes_it_from_agents(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await _catalog(api, admin, "billing", "printers", "network")
    await users.create(actor=None, email="a1@example.com", role=Role.AGENT, skills=["billing", "printers"])
    await users.create(actor=None, email="a2@example.com", role=Role.ADMIN, skills=["network", "billing"])

    response = await api.put("/api/skills", json=[{"name": "printers"}, {"name": "network"}], headers=admin)

    assert response.status_code == 200
    listing = (await api.get("/api/users", params={"q": "@example.com"}, headers=admin)).json()
    skills = {item["email"]: item["skills"] for item in listing["items"]}
    assert skills == {"a1@example.com": ["printers"], "a2@example.com": ["network"], "admin@example.com": []}
