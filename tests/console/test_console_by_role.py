"""Every console route, times every role signed in with the console's cookies, with the status each must get
(the API's own table is tests/api/test_routes_by_role.py). A console route without a row fails here first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi.routing import iter_route_contexts

from helpgate.accounts import users
from helpgate.console.app import STATIC_PATH
from helpgate.gateway import Gateway
from tests.api.test_routes_by_role import (
    ADMIN,
    AGENT,
    CUSTOMER,
    OTHER,
    ROLES,
    _ticket_one_and_people,
    running_app,
)
from tests.conftest import PASSWORD
from tests.console.by_role import CONSOLE_PATHS
from tests.console.pages import base_url, csrf_of, log_in

SEE_LOGIN = 303  # no session: to the login form
# What fills the paths' parameters: none of these exists but ticket 1 (the agent's id is filled in too).
PATH_VALUES = {"number": 1, "message_id": "0" * 24, "index": 0, "mailbox_id": "0" * 24, "token": "1.9999999999.forged"}

# (method, path) -> status per role, in the order of ROLES; a 303 of a signed-in role is a form's redirect.
ROUTES: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("GET", "/login"): (200, 200, 200, 200, 200),
    ("POST", "/login"): (303, 303, 303, 303, 303),  # each with its own credentials (anonymous: the customer's)
    ("GET", "/signup"): (200, 200, 200, 200, 200),
    ("POST", "/signup"): (200, 200, 200, 200, 200),  # the same answer for any address
    ("GET", "/password-reset"): (200, 200, 200, 200, 200),
    ("POST", "/password-reset"): (200, 200, 200, 200, 200),
    ("GET", "/password-reset/confirm"): (200, 200, 200, 200, 200),
    ("POST", "/password-reset/confirm"): (400, 400, 400, 400, 400),  # no such code
    ("GET", "/rate/{token}"): (404, 404, 404, 404, 404),  # a link not signed by us (real ones: test_ratings.py)
    ("POST", "/rate/{token}"): (404, 404, 404, 404, 404),
    ("GET", "/"): (SEE_LOGIN, 200, 200, 200, 200),
    ("GET", "/tickets/{number}"): (SEE_LOGIN, 200, 404, 200, 200),
    # No such message: the real downloads are in test_console_http.py.
    ("GET", "/tickets/{number}/messages/{message_id}/attachments/{index}"): (SEE_LOGIN, 404, 404, 404, 404),
    ("POST", "/tickets/{number}/reply"): (SEE_LOGIN, 403, 403, 303, 303),
    ("POST", "/tickets/{number}/note"): (SEE_LOGIN, 403, 403, 303, 303),
    ("POST", "/tickets/{number}/change"): (SEE_LOGIN, 403, 403, 303, 303),
    ("POST", "/tickets/{number}/answer"): (SEE_LOGIN, 303, 404, 403, 403),
    ("POST", "/tickets/{number}/presence"): (SEE_LOGIN, 403, 403, 200, 200),
    ("POST", "/tickets/{number}/draft"): (SEE_LOGIN, 403, 403, 200, 200),  # no AI here: the box says so
    ("POST", "/tickets/{number}/merge"): (SEE_LOGIN, 403, 403, 404, 404),  # into a ticket that is not there
    ("GET", "/dashboard"): (SEE_LOGIN, 403, 403, 403, 200),
    ("GET", "/admin/users"): (SEE_LOGIN, 403, 403, 403, 200),
    ("POST", "/admin/users"): (SEE_LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/users/{user_id}"): (SEE_LOGIN, 403, 403, 403, 200),
    ("POST", "/admin/users/{user_id}"): (SEE_LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/skills"): (SEE_LOGIN, 403, 403, 403, 200),
    ("POST", "/admin/skills"): (SEE_LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/audit"): (SEE_LOGIN, 403, 403, 403, 200),
    ("GET", "/admin/mailboxes"): (SEE_LOGIN, 403, 403, 403, 200),
    ("POST", "/admin/mailboxes"): (SEE_LOGIN, 403, 403, 403, 422),  # an address that is none
    # No such mailbox (the real ones: test_console_mailboxes.py).
    ("GET", "/admin/mailboxes/{mailbox_id}"): (SEE_LOGIN, 403, 403, 403, 404),
    ("POST", "/admin/mailboxes/{mailbox_id}"): (SEE_LOGIN, 403, 403, 403, 404),
    ("POST", "/admin/mailboxes/{mailbox_id}/test"): (SEE_LOGIN, 403, 403, 403, 404),
    ("POST", "/admin/mailboxes/{mailbox_id}/connect"): (SEE_LOGIN, 403, 403, 403, 404),
    ("GET", "/live"): (SEE_LOGIN, 200, 200, 200, 200),
    ("POST", "/logout"): (SEE_LOGIN, 303, 303, 303, 303),  # last: it ends the session
}
FORMS = {
    "/login": {"password": PASSWORD},
    "/tickets/{number}/reply": {"text": "On it."},
    "/tickets/{number}/note": {"text": "Internal."},
    "/tickets/{number}/change": {"priority": "high"},
    "/tickets/{number}/answer": {"text": "More details."},
    "/admin/users": {"email": "invited@example.com", "role": "agent"},
    "/admin/users/{user_id}": {"name": "Same Agent", "role": "agent", "active": "on"},
    "/admin/skills": {"name": "billing", "description": "Invoices"},
    "/tickets/{number}/presence": {"state": "viewing"},
    "/tickets/{number}/draft": {},
    "/tickets/{number}/merge": {"into": "999"},
    "/admin/mailboxes": {"address": "not an address"},
    "/admin/mailboxes/{mailbox_id}": {"enabled": "false"},
    "/admin/mailboxes/{mailbox_id}/test": {},
    "/admin/mailboxes/{mailbox_id}/connect": {},
    "/rate/{token}": {"score": "good"},
    "/signup": {"email": "someone@example.net"},
    "/password-reset": {"email": "someone@example.net"},
    "/password-reset/confirm": {"token": "not-a-code", "password": "a long enough passphrase"},
    "/logout": {},
}


async def test_every_console_route_has_a_row(gateway: Gateway) -> None:
    served = {
        (method, route.path)
        for route in iter_route_contexts(running_app(gateway).routes)
        if route.path in CONSOLE_PATHS and route.path != STATIC_PATH
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == ROUTES.keys()


async def _signed_in(gateway: Gateway, role: str, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(gateway), headers={"Sec-Fetch-Site": "same-origin"}) as client:
        if role != "anonymous":
            await log_in(client, email)
        yield client


async def test_each_role_gets_the_status_in_the_table(gateway: Gateway) -> None:
    await _ticket_one_and_people(gateway)
    agent = await users.get_by_email(AGENT)
    assert agent is not None
    agent_id = str(agent.id)
    emails = (CUSTOMER, CUSTOMER, OTHER, AGENT, ADMIN)
    actual: dict[tuple[str, str], list[int]] = {key: [] for key in ROUTES}
    for role, email in zip(ROLES, emails, strict=True):
        async for client in _signed_in(gateway, role, email):
            token = csrf_of(await client.get("/")) if role != "anonymous" else ""
            for method, template in ROUTES:
                path = template.format(**PATH_VALUES, user_id=agent_id)
                if method == "GET" and template == "/live":
                    async with client.stream("GET", path) as response:
                        actual[method, template].append(response.status_code)
                        if response.status_code == 200:
                            assert response.headers["content-type"].startswith("text/event-stream")
                    continue
                if method == "GET":
                    actual[method, template].append((await client.get(path)).status_code)
                    continue
                form = {"csrf": token, **FORMS[template]}
                if template == "/login":
                    form["email"] = email
                    client_for_login = httpx.AsyncClient(base_url=base_url(gateway))  # its own cookies
                    async with client_for_login:
                        actual[method, template].append((await client_for_login.post(path, data=form)).status_code)
                    continue
                actual[method, template].append((await client.post(path, data=form)).status_code)
    assert {key: tuple(statuses) for key, statuses in actual.items()} == ROUTES
