"""Every route of the running app, times every role, with the status code each must get (issue 6, "Proof").

A route added without a row in ROUTES fails `test_every_route_has_a_row`: decide who may call it first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from helpgate.accounts import users
from helpgate.core.security import hash_password
from helpgate.gateway import Gateway
from helpgate.models import Role
from tests.conftest import PASSWORD, make_user
from tests.console.by_role import CONSOLE_PATHS
from tests.mail import make_mail, send

ROLES = ("anonymous", "customer", "other customer", "agent", "admin")
# The console's pages take cookies, not Bearer tokens: tests/console/test_console_by_role.py has their table.
NOT_TABLED = {"/docs", "/docs/oauth2-redirect", "/docs/assets", "/openapi.json", "/api/inngest", *CONSOLE_PATHS}
NEW_PASSWORD = "another long passphrase"
CUSTOMER, OTHER, AGENT, ADMIN = "customer@example.org", "other@example.org", "agent@example.com", "admin@example.com"
NO_MAILBOX = "0123456789abcdef01234567"


@dataclass(frozen=True)
class Actor:
    role: str
    email: str  # whose credentials the login and refresh rows use (anonymous: the customer's, sent without a token)
    access_token: str | None
    refresh_token: str


@dataclass(frozen=True)
class Row:
    """One representative request; `expected` lists the status per role, in the order of ROLES."""

    expected: tuple[int, int, int, int, int]
    body: Callable[[Actor], object] | None = None
    path: str = ""  # the concrete path when the template has parameters; `{agent_id}` is filled in
    headers: dict[str, str] = field(default_factory=dict)
    form: bool = False  # send the body url-encoded (the OAuth2 token endpoint), not as JSON
    media: str = "application/json"  # the content type of a successful answer
    stream: bool = False  # server-sent events: read the status and the content type, then hang up


ROUTES: dict[tuple[str, str], Row] = {
    ("GET", "/healthz"): Row((200, 200, 200, 200, 200)),
    ("GET", "/readyz"): Row((200, 200, 200, 200, 200)),
    # Open by default, like most exporters (counts only); HELPGATE_METRICS_TOKEN closes it: tests/test_observability.py
    ("GET", "/metrics"): Row((200, 200, 200, 200, 200), media="text/plain"),
    ("POST", "/api/auth/login"): Row(
        (200, 200, 200, 200, 200), body=lambda actor: {"email": actor.email, "password": PASSWORD}
    ),
    ("POST", "/api/auth/refresh"): Row(
        (200, 200, 200, 200, 200), body=lambda actor: {"refresh_token": actor.refresh_token}
    ),
    ("GET", "/api/auth/me"): Row((401, 200, 200, 200, 200)),
    ("POST", "/api/auth/token"): Row(
        (200, 200, 200, 200, 200), form=True, body=lambda actor: {"username": actor.email, "password": PASSWORD}
    ),
    ("POST", "/api/auth/signup"): Row(
        (202, 202, 202, 202, 202), body=lambda actor: {"email": f"new-{actor.role.replace(' ', '-')}@example.net"}
    ),
    ("POST", "/api/auth/password-reset"): Row((202, 202, 202, 202, 202), body=lambda actor: {"email": actor.email}),
    ("POST", "/api/auth/password-reset/confirm"): Row(
        (400, 400, 400, 400, 400), body=lambda actor: {"token": "not-a-token", "password": NEW_PASSWORD}
    ),
    ("GET", "/api/tickets"): Row((401, 200, 200, 200, 200)),
    ("GET", "/api/tickets/{number}"): Row((401, 200, 404, 200, 200), path="/api/tickets/1"),
    ("PATCH", "/api/tickets/{number}"): Row(
        (401, 403, 404, 200, 200), path="/api/tickets/1", body=lambda actor: {"priority": "high"}
    ),
    ("POST", "/api/tickets/{number}/replies"): Row(
        (401, 403, 404, 201, 201), path="/api/tickets/1/replies", body=lambda actor: {"text": "On it."}
    ),
    # Into a ticket that does not exist (merging for real: tests/tickets/test_merging.py).
    ("POST", "/api/tickets/{number}/merge"): Row(
        (401, 403, 404, 404, 404), path="/api/tickets/1/merge", body=lambda actor: {"into": 999}
    ),
    # No AI in the tests' gateway: staff get 409 (drafts with a fake Gemini: tests/api/test_drafts.py).
    ("POST", "/api/tickets/{number}/draft"): Row((401, 403, 404, 409, 409), path="/api/tickets/1/draft"),
    ("POST", "/api/tickets/{number}/notes"): Row(
        (401, 403, 404, 201, 201), path="/api/tickets/1/notes", body=lambda actor: {"text": "Internal."}
    ),
    ("GET", "/api/tickets/stats"): Row((401, 403, 403, 200, 200)),
    ("POST", "/api/tickets"): Row(
        (401, 201, 201, 201, 201), body=lambda actor: {"subject": f"From {actor.role}", "text": "Please help."}
    ),
    ("POST", "/api/tickets/{number}/messages"): Row(
        (401, 201, 404, 403, 403), path="/api/tickets/1/messages", body=lambda actor: {"text": "More details."}
    ),
    ("GET", "/api/users"): Row((401, 403, 403, 403, 200)),
    ("POST", "/api/users"): Row(
        (401, 403, 403, 403, 201), body=lambda actor: {"email": "new@example.com", "role": "agent"}
    ),
    ("PATCH", "/api/users/{user_id}"): Row(
        (401, 403, 403, 403, 200), path="/api/users/{agent_id}", body=lambda actor: {"away": True}
    ),
    ("GET", "/api/skills"): Row((401, 403, 403, 200, 200)),
    ("GET", "/api/categories"): Row((401, 403, 403, 200, 200)),
    ("PUT", "/api/categories"): Row(
        (401, 403, 403, 403, 200), body=lambda actor: [{"name": "billing"}, {"name": "bug", "keywords": ["crash"]}]
    ),
    ("PUT", "/api/skills"): Row((401, 403, 403, 403, 200), body=lambda actor: [{"name": "printers"}]),
    ("GET", "/api/mailboxes"): Row((401, 403, 403, 403, 200)),
    ("POST", "/api/mailboxes"): Row(
        (401, 403, 403, 403, 201),
        body=lambda actor: {
            "address": "imap@localhost",
            "imap_host": "imap.example.com",
            "username": "imap",
            "password": "imap-password",
            "enabled": False,
        },
    ),
    # No such mailbox: the role is checked first, then admins get 404 (the real ones: tests/api/test_mailboxes.py).
    ("GET", "/api/mailboxes/{mailbox_id}"): Row((401, 403, 403, 403, 404), path=f"/api/mailboxes/{NO_MAILBOX}"),
    ("PATCH", "/api/mailboxes/{mailbox_id}"): Row(
        (401, 403, 403, 403, 404), path=f"/api/mailboxes/{NO_MAILBOX}", body=lambda actor: {"enabled": True}
    ),
    ("DELETE", "/api/mailboxes/{mailbox_id}"): Row((401, 403, 403, 403, 404), path=f"/api/mailboxes/{NO_MAILBOX}"),
    ("POST", "/api/mailboxes/{mailbox_id}/test"): Row(
        (401, 403, 403, 403, 404), path=f"/api/mailboxes/{NO_MAILBOX}/test"
    ),
    ("POST", "/api/mailboxes/{mailbox_id}/oauth/start"): Row(
        (401, 403, 403, 403, 404), path=f"/api/mailboxes/{NO_MAILBOX}/oauth/start"
    ),
    # The provider's redirect carries no Bearer token: only the state counts (tests/api/test_mailbox_oauth.py).
    ("GET", "/api/mailboxes/oauth/callback"): Row(
        (400, 400, 400, 400, 400), path="/api/mailboxes/oauth/callback?state=unknown&code=x"
    ),
    ("GET", "/api/audit"): Row((401, 403, 403, 403, 200)),
    ("GET", "/api/reports/dashboard"): Row((401, 403, 403, 403, 200)),
    ("GET", "/api/reports/satisfaction"): Row((401, 403, 403, 403, 200)),
    ("GET", "/api/triage/quality"): Row((401, 403, 403, 403, 200)),
    ("GET", "/api/suppressions"): Row((401, 403, 403, 403, 200)),
    ("DELETE", "/api/suppressions/{address}"): Row(
        (401, 403, 403, 403, 404), path="/api/suppressions/nobody@example.org"
    ),
    ("GET", "/api/events"): Row((401, 200, 200, 200, 200), media="text/event-stream", stream=True),
    # Last: these change every actor's password and end their sessions (access tokens stay valid).
    ("POST", "/api/auth/password"): Row(
        (401, 200, 200, 200, 200), body=lambda actor: {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    ),
    ("POST", "/api/auth/logout"): Row(
        (204, 204, 204, 204, 204), body=lambda actor: {"refresh_token": actor.refresh_token}
    ),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, but the documentation and the Inngest endpoint."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):  # FastAPI 0.16x: included routers are nested, not flattened
        if route.path is None or route.path in NOT_TABLED:
            continue
        found |= {(method, route.path) for method in route.methods or {"WEBSOCKET"} if method != "HEAD"}
    return found


def running_app(gateway: Gateway) -> FastAPI:
    assert gateway._http is not None
    app = gateway._http.config.app
    assert isinstance(app, FastAPI)
    return app


async def _ticket_one_and_people(gateway: Gateway) -> None:
    """Ticket #1, mailed in by CUSTOMER; OTHER, an agent and an admin, all able to log in."""
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender=CUSTOMER, subject="Ticket 1"), sender=CUSTOMER)
    await gateway.worker.idle()
    customer = await users.get_by_email(CUSTOMER)
    assert customer is not None
    customer.password_hash = hash_password(PASSWORD)  # customers from mail set a password later
    await customer.save()
    await make_user(OTHER, Role.CUSTOMER)
    await make_user(AGENT, Role.AGENT)
    await make_user(ADMIN, Role.ADMIN)


