"""OAuth2 mailboxes end to end: Dovecot with an oauth2 passdb asks a fake identity provider about every token, the
admin connects the mailbox over the API as a browser would, mail is imported over XOAUTH2; tokens expire, rotate
and are revoked; the CLI connects one by device code."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from beanie import PydanticObjectId
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mailboxes import mailboxes
from helpgate.mailboxes.models.mailbox import OAuthClient
from helpgate.mailboxes.oauth_providers import MICROSOFT_APP_ONLY, endpoints
from helpgate.models import Mailbox, OAuthFlow, OAuthProvider, OutboundMail, Role, Ticket
from tests.api.conftest import forbid_in_responses
from tests.cli import run_cli
from tests.conftest import login, make_user
from tests.console.pages import browser_client, log_in, post_form
from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot import Dovecot
from tests.fake_idp import CLIENT_SECRET, FakeIdP
from tests.inbound.test_imap import eventually
from tests.mail import make_mail
from tests.mail_capture import CaptureServer, Certificate, OAuthCaptureHandler, wait_for_status

Api = httpx.AsyncClient


@pytest.fixture
async def idp() -> AsyncIterator[FakeIdP]:
    fake = await FakeIdP().start()
    yield fake
    await fake.stop()


@pytest.fixture
def oauth_dovecot(idp: FakeIdP) -> Iterator[Dovecot]:
    server = Dovecot(introspection_url=idp.introspection_url)
    server.start()
    yield server
    server.close()


@pytest.fixture
def mailbox_smtp(idp: FakeIdP, sink_certificate: Certificate) -> Iterator[CaptureServer]:
    """The mailbox's own submission server, as smtp.office365.com: STARTTLS, then AUTH XOAUTH2 only, each token
    checked with the fake provider."""
    server = CaptureServer(sink_certificate, xoauth2=lambda user, token: token in idp.issued() and user == "test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(
    sink: CaptureServer, mailbox_smtp: CaptureServer, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """The global relay is a Mailtrap-like sink (`"no relay"`: none), and mail a mailbox sends itself must not go
    there. Both servers start before the gateway and stop after it: a sink stopped first would wait for the
    gateway's open session to end."""
    asked = getattr(request, "param", None)
    if asked == "no relay":
        return {}
    return {**sink.settings(), **(asked if isinstance(asked, dict) else {})}


@pytest.fixture(autouse=True)
def _no_client_secret_in_any_response(api: Api) -> Iterator[None]:
    with forbid_in_responses(api, CLIENT_SECRET, "client_secret_encrypted", "access_token_encrypted", "gAAAAA"):
        yield


def oauth_mailbox(idp: FakeIdP, dovecot: Dovecot, **overrides: Any) -> dict[str, Any]:
    return {
        "address": "support@localhost",
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.imap_port,
        "imap_security": "none",
        "username": "test",
        "auth": "oauth2",
        "oauth": idp.endpoints(),
        **overrides,
    }


