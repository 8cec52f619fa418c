"""Accounts in the console without a session: a customer created by their first mail chooses a password with a
mailed code and then sees their ticket; a new customer signs up; the answers say nothing of which addresses
have accounts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.models import OutboundMail, Role
from tests.conftest import PASSWORD, make_user
from tests.console.pages import browser_client, log_in
from tests.mail import make_mail, send


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async for each in browser_client(gateway):
        yield each


async def mailed_code(gateway: Gateway, email: str) -> str:
    """The code in the newest password_reset mail to `email`, once the work after the answer is done."""
    await gateway.deferred.idle()
    mails = await OutboundMail.find({"template": "password_reset", "to": email}).sort("-created_at").to_list()
    assert mails, f"no code mailed to {email}"
    found = re.search(r"^ {4}(\S+)$", mails[0].text, re.MULTILINE)
    assert found is not None and "/password-reset/confirm" in mails[0].text
    return found.group(1)


async def test_a_customer_from_mail_chooses_a_password_and_sees_their_ticket(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(subject="Where is my parcel"))
    await gateway.worker.idle()

    asked = await client.post("/password-reset", data={"email": "jane@example.org"})
    nobody = await client.post("/password-reset", data={"email": "nobody@example.org"})
    assert asked.status_code == nobody.status_code == 200
    assert asked.text == nobody.text  # no account enumeration
    code = await mailed_code(gateway, "jane@example.org")

    weak = await client.post("/password-reset/confirm", data={"token": code, "password": "short"})
    assert weak.status_code == 422 and 'value="' + code + '"' in weak.text  # the code stays usable
    chosen = await client.post("/password-reset/confirm", data={"token": code, "password": PASSWORD})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/login?chosen=1"
    again = await client.post("/password-reset/confirm", data={"token": code, "password": PASSWORD})
    assert again.status_code == 400 and "invalid or expired" in again.text

    await log_in(client, "jane@example.org")
    assert "Where is my parcel" in (await client.get("/")).text


async def test_a_new_customer_signs_up_with_a_mailed_code(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user("agent@example.com", Role.AGENT)
    form = await client.get("/signup")
    assert form.status_code == 200 and 'action="/signup"' in form.text
    new = await client.post("/signup", data={"email": "new@example.org", "name": "New Person"})
    staff = await client.post("/signup", data={"email": "agent@example.com", "name": "Agent"})
    assert new.status_code == staff.status_code == 200 and new.text == staff.text
    bad = await client.post("/signup", data={"email": "not an address"})
    assert bad.status_code == 422

    code = await mailed_code(gateway, "new@example.org")
    assert (await client.post("/password-reset/confirm", data={"token": code, "password": PASSWORD})).status_code == 303
    await log_in(client, "new@example.org")
    assert (await client.get("/")).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"allow_signup": False}])
async def test_sign_up_turned_off_says_so(gateway: Gateway, client: httpx.AsyncClient) -> None:
    assert "Sign-up is turned off here" in (await client.get("/signup")).text
    refused = await client.post("/signup", data={"email": "new@example.org"})
    assert refused.status_code == 403 and await OutboundMail.find().count() == 0
