"""Mailbox API over real HTTP: add, list, show, change, remove, test against a real Dovecot, and the
running gateway polling a mailbox added this way. No response ever carries a password or its ciphertext."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from helpgate.api.routes import mailboxes as mailbox_routes
from helpgate.audit import audit
from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.mailboxes import mailboxes
from helpgate.models import Mailbox, Role, Ticket
from tests.api.conftest import forbid_in_responses
from tests.conftest import login, make_user
from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot import Dovecot
from tests.mail import make_mail

Api = httpx.AsyncClient
SECRET = "imap-pass-Zq7!x"  # a test password, looked for in every response
FERNET_PREFIX = "gAAAAA"  # every Fernet token starts with its version byte 0x80, base64-encoded
MAILBOX_FIELDS = {
    "id", "address", "display_name", "imap_host", "imap_port", "imap_security", "imap_verify_tls", "username",
    "auth", "oauth", "smtp", "default_sender", "folder", "after_import", "import_history", "poll_interval_seconds",
    "enabled", "authserv_ids",
    "trust_first_authentication_results", "has_password", "status", "created_at", "updated_at",
}  # fmt: skip
STATUS_FIELDS = {
    "connected", "last_poll_at", "last_error", "last_error_at", "imported", "uidvalidity", "last_uid", "owner",
    "lease_expires_at", "auth_state", "auth_error", "token_expires_at", "token_refreshed_at",
}  # fmt: skip
NO_SUCH_ID = "0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _no_secret_in_any_response(api: Api) -> Iterator[None]:
    """Every response of every test here is checked: no password, no ciphertext, whatever the route."""
    with forbid_in_responses(api, SECRET, f'"{DOVECOT_PASSWORD}"', FERNET_PREFIX, "password_encrypted"):
        yield


def new_mailbox(**overrides: Any) -> dict[str, Any]:
    return {
        "address": "Support@Localhost",
        "imap_host": "imap.example.com",
        "username": "support@example.com",
        "password": SECRET,
        **overrides,
    }


def on_dovecot(dovecot: Dovecot, **overrides: Any) -> dict[str, Any]:
    values = {"imap_host": "127.0.0.1", "imap_port": dovecot.imap_port, "imap_security": "none", "username": "test"}
    return new_mailbox(**{**values, "password": DOVECOT_PASSWORD, **overrides})


async def create(api: Api, admin: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/api/mailboxes", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def untimed(mailbox: dict[str, Any]) -> dict[str, Any]:
    """Without its timestamps (the store keeps milliseconds, a response made before the write has more) and
    its polling status (the running gateway starts polling a new mailbox at once)."""
    return {name: value for name, value in mailbox.items() if name not in ("created_at", "updated_at", "status")}


async def stored(mailbox_id: str) -> Mailbox:
    mailbox = await Mailbox.get(PydanticObjectId(mailbox_id))
    assert mailbox is not None
    return mailbox


# --- adding and reading -------------------------------------------------------------------------------------


async def test_admin_adds_mailbox_and_password_is_encrypted(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox(display_name="Support", after_import="move:Done"))

    assert created.keys() == MAILBOX_FIELDS and created["status"].keys() == STATUS_FIELDS
    assert created | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "address": "support@localhost",
        "display_name": "Support",
        "imap_host": "imap.example.com",
        "imap_port": 993,
        "imap_security": "tls",
        "imap_verify_tls": True,
        "username": "support@example.com",
        "auth": "password",
        "oauth": None,
        "smtp": None,
        "default_sender": False,
        "folder": "INBOX",
        "after_import": "move:Done",
        "import_history": False,
        "poll_interval_seconds": 60.0,
        "enabled": True,
        "authserv_ids": [],
        "trust_first_authentication_results": False,
        "has_password": True,
        "status": {
            "connected": False,
            "last_poll_at": None,
            "last_error": None,
            "last_error_at": None,
            "imported": 0,
            "uidvalidity": None,
            "last_uid": 0,
            "owner": None,  # no instance polls it yet: the supervisor starts at its next reconciliation
            "lease_expires_at": None,
            "auth_state": None,  # a password mailbox
            "auth_error": None,
            "token_expires_at": None,
            "token_refreshed_at": None,
        },
        "created_at": "",
        "updated_at": "",
    }
    mailbox = await stored(created["id"])
    assert SECRET not in mailbox.model_dump_json() and mailbox.password_encrypted.startswith(FERNET_PREFIX)
    assert gateway.box.decrypt(mailbox.password_encrypted) == SECRET


async def test_list_and_show(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    second = await create(api, admin, new_mailbox(address="billing@localhost", imap_security="none", enabled=False))
    first = await create(api, admin, new_mailbox(address="a@localhost"))

    listed = await api.get("/api/mailboxes", headers=admin)
    shown = await api.get(f"/api/mailboxes/{second['id']}", headers=admin)

    assert listed.status_code == 200 and [item["id"] for item in listed.json()] == [first["id"], second["id"]]
    assert shown.status_code == 200 and untimed(shown.json()) == untimed(second)
    assert second["imap_port"] == 143 and second["enabled"] is False


async def test_duplicate_address_is_409(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    await create(api, admin, new_mailbox())
    response = await api.post("/api/mailboxes", json=new_mailbox(address=" SUPPORT@localhost"), headers=admin)
    assert response.status_code == 409
    assert response.json() == {"detail": "a mailbox for support@localhost exists"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"after_import": "delete"},
        {"after_import": "move:"},
        {"after_import": "move: "},
        {"after_import": "move:Done\r\nA1 LOGOUT"},
        {"folder": ""},
        {"folder": "   "},
        {"folder": "INBOX\r\nA1 DELETE INBOX"},
        {"username": "a b"},
        {"username": ""},
        {"password": ""},
        {"password": "pass\r\nA1 LOGOUT"},
        {"imap_port": 0},
        {"imap_port": 65536},
        {"imap_security": "ssl"},
        {"imap_host": "imap.example.com\r\nx"},
        {"imap_host": "-x"},
        {"address": "not an address"},
        {"display_name": "Support\nBcc: x@example.org"},
        {"poll_interval_seconds": 0},
        {"enabled": None},
        {"unexpected": 1},
        {"address": {"$ne": None}},
    ],
)
async def test_invalid_fields_are_422(
    gateway: Gateway, api: Api, admin: dict[str, str], overrides: dict[str, Any]
) -> None:
    response = await api.post("/api/mailboxes", json=new_mailbox(**overrides), headers=admin)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json" and "detail" in response.json()
    assert await Mailbox.find_all().count() == 0


async def test_missing_password_is_422(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    body = new_mailbox()
    del body["password"]
    response = await api.post("/api/mailboxes", json=body, headers=admin)
    assert response.status_code == 422


@pytest.mark.parametrize("mailbox_id", [NO_SUCH_ID, "nope", "%24ne"])
async def test_unknown_id_is_404(gateway: Gateway, api: Api, admin: dict[str, str], mailbox_id: str) -> None:
    await create(api, admin, new_mailbox())
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"enabled": False}),
        ("DELETE", "", None),
        ("POST", "/test", None),
    ):
        response = await api.request(method, f"/api/mailboxes/{mailbox_id}{suffix}", json=body, headers=admin)
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.json()["detail"].startswith("mailbox ")


async def test_agents_and_customers_are_refused(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox())
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    for method, suffix in (("GET", ""), ("GET", f"/{created['id']}"), ("POST", f"/{created['id']}/test")):
        response = await api.request(method, f"/api/mailboxes{suffix}", headers=agent)
        assert response.status_code == 403 and response.json() == {"detail": "only admins can do this"}
        assert (await api.request(method, f"/api/mailboxes{suffix}")).status_code == 401


# --- changing and removing ----------------------------------------------------------------------------------


async def test_patch_changes_only_what_is_sent(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox())
    before = await stored(created["id"])

    response = await api.patch(
        f"/api/mailboxes/{created['id']}",
        json={"enabled": False, "display_name": "Help desk", "after_import": "move:Archive/2026"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["enabled"] is False and changed["display_name"] == "Help desk"
    assert changed["after_import"] == "move:Archive/2026" and changed["imap_host"] == "imap.example.com"
    assert changed["updated_at"] > created["updated_at"]  # the running gateway restarts its poller on this
    after = await stored(created["id"])
    assert after.password_encrypted == before.password_encrypted


async def test_patch_password_replaces_it_encrypted(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox(password="first-password"))
    response = await api.patch(f"/api/mailboxes/{created['id']}", json={"password": SECRET}, headers=admin)

    assert response.status_code == 200 and response.json()["has_password"] is True
    assert gateway.box.decrypt((await stored(created["id"])).password_encrypted) == SECRET


async def test_patch_security_moves_a_default_port(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    default = await create(api, admin, new_mailbox())
    custom = await create(api, admin, new_mailbox(address="other@localhost", imap_port=1993))

    moved = await api.patch(f"/api/mailboxes/{default['id']}", json={"imap_security": "none"}, headers=admin)
    kept = await api.patch(f"/api/mailboxes/{custom['id']}", json={"imap_security": "none"}, headers=admin)

    assert (moved.json()["imap_security"], moved.json()["imap_port"]) == ("none", 143)
    assert (kept.json()["imap_security"], kept.json()["imap_port"]) == ("none", 1993)


async def test_new_folder_starts_a_fresh_cursor(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox(enabled=False))
    await Mailbox.get_pymongo_collection().update_one(
        {"_id": PydanticObjectId(created["id"])},
        {"$set": {"state.uidvalidity": 7, "state.last_uid": 42, "state.imported": 3}},
    )
    same = await api.patch(f"/api/mailboxes/{created['id']}", json={"folder": "INBOX"}, headers=admin)
    moved = await api.patch(f"/api/mailboxes/{created['id']}", json={"folder": "Support"}, headers=admin)

    assert (same.json()["status"]["uidvalidity"], same.json()["status"]["last_uid"]) == (7, 42)
    status = moved.json()["status"]
    assert (status["uidvalidity"], status["last_uid"], status["imported"]) == (None, 0, 3)


async def test_patch_rejects_null_duplicate_and_bad_values(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox())
    await create(api, admin, new_mailbox(address="billing@localhost"))
    path = f"/api/mailboxes/{created['id']}"

    duplicate = await api.patch(path, json={"address": "Billing@localhost"}, headers=admin)
    for body in ({"enabled": None}, {"password": None}, {"after_import": "flag"}, {"folder": "a\nb"}, {"id": "x"}):
        response = await api.patch(path, json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)

    assert duplicate.status_code == 409 and duplicate.json() == {"detail": "a mailbox for billing@localhost exists"}
    assert untimed((await api.get(path, headers=admin)).json()) == untimed(created)


async def test_marking_a_default_sender_unmarks_the_previous_one_even_when_cut_off_before_it(
    gateway: Gateway, api: Api, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(api, admin, new_mailbox(enabled=False, default_sender=True))
    second = await create(api, admin, new_mailbox(address="billing@localhost", enabled=False))
    third = await create(api, admin, new_mailbox(address="sales@localhost", enabled=False))

    async def marked() -> list[str]:
        return [item["address"] for item in (await api.get("/api/mailboxes", headers=admin)).json()
                if item["default_sender"]]  # fmt: skip

    assert await marked() == ["support@localhost"]
    await api.patch(f"/api/mailboxes/{second['id']}", json={"default_sender": True}, headers=admin)
    assert await marked() == ["billing@localhost"]  # marking one unmarks the others

    async def cut_off(_mailbox: Mailbox) -> None:  # the instance stops right after the change's write
        raise ConnectionError("cut off")

    monkeypatch.setattr(mailboxes, "_only_default_sender", cut_off)
    response = await api.patch(f"/api/mailboxes/{third['id']}", json={"default_sender": True}, headers=admin)
    monkeypatch.undo()
    assert response.status_code == 500
    assert await marked() == ["billing@localhost", "sales@localhost"]

    await gateway.finish_changes(now=utcnow())  # younger than the grace: maybe still in progress
    assert await marked() == ["billing@localhost", "sales@localhost"]
    await gateway.finish_changes(now=utcnow() + audit.GRACE * 2)
    assert await marked() == ["sales@localhost"]


async def test_delete_forgets_the_mailbox(gateway: Gateway, api: Api, admin: dict[str, str]) -> None:
    created = await create(api, admin, new_mailbox())

    response = await api.delete(f"/api/mailboxes/{created['id']}", headers=admin)

    assert response.status_code == 204 and not response.content
    assert (await api.get(f"/api/mailboxes/{created['id']}", headers=admin)).status_code == 404
    assert (await api.get("/api/mailboxes", headers=admin)).json() == []


# --- testing the connection against a real Dovecot ----------------------------------------------------------


async def test_connection_test_reports_success(
    gateway: Gateway, api: Api, admin: dict[str, str], dovecot: Dovecot
) -> None:
    created = await create(api, admin, on_dovecot(dovecot, enabled=False))

    response = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is True
    assert (
        result["detail"].startswith("logged in, folder INBOX has UIDVALIDITY ") and "IDLE supported" in result["detail"]
    )


async def test_connection_test_reports_a_wrong_password(
    gateway: Gateway, api: Api, admin: dict[str, str], dovecot: Dovecot
) -> None:
    created = await create(api, admin, on_dovecot(dovecot, password=SECRET, enabled=False))

    result = (await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)).json()

    assert result["ok"] is False
    assert "LOGIN refused: NO" in result["detail"] and "Authentication failed" in result["detail"]


async def test_connection_test_reports_an_untrusted_certificate(
    gateway: Gateway, api: Api, admin: dict[str, str], dovecot: Dovecot
) -> None:
    body = on_dovecot(dovecot, imap_port=dovecot.imaps_port, imap_security="tls", enabled=False)
    created = await create(api, admin, body)

    result = (await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)).json()

    assert result["ok"] is False and "CERTIFICATE_VERIFY_FAILED" in result["detail"]


async def test_connection_test_is_bounded_when_nobody_answers(
    gateway: Gateway, api: Api, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection but never greets: the test gives up and says so."""
    monkeypatch.setattr(mailbox_routes, "PROBE_TIMEOUT", 1.0)  # the greeting alone may take 10 s
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _reader, writer: held.append(writer), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    body = new_mailbox(imap_host="127.0.0.1", imap_port=port, imap_security="none", enabled=False)
    created = await create(api, admin, body)
    try:
        started = time.monotonic()
        result = (await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)).json()
        took = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        silent.close()

    assert result == {"ok": False, "detail": f"no complete answer from 127.0.0.1:{port} within 1 s"}
    assert took < 5