async def add(api: Api, admin: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/api/mailboxes", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def consent(api: Api, admin: dict[str, str], mailbox_id: str) -> httpx.Response:
    """Start the consent, let the fake provider consent, and follow its redirect to helpgate's callback."""
    started = await api.post(f"/api/mailboxes/{mailbox_id}/oauth/start", headers=admin)
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [started.json()["redirect_uri"]]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(url)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/api/mailboxes/oauth/callback"
    return await api.get(f"{back.path}?{back.query}")  # the browser lands on helpgate: no Bearer token


async def status(api: Api, admin: dict[str, str], mailbox_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/mailboxes/{mailbox_id}", headers=admin)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["status"]
    return found


async def stored(mailbox_id: str) -> Mailbox:
    mailbox = await Mailbox.get(PydanticObjectId(mailbox_id))
    assert mailbox is not None
    return mailbox


async def tickets(count: int) -> bool:
    return await Ticket.find_all().count() == count


async def test_an_admin_connects_a_mailbox_by_consent_and_it_keeps_importing_as_tokens_expire_and_rotate(
    gateway: Gateway,
    api: Api,
    admin: dict[str, str],
    idp: FakeIdP,
    oauth_dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot))
    assert created["auth"] == "oauth2" and created["has_password"] is False
    assert created["oauth"]["has_client_secret"] is True and "client_secret" not in created["oauth"]
    assert created["status"]["auth_state"] == "not_connected"

    connected = await consent(api, admin, created["id"])
    assert connected.status_code == 200, connected.text
    assert connected.json() == {"address": "support@localhost", "auth_state": "ok"}
    code_grant = idp.grants("authorization_code")[0]
    assert code_grant["client_secret"] == CLIENT_SECRET and len(code_grant["code_verifier"]) >= 43
    audited = (await api.get("/api/audit", params={"action": "mailbox.connected"}, headers=admin)).json()
    assert [item["target_label"] for item in audited["items"]] == ["support@localhost"]  # the consent, audited once
    assert (await stored(created["id"])).applied[-1] == f"audit {audited['items'][0]['id']}"  # with the grant's write

    oauth_dovecot.append([bytes(make_mail(subject="First over XOAUTH2", message_id="<x1@example.org>"))])
    await eventually(lambda: tickets(1), timeout=30, what="the first mail imported")
    shown = await status(api, admin, created["id"])
    assert shown["auth_state"] == "ok" and shown["token_expires_at"] and shown["token_refreshed_at"]

    # The provider expires the access token; Dovecot asks again only at the next login, so the session is ended.
    first_refresh = (await stored(created["id"])).grant.refresh_token_encrypted
    idp.expire_access_tokens()
    oauth_dovecot.kick()
    oauth_dovecot.append([bytes(make_mail(subject="After the token expired", message_id="<x2@example.org>"))])
    await eventually(lambda: tickets(2), timeout=30, what="the mail after the new login imported")
    assert len(idp.grants("refresh_token")) == 1
    after = await stored(created["id"])
    assert after.grant.refresh_token_encrypted != first_refresh  # the rotated refresh token was stored
    assert gateway.box.decrypt(after.grant.refresh_token_encrypted) not in (
        idp.grants("refresh_token")[0]["refresh_token"],
    )
    assert after.state.imported == 2

    # The state works once: the same redirect replayed is refused.
    replay = await api.get(f"/api/mailboxes/oauth/callback?state={'x' * 43}&code=nothing")
    assert replay.status_code == 400 and "start the consent again" in replay.json()["detail"]

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for token in idp.issued() | {CLIENT_SECRET, gateway.box.decrypt(after.grant.refresh_token_encrypted)}:
        assert token not in logged


async def test_a_revoked_grant_stops_only_that_mailbox_and_mails_the_admins_once(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot))
    assert (await consent(api, admin, created["id"])).status_code == 200
    await add(
        api,
        admin,
        {
            "address": "billing@localhost",
            "imap_host": "127.0.0.1",
            "imap_port": oauth_dovecot.imap_port,
            "imap_security": "none",
            "username": "other",
            "password": DOVECOT_PASSWORD,
        },
    )
    oauth_dovecot.append([bytes(make_mail(subject="Before", message_id="<r1@example.org>"))])
    await eventually(lambda: tickets(1), timeout=30, what="the first mail imported")

    idp.revoke()
    oauth_dovecot.kick()

    async def refused() -> bool:
        return bool((await status(api, admin, created["id"]))["auth_state"] == "needs_consent")

    await eventually(refused, timeout=30, what="needs_consent")
    shown = await status(api, admin, created["id"])
    assert "invalid_grant" in shown["auth_error"] and "revoked" in shown["auth_error"]
    refreshes = len(idp.grants("refresh_token"))

    oauth_dovecot.append([bytes(make_mail(subject="Meanwhile", message_id="<r2@example.org>"))], user="other")
    await eventually(lambda: tickets(2), timeout=30, what="the other mailbox's mail imported")

    async def poller_retried() -> bool:
        found = await stored(created["id"])
        return found.state.last_error is not None and "needs consent" in found.state.last_error

    await eventually(poller_retried, timeout=30, what="the poller's retry")
    alerts = await OutboundMail.find({"template": "mailbox_needs_consent"}).to_list()
    assert [mail.recipients for mail in alerts] == [["admin@example.com"]]
    assert len(idp.grants("refresh_token")) == refreshes  # no more requests with a revoked grant

    # The admin connects it again: the mailbox imports again, with no mail lost or doubled.
    oauth_dovecot.append([bytes(make_mail(subject="While refused", message_id="<r3@example.org>"))])
    assert (await consent(api, admin, created["id"])).status_code == 200
    await eventually(lambda: tickets(3), timeout=30, what="the mail waiting while refused")
    assert (await status(api, admin, created["id"]))["auth_state"] == "ok"


