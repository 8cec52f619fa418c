"""The admins' mailboxes page against a real Dovecot: add a mailbox, test its connection, see mail it imports,
turn it off, remove it; a wrong password shows the server's refusal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.models import AuditEntry, Mailbox, Role
from tests.conftest import make_user
from tests.console.pages import browser_client, log_in, post_form
from tests.dovecot import PASSWORD, Dovecot
from tests.mail import make_mail


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async for each in browser_client(gateway):
        yield each


async def test_an_admin_adds_tests_turns_off_and_removes_a_mailbox(
    gateway: Gateway, client: httpx.AsyncClient, dovecot: Dovecot
) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    await log_in(client, "admin@example.com")
    dovecot.append([bytes(make_mail(subject="Via the console's mailbox"))])

    added = await post_form(
        client,
        "/admin/mailboxes",
        "/admin/mailboxes",
        address="imap@localhost",
        imap_host="127.0.0.1",
        imap_port=str(dovecot.imap_port),
        imap_security="none",
        username="test",
        password=PASSWORD,
    )
    assert added.status_code == 303, added.text
    page = added.headers["location"]
    mailbox_id = page.rsplit("/", 1)[1]
    assert PASSWORD not in (await client.get(page)).text and PASSWORD not in (await client.get("/admin/mailboxes")).text

    tested = await post_form(client, f"{page}/test", page)
    assert tested.status_code == 200 and re.search(r'id="tested" class="ok"[^>]*>Connected: logged in', tested.text)
    async with asyncio.timeout(20):  # the supervisor picks the new mailbox up and imports the mail
        while "Via the console" not in (await client.get("/?view=all")).text:  # noqa: ASYNC110 - polls the queue
            await asyncio.sleep(0.2)

    off = await post_form(client, page, page, enabled="false")
    assert off.status_code == 303
    mailbox = await Mailbox.get(mailbox_id)
    assert mailbox is not None and not mailbox.enabled
    assert 'id="mailbox-state">off' in (await client.get(page)).text

    removed = await post_form(client, page, page, remove="1")
    assert removed.status_code == 303 and await Mailbox.get(mailbox_id) is None
    actions = [entry.action for entry in await AuditEntry.find().sort("at").to_list()]
    assert actions == ["mailbox.created", "mailbox.updated", "mailbox.deleted"]


async def test_a_wrong_password_shows_the_servers_refusal(
    gateway: Gateway, client: httpx.AsyncClient, dovecot: Dovecot
) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    await log_in(client, "admin@example.com")
    fields = {"imap_host": "127.0.0.1", "imap_port": str(dovecot.imap_port), "imap_security": "none"}
    added = await post_form(
        client,
        "/admin/mailboxes",
        "/admin/mailboxes",
        address="x@localhost",
        username="test",
        password="wrong",
        folder="INBOX",
        **fields,
    )
    page = added.headers["location"]
    tested = await post_form(client, f"{page}/test", page)
    assert re.search(r'id="tested" class="error"[^>]*>Failed: .*(?i:authentication failed)', tested.text), tested.text
    invalid = await post_form(client, "/admin/mailboxes", "/admin/mailboxes", address="not an address")
    assert invalid.status_code == 422