async def _actor(api: httpx.AsyncClient, role: str, email: str) -> Actor:
    response = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens = response.json()
    access = None if role == "anonymous" else tokens["access_token"]
    return Actor(role=role, email=email, access_token=access, refresh_token=tokens["refresh_token"])


async def _stream_status(api: httpx.AsyncClient, path: str, headers: dict[str, str], row: Row) -> int:
    """A stream never ends by itself: its status and content type are all the table needs."""
    async with api.stream("GET", path, headers=headers) as response:
        media = row.media if response.is_success else "application/json"
        assert response.headers["content-type"].startswith(media), (path, response.status_code)
        return response.status_code


async def test_every_route_has_a_row(gateway: Gateway) -> None:
    served = app_routes(running_app(gateway))
    assert served - ROUTES.keys() == set(), "routes without a row in ROUTES: say who may call them"
    assert ROUTES.keys() - served == set(), "rows for routes the app does not serve"


async def test_each_role_gets_the_status_in_the_table(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _ticket_one_and_people(gateway)
    emails = (CUSTOMER, CUSTOMER, OTHER, AGENT, ADMIN)
    actors = [await _actor(api, role, email) for role, email in zip(ROLES, emails, strict=True)]
    agent = await users.get_by_email(AGENT)
    assert agent is not None

    actual: dict[tuple[str, str], tuple[int, ...]] = {}
    for (method, template), row in ROUTES.items():
        path = (row.path or template).format(agent_id=agent.id)
        statuses = []
        for actor in actors:
            headers = {"Authorization": f"Bearer {actor.access_token}"} if actor.access_token else {}
            body = row.body(actor) if row.body else None
            if row.stream:
                statuses.append(await _stream_status(api, path, headers, row))
                continue
            if row.form:
                response = await api.request(method, path, data=body, headers=headers)  # type: ignore[arg-type]
            else:
                response = await api.request(method, path, json=body, headers=headers)
            if response.status_code == 204:
                assert not response.content, (method, path, actor.role)
                statuses.append(response.status_code)
                continue
            media = row.media if response.is_success else "application/json"
            assert response.headers["content-type"].startswith(media), (method, path, actor.role)
            assert response.is_success or "detail" in response.json(), (method, path, actor.role)
            statuses.append(response.status_code)
        actual[(method, template)] = tuple(statuses)

    assert actual == {key: row.expected for key, row in ROUTES.items()}