# --- the running gateway imports from a mailbox added over HTTP ---------------------------------------------


async def test_mailbox_added_over_http_is_polled(
    gateway: Gateway, api: Api, admin: dict[str, str], dovecot: Dovecot
) -> None:
    dovecot.append([bytes(make_mail(subject="Via the API mailbox", message_id="<api-imap-1@example.org>"))])

    created = await create(api, admin, on_dovecot(dovecot))

    # The supervisor reconciles every 10 seconds; the message waits for it.
    deadline = time.monotonic() + 25
    while await Ticket.find_all().count() == 0:
        assert time.monotonic() < deadline, "the mailbox was not polled"
        await asyncio.sleep(0.2)
    await gateway.worker.idle()
    assert [ticket.subject for ticket in await Ticket.find_all().to_list()] == ["Via the API mailbox"]
    status = (await api.get(f"/api/mailboxes/{created['id']}", headers=admin)).json()["status"]
    assert status["imported"] == 1 and status["uidvalidity"] and status["last_uid"] == 1
    assert status["last_error"] is None
    assert status["owner"] == gateway.settings.instance_id and status["lease_expires_at"]  # polled by this instance
    listed = (await api.get("/api/mailboxes", headers=admin)).json()
    assert [mailbox["status"]["owner"] for mailbox in listed] == [gateway.settings.instance_id]