async def test_a_refused_token_is_reported_not_waited_on(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    """Dovecot answers a bad token with a `+ <base64 JSON>` continuation; without an answer to it the login hangs."""
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, username="broken", enabled=False))
    assert (await consent(api, admin, created["id"])).status_code == 200  # the fake grants USER, not "broken"

    tested = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)

    detail = tested.json()["detail"]
    assert tested.json()["ok"] is False
    assert "AUTHENTICATE XOAUTH2 refused" in detail and "timed out" not in detail, detail
    assert len(idp.grants("refresh_token")) == 1  # refused once more with a fresh token, then reported


async def test_app_only_access_for_a_shared_microsoft_mailbox(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    app_only = {
        "provider": "microsoft",
        "flow": "client_credentials",
        "tenant_id": "contoso.example",
        "client_id": idp.endpoints()["client_id"],
        "client_secret": "an-expired-secret",
        "token_url": idp.endpoints()["token_url"],  # a national cloud's login host would be set so
    }
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, oauth=app_only, enabled=False))

    tested = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)
    assert tested.json()["ok"] is False and "AADSTS7000222" in tested.json()["detail"]
    assert (await status(api, admin, created["id"]))["auth_state"] == "needs_consent"

    patched = await api.patch(
        f"/api/mailboxes/{created['id']}", json={"oauth": {**app_only, "client_secret": CLIENT_SECRET}}, headers=admin
    )
    assert patched.status_code == 200 and patched.json()["status"]["auth_state"] == "ok"
    tested = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)
    assert tested.json()["ok"] is True, tested.json()
    asked = idp.grants("client_credentials")[-1]
    assert asked["scope"] == MICROSOFT_APP_ONLY[0] and "refresh_token" not in asked


async def test_consent_is_bound_to_the_admin_who_started_it(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, enabled=False))
    other = await make_user("other-admin@example.com", Role.ADMIN)
    other_admin = await login(api, "other-admin@example.com")
    started = await api.post(f"/api/mailboxes/{created['id']}/oauth/start", headers=other_admin)
    demoted = await api.patch(f"/api/users/{other.id}", json={"role": "agent"}, headers=admin)
    assert demoted.status_code == 200, demoted.text
    async with httpx.AsyncClient() as browser:
        back = urlsplit((await browser.get(started.json()["authorization_url"])).headers["location"])

    refused = await api.get(f"{back.path}?{back.query}")

    assert refused.status_code == 400 and "no longer an admin" in refused.json()["detail"]
    assert (await stored(created["id"])).grant.refresh_token_encrypted == ""

    idp.deny_next_consent = True
    declined = await consent(api, admin, created["id"])
    assert declined.status_code == 400 and "access_denied" in declined.json()["detail"]


