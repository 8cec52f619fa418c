"""The audit log over real HTTP: admin actions (and staff ticket changes) are recorded without secrets, whether
made over the API or from the command line, and admins read them newest first, filtered by actor and action, page
by page."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from helpgate.accounts import users
from helpgate.audit import audit
from helpgate.core.clock import utcnow
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mail_out import suppressions
from helpgate.models import AuditAction, AuditEntry, OutboxEvent, Role
from tests.cli import run_cli
from tests.conftest import PASSWORD, login, make_user
from tests.mail import make_mail, send

Api = httpx.AsyncClient
MAILBOX_PASSWORD = "mailbox-pass-K3v9"
ENTRY_FIELDS = {
    "id", "at", "actor_id", "actor_email", "action", "target_type", "target_id", "target_label", "changes",
}  # fmt: skip


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def entries(api: Api, admin: dict[str, str], **params: Any) -> dict[str, Any]:
    page: dict[str, Any] = await ok(await api.get("/api/audit", params=params, headers=admin))
    return page


async def test_admin_actions_are_logged_newest_first(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await ok(await api.put("/api/skills", json=[{"name": "billing"}], headers=admin))
    user = await ok(
        await api.post(
            "/api/users", json={"email": "a@example.com", "role": "agent", "password": PASSWORD}, headers=admin
        ),
        201,
    )
    await ok(await api.patch(f"/api/users/{user['id']}", json={"skills": ["billing"], "away": True}, headers=admin))
    mailbox = await ok(
        await api.post(
            "/api/mailboxes",
            json={
                "address": "help@localhost",
                "imap_host": "imap.example.com",
                "username": "help",
                "password": MAILBOX_PASSWORD,
                "enabled": False,
            },
            headers=admin,
        ),
        201,
    )
    await ok(
        await api.patch(f"/api/mailboxes/{mailbox['id']}", json={"password": "x" + MAILBOX_PASSWORD}, headers=admin)
    )
    await ok(await api.delete(f"/api/mailboxes/{mailbox['id']}", headers=admin), 204)

    response = await api.get("/api/audit", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert PASSWORD not in response.text and MAILBOX_PASSWORD not in response.text and "gAAAAA" not in response.text
    assert (body["total"], body["page"], body["page_size"]) == (6, 1, 25)
    items = body["items"]
    assert all(item.keys() == ENTRY_FIELDS for item in items)
    assert [(item["action"], item["target_type"], item["target_label"]) for item in items] == [
        ("mailbox.deleted", "mailbox", "help@localhost"),
        ("mailbox.updated", "mailbox", "help@localhost"),
        ("mailbox.created", "mailbox", "help@localhost"),
        ("user.updated", "user", "a@example.com"),
        ("user.created", "user", "a@example.com"),
        ("skills.replaced", "skills", ""),
    ]
    admin_user = await users.get_by_email("admin@example.com")
    assert admin_user is not None
    assert {(item["actor_id"], item["actor_email"]) for item in items} == {(str(admin_user.id), "admin@example.com")}
    assert items[0]["target_id"] == mailbox["id"] and items[4]["target_id"] == user["id"]
    assert items[1]["changes"] == {"password": "(changed)"}
    assert items[2]["changes"]["password"] == "(changed)" and items[2]["changes"]["imap_host"] == "imap.example.com"
    assert items[3]["changes"] == {"skills": ["billing"], "away": True}
    assert items[4]["changes"] == {
        "email": "a@example.com",
        "name": "",
        "role": "agent",
        "password": "(changed)",
        "skills": [],
    }
    assert items[5]["changes"] == {"skills": ["billing"]}
    assert [item["at"] for item in items] == sorted((item["at"] for item in items), reverse=True)
    # Nor in the store: the secret never reaches the audit log at all.
    for entry in await AuditEntry.find_all().to_list():
        assert MAILBOX_PASSWORD not in entry.model_dump_json() and PASSWORD not in entry.model_dump_json()


async def test_cli_admin_changes_are_logged_as_the_operating_system_user(
    gateway: Gateway, api: Api, admin: dict[str, str], settings: Settings
) -> None:
    cli = audit.cli_actor()
    imap = ("--host", "127.0.0.1", "--port", "1", "--username", "help")  # nothing listens: polls fail

    async def run(*args: str) -> str:
        result = await asyncio.to_thread(run_cli, *args, settings=settings)
        assert result.returncode == 0, result.stderr
        return result.stdout

    said = [
        await run("skills", "set", "printers", "billing"),
        await run("create-user", "ann@example.com", "--role", "agent", "--password", PASSWORD),
        await run("staff", "ann@example.com", "--skills", "printers", "--away", "on"),
        await run("mailbox", "add", "help@localhost", *imap, "--password", MAILBOX_PASSWORD),
        await run("mailbox", "disable", "help@localhost"),
        await run("mailbox", "remove", "help@localhost"),
    ]

    response = await api.get("/api/audit", headers=admin)
    assert PASSWORD not in response.text and MAILBOX_PASSWORD not in response.text and "gAAAAA" not in response.text
    items = response.json()["items"]
    assert [(item["action"], item["target_label"]) for item in items] == [
        ("mailbox.deleted", "help@localhost"),
        ("mailbox.updated", "help@localhost"),
        ("mailbox.created", "help@localhost"),
        ("user.updated", "ann@example.com"),
        ("user.created", "ann@example.com"),
        ("skills.replaced", ""),
    ]
    assert {(item["actor_id"], item["actor_email"]) for item in items} == {(None, cli)}
    assert items[1]["changes"] == {"enabled": False}
    assert items[2]["changes"]["password"] == "(changed)" and items[2]["changes"]["imap_host"] == "127.0.0.1"
    assert items[3]["changes"] == {"skills": ["printers"], "away": True}
    assert items[4]["changes"] == {
        "email": "ann@example.com",
        "name": "",
        "role": "agent",
        "password": "(changed)",
        "skills": [],
    }
    assert items[5]["changes"] == {"skills": ["billing", "printers"]}
    assert all(f"audited as {cli}" in output for output in said), said


async def test_customers_made_by_sign_up_or_by_mail_are_not_logged(
    gateway: Gateway, api: Api, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    signed_up = await api.post("/api/auth/signup", json={"email": "new@example.org"})
    await send(gateway.smtp.port, make_mail())
    await gateway.worker.idle()

    assert signed_up.status_code == 202
    assert await users.get_by_email("new@example.org") is not None
    assert await users.get_by_email("jane@example.org") is not None
    assert (await entries(api, admin))["total"] == 0


async def test_staff_ticket_changes_are_logged(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    ticket = await ok(await api.post("/api/tickets", json={"subject": "Broken", "text": "It is."}, headers=agent), 201)

    await ok(await api.patch(f"/api/tickets/{ticket['number']}", json={"priority": "high"}, headers=agent))

    [entry] = (await entries(api, admin, action="ticket.updated"))["items"]
    assert entry["actor_email"] == "agent@example.com" and entry["target_type"] == "ticket"
    assert (entry["target_id"], entry["target_label"], entry["changes"]) == (
        str(ticket["number"]),
        "Broken",
        {"priority": "high"},
    )


async def test_an_account_or_mailbox_change_cut_off_after_its_write_is_logged_once_by_the_finisher(
    gateway: Gateway, api: Api, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await make_user("agent@example.com", Role.AGENT)
    mailbox = await ok(
        await api.post(
            "/api/mailboxes",
            json={"address": "help@localhost", "imap_host": "imap.example.com", "username": "help",
                  "password": MAILBOX_PASSWORD, "enabled": False},
            headers=admin,
        ),
        201,
    )  # fmt: skip
    await suppressions.suppress(address="gone@example.org", reason="bounced")
    before = (await entries(api, admin))["total"]
    welcomes = await OutboxEvent.find({"name": "user/created"}).count()
    confirm = audit.confirm

    async def cut_off(_pending: audit.Pending) -> None:  # the instance stops right after the change's write
        raise ConnectionError("cut off")

    monkeypatch.setattr(audit, "confirm", cut_off)
    deactivated = await api.patch(f"/api/users/{agent.id}", json={"active": False}, headers=admin)
    deleted = await api.delete(f"/api/mailboxes/{mailbox['id']}", headers=admin)
    created = await api.post("/api/users", json={"email": "b@example.com", "role": "agent"}, headers=admin)
    skills = await api.put("/api/skills", json=[{"name": "billing"}], headers=admin)
    categories = await api.put("/api/categories", json=[{"name": "billing"}, {"name": "bug"}], headers=admin)
    lifted = await api.delete("/api/suppressions/gone@example.org", headers=admin)
    monkeypatch.setattr(audit, "confirm", confirm)
    assert {deactivated.status_code, deleted.status_code, created.status_code} == {500}
    assert {skills.status_code, categories.status_code, lifted.status_code} == {500}
    stored = await users.get_by_email("agent@example.com")
    assert stored is not None and not stored.active  # written...
    assert (await entries(api, admin))["total"] == before  # ...but not logged yet, nor announced
    assert await OutboxEvent.find({"name": "user/created"}).count() == welcomes
    # A change refused before its write leaves nothing; one whose write never happened is dropped.
    assert (
        await api.post("/api/users", json={"email": "b@example.com", "role": "agent"}, headers=admin)
    ).status_code == 409
    await audit.begin(actor="cli:x", action=AuditAction.USER_UPDATED, target_type="user", target_id=str(agent.id))
    await audit.begin(  # a catalog that was never stored as listed
        actor="cli:x",
        action=AuditAction.CATEGORIES_REPLACED,
        target_type="categories",
        target_id="catalog",
        changes={"categories": ["bug", "billing"]},
    )

    assert await audit.finish_pending(now=utcnow()) == []  # younger than GRACE: maybe still in progress
    later = utcnow() + audit.GRACE * 2
    assert len(await audit.finish_pending(now=later)) == 6
    assert await audit.finish_pending(now=later) == []

    logged = (await entries(api, admin))["items"][:6]
    assert sorted(entry["action"] for entry in logged) == [
        "categories.replaced",
        "mailbox.deleted",
        "skills.replaced",
        "suppression.lifted",
        "user.created",
        "user.updated",
    ]
    assert (await entries(api, admin))["total"] == before + 6
    assert await OutboxEvent.find({"name": "user/created"}).count() == welcomes + 1  # the welcome mail follows
    assert await AuditEntry.get_pymongo_collection().database[audit.PENDING].count_documents({}) == 0


async def test_filters_by_actor_and_action_and_pages(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("other-admin@example.com", Role.ADMIN)
    other = await login(api, "other-admin@example.com")
    for n in range(3):
        await ok(await api.put("/api/skills", json=[{"name": f"skill{n}"}], headers=admin))
    await ok(await api.put("/api/skills", json=[{"name": "by-other"}], headers=other))
    await ok(await api.post("/api/users", json={"email": "c@example.com", "role": "customer"}, headers=other), 201)
    other_user = await users.get_by_email("other-admin@example.com")
    assert other_user is not None

    by_email = await entries(api, admin, actor="Other-Admin@example.com")
    by_id = await entries(api, admin, actor=str(other_user.id))
    skills_by_other = await entries(api, admin, actor="other-admin@example.com", action="skills.replaced")
    page2 = await entries(api, admin, action="skills.replaced", page=2, page_size=2)

    assert [item["action"] for item in by_email["items"]] == ["user.created", "skills.replaced"]
    assert by_id == by_email
    assert skills_by_other["total"] == 1 and skills_by_other["items"][0]["changes"] == {"skills": ["by-other"]}
    assert (page2["total"], page2["page"], page2["page_size"]) == (4, 2, 2)
    assert [item["changes"]["skills"] for item in page2["items"]] == [["skill1"], ["skill0"]]
    assert (await entries(api, admin, actor="nobody@example.com"))["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"action": "user.deleted"},
        {"page_size": 101},
        {"page_size": 0},
        {"page": 0},
        {"actor": ""},
        {"actor": "x" * 321},
    ],
)
async def test_bad_query_is_422(gateway: Gateway, api: Api, admin: dict[str, str], params: dict[str, Any]) -> None:
    response = await api.get("/api/audit", params=params, headers=admin)
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)


async def test_operator_in_actor_is_plain_text(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await ok(await api.put("/api/skills", json=[{"name": "billing"}], headers=admin))
    for actor in ('{"$ne": null}', ".*", "[$ne]"):
        assert (await entries(api, admin, actor=actor))["total"] == 0, actor
    assert (await entries(api, admin))["total"] == 1


async def test_only_admins_read_the_log(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await make_user("agent@example.com", Role.AGENT)
    refused = await api.get("/api/audit", headers=await login(api, "agent@example.com"))
    anonymous = await api.get("/api/audit")
    assert refused.status_code == 403 and refused.json() == {"detail": "only admins can do this"}
    assert anonymous.status_code == 401