@pytest.mark.parametrize(
    ("oauth", "words"),
    [
        ({"provider": "microsoft", "client_id": "app"}, "tenant id"),
        ({"provider": "microsoft", "client_id": "app", "tenant_id": "common"}, "not 'common'"),
        ({"provider": "google", "client_id": "app", "flow": "device_code"}, "device flow"),
        ({"provider": "generic", "client_id": "app"}, "needs"),
        ({"provider": "microsoft", "client_id": "app", "tenant_id": "t", "flow": "client_credentials"}, "secret"),
        (
            {
                "provider": "generic",
                "client_id": "app",
                "authorization_url": "https://idp.example/authorize",
                "token_url": "http://idp.example/token",
                "scopes": ["imap"],
            },
            "token_url must be https",
        ),
    ],
)
async def test_an_oauth_client_that_cannot_work_is_422(
    gateway: Gateway, api: Api, admin: dict[str, str], oauth: dict[str, Any], words: str
) -> None:
    body = {"address": "a@localhost", "imap_host": "imap.example.com", "username": "a", "auth": "oauth2"}
    response = await api.post("/api/mailboxes", json={**body, "oauth": oauth}, headers=admin)
    assert response.status_code == 422 and words in response.text, response.text
    missing = await api.post("/api/mailboxes", json=body, headers=admin)
    assert missing.status_code == 422 and "needs oauth" in missing.text


def test_microsoft_endpoints_are_the_tenants_own() -> None:
    client = OAuthClient(provider=OAuthProvider.MICROSOFT, client_id="app", tenant_id="contoso.onmicrosoft.com")
    found = endpoints(client)
    assert found.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert "offline_access" in found.scopes and "https://outlook.office.com/IMAP.AccessAsUser.All" in found.scopes
    app_only = endpoints(client.model_copy(update={"flow": OAuthFlow.CLIENT_CREDENTIALS}))
    assert app_only.scopes == MICROSOFT_APP_ONLY


async def test_the_cli_connects_a_mailbox_by_device_code(
    store: object, settings: Settings, idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    added = await asyncio.to_thread(
        run_cli,
        "mailbox", "add", "help@localhost", "--host", "127.0.0.1", "--port", str(oauth_dovecot.imap_port),
        "--security", "none", "--username", "test", "--auth", "oauth2", "--provider", "generic",
        "--flow", "device_code", "--client-id", idp.endpoints()["client_id"],
        "--token-url", idp.endpoints()["token_url"], "--device-url", idp.endpoints()["device_authorization_url"],
        "--scope", "imap",
        settings=settings,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    connected = await asyncio.to_thread(run_cli, "mailbox", "connect", "help@localhost", settings=settings)
    assert connected.returncode == 0, connected.stderr
    assert "FAKE-CODE" in connected.stdout and "connected" in connected.stdout
    tested = await asyncio.to_thread(run_cli, "mailbox", "test", "help@localhost", settings=settings)
    assert tested.returncode == 0 and "ok: logged in" in tested.stdout, tested.stdout + tested.stderr
    mailbox = await mailboxes.get_by_address("help@localhost")
    assert mailbox.grant.connected_by and mailbox.grant.connected_by.startswith("cli:")
    assert len(idp.grants("urn:ietf:params:oauth:grant-type:device_code")) == 2  # pending once, then granted


async def test_an_admin_connects_a_mailbox_from_the_console(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot))
    page = f"/admin/mailboxes/{created['id']}"
    async for browser in browser_client(gateway):
        await log_in(browser, "admin@example.com")
        assert 'id="auth-state"' in (shown := (await browser.get(page)).text) and "not connected yet" in shown

        linked = await post_form(browser, f"{page}/connect", page)

        assert linked.status_code == 200, linked.text
        found = re.search(r'id="consent-link" href="([^"]+)"', linked.text)
        assert found is not None and found.group(1).startswith(f"{idp.base}/authorize?")
        async with httpx.AsyncClient() as outside:
            back = urlsplit((await outside.get(html.unescape(found.group(1)))).headers["location"])
        returned = await browser.get(f"{back.path}?{back.query}")
        assert returned.status_code == 303 and returned.headers["location"] == page
        assert "connected (token until" in (await browser.get(page)).text


async def test_a_password_mailbox_moves_to_oauth2_and_back(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP
) -> None:
    created = await add(
        api,
        admin,
        {"address": "a@localhost", "imap_host": "imap.example.com", "username": "a", "password": "old-password"},
    )
    path = f"/api/mailboxes/{created['id']}"
    alone = await api.patch(path, json={"oauth": idp.endpoints()}, headers=admin)
    assert alone.status_code == 422 and "need auth oauth2" in alone.text

    moved = await api.patch(path, json={"auth": "oauth2", "oauth": idp.endpoints()}, headers=admin)
    assert moved.status_code == 200, moved.text
    assert moved.json()["auth"] == "oauth2" and moved.json()["status"]["auth_state"] == "not_connected"

    back = await api.patch(path, json={"auth": "password"}, headers=admin)
    assert back.status_code == 200 and back.json()["auth"] == "password" and back.json()["has_password"] is True
    assert back.json()["status"]["auth_state"] is None and back.json()["oauth"] is None
    assert (await stored(created["id"])).grant.version >= 1  # the grant was dropped with the move back


async def test_a_reply_leaves_through_the_mailbox_the_ticket_came_in_on_and_the_answer_threads_back(
    gateway: Gateway,
    api: Api,
    admin: dict[str, str],
    idp: FakeIdP,
    oauth_dovecot: Dovecot,
    sink: CaptureServer,
    mailbox_smtp: CaptureServer,
) -> None:
    smtp = {"host": "127.0.0.1", "port": mailbox_smtp.port, "security": "starttls", "verify_tls": False}
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, address="help@example.com", smtp=smtp))
    assert created["smtp"] == {**smtp, "username": "", "has_password": False}
    assert (await consent(api, admin, created["id"])).status_code == 200
    oauth_dovecot.append([bytes(make_mail(to="help@example.com", message_id="<q1@example.org>"))])
    await eventually(lambda: tickets(1), timeout=30, what="the customer's mail imported")

    reply = await api.post("/api/tickets/1/replies", json={"text": "Unplug it."}, headers=admin)

    assert reply.status_code == 201, reply.text
    [sent] = await mailbox_smtp.wait_for(1)
    assert sent.login == "test" and sent.tls  # XOAUTH2 as the mailbox, over STARTTLS
    assert sent.mail_from == "help@example.com" and sent.rcpt_tos == ["jane@example.org"]
    mail = sent.message
    assert mail["From"].addresses[0].addr_spec == "help@example.com"
    assert str(mail["Message-ID"]).endswith("@example.com>")
    assert str(mail["Reply-To"]).startswith("help+1.") and str(mail["Reply-To"]).endswith("@example.com")
    assert sink.received == []  # not through the global relay

    answer = make_mail(
        to="help@example.com", subject="Re: it worked", message_id="<q2@example.org>", in_reply_to=mail["Message-ID"]
    )
    oauth_dovecot.append([bytes(answer)])

    async def threaded() -> bool:
        ticket = await Ticket.find_one({"number": 1})
        return ticket is not None and ticket.message_count == 3

    await eventually(threaded, timeout=30, what="the customer's answer on the ticket")
    assert await Ticket.find_all().count() == 1

    # The provider expires the token early: the submission server refuses it once, a fresh one is sent.
    idp.expire_access_tokens()
    again = await api.post("/api/tickets/1/replies", json={"text": "Glad it works."}, headers=admin)
    assert again.status_code == 201
    await wait_for_status(again.json()["message_id"], "sent")  # recorded, so no session is left mid-reply
    assert len(mailbox_smtp.received) == 2
    assert isinstance(mailbox_smtp.handler, OAuthCaptureHandler) and mailbox_smtp.handler.refused == 1


@pytest.mark.parametrize("settings_overrides", ["no relay"], indirect=True)  # mail would be written to files
async def test_with_no_relay_mail_about_no_ticket_goes_through_the_default_sender(
    gateway: Gateway, api: Api, admin: dict[str, str], sink: CaptureServer
) -> None:
    from tests.mail_capture import PASSWORD as SINK_PASSWORD
    from tests.mail_capture import USERNAME as SINK_USER

    smtp = {
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "starttls",
        "verify_tls": False,
        "username": SINK_USER,
        "password": SINK_PASSWORD,
    }
    body = {
        "address": "desk@example.net",
        "imap_host": "imap.example.net",
        "username": "desk",
        "password": "imap-password",
        "enabled": False,
        "smtp": smtp,
        "default_sender": True,
    }
    created = await add(api, admin, body)
    assert created["default_sender"] is True and created["smtp"]["has_password"] is True
    assert SINK_PASSWORD not in str(created)

    asked = await api.post("/api/auth/password-reset", json={"email": "admin@example.com"})

    assert asked.status_code == 202
    [sent] = await sink.wait_for(1)
    reset = await OutboundMail.find_one({"template": "password_reset"})
    assert reset is not None and reset.via_mailbox == PydanticObjectId(created["id"])
    await wait_for_status(reset.key, "sent")
    assert sent.mail_from == "desk@example.net" and sent.login == SINK_USER
    assert sent.message["From"].addresses[0].addr_spec == "desk@example.net"


def _certificate_credential() -> tuple[str, str]:
    """An app's certificate credential as an admin uploads it (key and certificate in one PEM), and the certificate
    alone, as registered with the provider."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "helpgate app")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem + cert_pem, cert_pem


async def test_app_only_access_with_a_certificate_instead_of_a_secret(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    credential, registered = _certificate_credential()
    idp.certificate_pem = registered
    app_only = {
        "provider": "microsoft",
        "flow": "client_credentials",
        "tenant_id": "contoso.example",
        "client_id": idp.endpoints()["client_id"],
        "client_certificate": credential,
        "token_url": idp.endpoints()["token_url"],
    }
    key_line = credential.splitlines()[1]
    with forbid_in_responses(api, key_line):
        created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, oauth=app_only, enabled=False))
        assert created["oauth"]["has_client_certificate"] is True and created["oauth"]["has_client_secret"] is False

        tested = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)

    assert tested.json()["ok"] is True, tested.json()
    asked = idp.grants("client_credentials")[-1]
    assert "client_secret" not in asked and asked["client_assertion_type"].endswith("jwt-bearer")
    assert key_line not in (await stored(created["id"])).model_dump_json()

    bad = await api.post(
        "/api/mailboxes",
        json=oauth_mailbox(
            idp, oauth_dovecot, address="b@localhost", oauth={**app_only, "client_certificate": registered}
        ),
        headers=admin,
    )
    assert bad.status_code == 422 and "private key" in bad.text


async def test_a_refusal_a_retry_can_mend_leaves_the_mailbox_connected_and_refreshes_happen_once(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, enabled=False))
    assert (await consent(api, admin, created["id"])).status_code == 200
    expired = {"$set": {"grant.expires_at": datetime.now(UTC) - timedelta(minutes=1)}}
    await Mailbox.get_pymongo_collection().update_one({"_id": PydanticObjectId(created["id"])}, expired)

    idp.refuse_next = "temporarily_unavailable"
    tested = await api.post(f"/api/mailboxes/{created['id']}/test", headers=admin)
    assert tested.json()["ok"] is False and "refused for now" in tested.json()["detail"]
    assert (await status(api, admin, created["id"]))["auth_state"] == "ok"  # not needs_consent: retried later

    # Two callers in one process at once (the poller and a sender): one refresh, one refresh token spent.
    assert gateway.tokens is not None
    mailbox = await stored(created["id"])
    first, second = await asyncio.gather(gateway.tokens.access_token(mailbox), gateway.tokens.access_token(mailbox))
    assert first == second and len(idp.grants("refresh_token")) == 2  # the refused one and this one
    assert (await status(api, admin, created["id"]))["auth_state"] == "ok"


@pytest.mark.parametrize("settings_overrides", [{"public_url": "http://support.example.com"}], indirect=True)
async def test_consent_needs_a_public_url_the_provider_may_send_the_browser_back_to(
    gateway: Gateway, api: Api, admin: dict[str, str], idp: FakeIdP, oauth_dovecot: Dovecot
) -> None:
    created = await add(api, admin, oauth_mailbox(idp, oauth_dovecot, enabled=False))

    started = await api.post(f"/api/mailboxes/{created['id']}/oauth/start", headers=admin)

    assert started.status_code == 422 and "HELPGATE_PUBLIC_URL" in started.json()["detail"]
    assert "http://support.example.com/api/mailboxes/oauth/callback" in started.json()["detail"]
