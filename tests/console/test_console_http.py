"""The console over HTTP, as a client speaks to it: logging in with the form (cookies), the queue and a ticket,
the forms that change it, and what is refused (no CSRF token, another origin, a Bearer token, a cookie on the API).
tests/console/test_console_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage

import httpx
import pytest

from helpgate.accounts import users
from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.models import DeliveryStatus, MessageKind, Role, Ticket, TicketStatus
from helpgate.tickets import tickets
from helpgate.workflows.ai import learning
from tests.conftest import PASSWORD, make_user
from tests.console.pages import base_url, browser_client, csrf_of, log_in, post_form, ticket_numbered
from tests.mail import make_mail, send
from tests.reviewed import mixed, reviewed

AGENT, CUSTOMER, OTHER = "agent@example.com", "jane@example.org", "other@example.org"


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async for client in browser_client(gateway):
        yield client


async def mailed_ticket(gateway: Gateway, sender: str = CUSTOMER, subject: str = "Printer on fire") -> int:
    number = await Ticket.find().count() + 1  # tickets are numbered from 1, in order
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender=f"Jane <{sender}>", subject=subject), sender=sender)
    await ticket_numbered(number)
    return number


async def test_login_sets_session_cookies_and_the_queue_shows_mailed_tickets(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await make_user(AGENT, Role.AGENT)
    number = await mailed_ticket(gateway)

    anonymous = await client.get("/?view=all")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2F%3Fview%3Dall"

    wrong = await client.post("/login", data={"email": AGENT, "password": "not it", "next": "/"})
    assert wrong.status_code == 401
    assert "incorrect email or password" in wrong.text
    assert "helpgate_access" not in client.cookies

    answer = await log_in(client, AGENT)
    cookies = answer.headers.get_list("set-cookie")
    assert {cookie.split("=")[0] for cookie in cookies} == {"helpgate_access", "helpgate_refresh"}
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # served over http here; https adds it

    queue = await client.get("/")
    assert queue.status_code == 200
    assert f'id="ticket-{number}"' in queue.text and "Printer on fire" in queue.text
    assert queue.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    assert "frame-ancestors 'none'" in queue.headers["content-security-policy"]
    assert queue.headers["referrer-policy"] == "same-origin"
    assert queue.headers["x-content-type-options"] == "nosniff"
    assert queue.headers["cache-control"] == "no-store"

    searched = await client.get("/", params={"view": "all", "q": "no such words"})
    assert f'id="ticket-{number}"' not in searched.text


async def test_an_agent_replies_notes_and_solves_through_the_forms(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user(AGENT, Role.AGENT)
    number = await mailed_ticket(gateway)
    await log_in(client, AGENT)
    page = f"/tickets/{number}"

    replied = await post_form(client, f"{page}/reply", page, text="We are on it.", status="pending")
    assert replied.status_code == 303 and replied.headers["location"] == page
    noted = await post_form(client, f"{page}/note", page, text="Customer sounds worried.")
    assert noted.status_code == 303
    solved = await post_form(client, f"{page}/change", page, status="solved")
    assert solved.status_code == 303

    ticket, messages = await tickets.get_ticket(viewer=await make_user("admin@example.com", Role.ADMIN), number=number)
    assert ticket.status is TicketStatus.SOLVED
    assert [message.kind for message in messages] == [MessageKind.EMAIL, MessageKind.EMAIL, MessageKind.NOTE]
    shown = (await client.get(page)).text
    assert "We are on it." in shown and "internal note" in shown
    assert any(f"delivery-{status}" in shown for status in DeliveryStatus)

    # The change form as the page shows it changes nothing: only what differs from the ticket is sent on.
    unchanged = await post_form(client, f"{page}/change", page, status="solved", priority="", assignee="", category="")
    assert unchanged.status_code == 303
    after = await tickets.get_by_number(number)
    assert after is not None and after.updated_at == ticket.updated_at


async def test_form_posts_without_the_token_or_from_another_origin_are_refused(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await make_user(AGENT, Role.AGENT)
    number = await mailed_ticket(gateway)
    await log_in(client, AGENT)
    page = f"/tickets/{number}"
    token = csrf_of(await client.get(page))

    refused = [
        await client.post(f"{page}/note", data={"text": "no token"}),
        await client.post(f"{page}/note", data={"text": "wrong token", "csrf": "0" * 64}),
        await client.post(
            f"{page}/note", data={"text": "cross-site", "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
        ),
    ]
    async with httpx.AsyncClient(base_url=base_url(gateway), cookies=client.cookies) as plain:  # no Sec-Fetch-*
        refused.append(
            await plain.post(
                f"{page}/note", data={"text": "other origin", "csrf": token}, headers={"Origin": "https://evil.example"}
            )
        )
        accepted = await plain.post(f"{page}/note", data={"text": "same origin", "csrf": token})
    assert [response.status_code for response in refused] == [403, 403, 403, 403]
    assert all("refused" in response.text for response in refused)
    assert accepted.status_code == 303
    login_elsewhere = await client.post(
        "/login", data={"email": AGENT, "password": PASSWORD}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert login_elsewhere.status_code == 403

    _, messages = await tickets.get_ticket(viewer=await make_user("admin@example.com", Role.ADMIN), number=number)
    assert [message.text for message in messages if message.kind is MessageKind.NOTE] == ["same origin"]


async def test_cookies_act_on_the_console_only_and_bearer_tokens_on_the_api_only(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await make_user(AGENT, Role.AGENT)
    await log_in(client, AGENT)
    access = client.cookies["helpgate_access"]

    with_cookie = await client.get("/api/tickets")
    assert with_cookie.status_code == 401
    async with httpx.AsyncClient(base_url=base_url(gateway)) as api:
        with_bearer = await api.get("/", headers={"Authorization": f"Bearer {access}"})
        assert with_bearer.status_code == 303 and with_bearer.headers["location"].startswith("/login")
        assert (await api.get("/api/tickets", headers={"Authorization": f"Bearer {access}"})).status_code == 200
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]


async def test_an_expired_access_cookie_is_renewed_and_tabs_renewing_at_once_keep_the_session(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await make_user(AGENT, Role.AGENT)
    await log_in(client, AGENT)
    refresh = client.cookies["helpgate_refresh"]
    stale = {"helpgate_access": "not-a-token", "helpgate_refresh": refresh}

    async with (
        httpx.AsyncClient(base_url=base_url(gateway), cookies=stale) as tab_one,
        httpx.AsyncClient(base_url=base_url(gateway), cookies=stale) as tab_two,
    ):
        first = await tab_one.get("/")
        second = await tab_two.get("/")  # the same refresh cookie, spent a moment ago
    assert (first.status_code, second.status_code) == (200, 200)
    renewed = first.cookies["helpgate_refresh"]
    assert renewed != refresh and second.cookies["helpgate_refresh"] not in (refresh, renewed)

    # Logging out ends the session: the renewed cookies of either tab no longer sign in.
    client.cookies.set("helpgate_access", first.cookies["helpgate_access"])
    client.cookies.set("helpgate_refresh", renewed)
    token = csrf_of(await client.get("/"))
    out = await client.post("/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    leftover = {"helpgate_refresh": second.cookies["helpgate_refresh"]}
    async with httpx.AsyncClient(base_url=base_url(gateway), cookies=leftover) as later:
        again = await later.get("/")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


async def test_a_customer_sees_and_answers_only_their_own_tickets(gateway: Gateway, client: httpx.AsyncClient) -> None:
    mine = await mailed_ticket(gateway, CUSTOMER, subject="My invoice")
    theirs = await mailed_ticket(gateway, OTHER, subject="Their refund")
    user = await users.get_by_email(CUSTOMER)
    assert user is not None
    await users.set_password(user, PASSWORD)  # created by their mail without one (sign-up sets it)
    await log_in(client, CUSTOMER)

    queue = (await client.get("/?view=all")).text
    assert "My invoice" in queue and "Their refund" not in queue
    assert 'id="view-mine"' not in queue and "<th>Assignee</th>" not in queue
    other = await client.get(f"/tickets/{theirs}")
    assert other.status_code == 404 and "Their refund" not in other.text

    page = f"/tickets/{mine}"
    assert 'id="reply"' not in (await client.get(page)).text
    answered = await post_form(client, f"{page}/answer", page, text="Any news?")
    assert answered.status_code == 303
    as_staff = await post_form(client, f"{page}/note", page, text="I am staff now")
    assert as_staff.status_code == 403
    _, messages = await tickets.get_ticket(viewer=user, number=mine)
    assert [message.text for message in messages][-1] == "Any news?"


def mail_with_extras() -> EmailMessage:
    """A mail with an HTML body holding two remote images (one https:, one http:) and two attachments: a page
    a browser would run, and a text file."""
    message = make_mail(subject="Screenshots attached")
    message.add_alternative(
        '<p>See <img src="https://images.example.net/shot.png"> and <img src="http://track.example.net/p.gif"></p>',
        subtype="html",
    )
    message.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="page.html")
    message.add_attachment(b"line one\n", maintype="text", subtype="plain", filename="notes 1.txt")
    return message


async def test_attachments_download_as_files_and_remote_images_load_only_when_asked(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    await make_user(AGENT, Role.AGENT)
    await send(gateway.smtp.port, mail_with_extras())
    await gateway.worker.idle()
    await log_in(client, AGENT)
    _, messages = await tickets.get_ticket(viewer=await make_user("admin@example.com", Role.ADMIN), number=1)
    mail_id = str(messages[0].id)

    page = await client.get("/tickets/1")
    assert " src=&#34;https://images.example.net" not in page.text  # set aside (data-remote-src): nothing loads
    assert "img-src 'self' data:;" in page.headers["content-security-policy"]
    assert f"/tickets/1?images={mail_id}" in page.text

    html_file = await client.get(f"/tickets/1/messages/{mail_id}/attachments/0")
    assert html_file.status_code == 200 and html_file.content == b"<script>alert(1)</script>"
    assert html_file.headers["content-type"] == "application/octet-stream"  # never rendered as a page
    assert html_file.headers["content-disposition"] == "attachment; filename*=UTF-8''page.html"
    assert html_file.headers["x-content-type-options"] == "nosniff"
    text_file = await client.get(f"/tickets/1/messages/{mail_id}/attachments/1")
    assert text_file.headers["content-type"].startswith("text/plain")
    assert text_file.headers["content-disposition"] == "attachment; filename*=UTF-8''notes%201.txt"
    assert (await client.get(f"/tickets/1/messages/{mail_id}/attachments/2")).status_code == 404

    with_images = await client.get("/tickets/1", params={"images": mail_id})
    assert "img-src 'self' data: https:;" in with_images.headers["content-security-policy"]
    assert " src=&#34;https://images.example.net/shot.png&#34;" in with_images.text  # in the frame's srcdoc
    assert " src=&#34;http://track.example.net" not in with_images.text  # https: only

    # Another customer cannot fetch it, even knowing the path.
    other = await users.get_or_create_customer(email=OTHER)
    await users.set_password(other, PASSWORD)
    async for stranger in browser_client(gateway):
        await log_in(stranger, OTHER)
        assert (await stranger.get(f"/tickets/1/messages/{mail_id}/attachments/1")).status_code == 404


async def test_the_dashboard_draws_the_reports_numbers_for_admins(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    await mailed_ticket(gateway)
    await mailed_ticket(gateway, OTHER, subject="Second")
    await log_in(client, "admin@example.com")

    page = await client.get("/dashboard", params={"days": 7})
    assert page.status_code == 200
    assert re.search(r'id="opened">2<', page.text) and re.search(r'id="solved">0<', page.text)
    chart = page.text.split('id="per-day"')[1].split("</svg>")[0]
    assert chart.count("<rect") == 2 * 7  # opened and solved, each day
    assert chart.count('class="opened" x=') == 7 and 'height="0.0"' in chart
    assert "<script" not in page.text.split("</head>")[1]  # drawn on the server: nothing runs
    assert "No triage reviewed yet." in page.text  # nothing was triaged here (no workflows)
    assert "Learned triage: not trained yet" in page.text

    await reviewed(mixed(), first=1001)
    await learning.retrain(now=utcnow())
    page = await client.get("/dashboard", params={"days": 7})
    learned = page.text.split('id="learned-triage">')[1].split("</p>")[0]
    assert "on 48 reviewed tickets; on the 12 held out" in learned
    assert learned.endswith("it answers category and priority where the keyword tables would.")


async def test_an_admin_deactivates_an_agent_whose_console_session_then_ends(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    agent = await make_user(AGENT, Role.AGENT)
    async for agent_browser in browser_client(gateway):
        await log_in(agent_browser, AGENT)
        assert (await agent_browser.get("/")).status_code == 200
        assert (await agent_browser.get("/admin/users")).status_code == 403

        await log_in(client, "admin@example.com")
        page = f"/admin/users/{agent.id}"
        saved = await post_form(client, page, page, name="Sam", role="agent", skills="", away="on")
        assert saved.status_code == 303
        changed = await users.get(agent.id)  # type: ignore[arg-type]
        assert changed is not None and changed.away and not changed.active  # "active" left unticked
        assert (await agent_browser.get("/")).status_code == 303  # signed out at once

        refused = await post_form(client, "/admin/users", "/admin/users", email="bad", role="agent")
        assert refused.status_code == 422 and "email" in refused.text


async def test_pages_opening_more_streams_than_allowed_end_the_oldest_instead_of_being_refused(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    """A browser going from page to page opens a stream per page before the server sees the last page gone."""
    await make_user(AGENT, Role.AGENT)
    await log_in(client, AGENT)
    allowed = gateway.settings.events_streams_per_user
    async with contextlib.AsyncExitStack() as pages_open:
        streams = [await pages_open.enter_async_context(client.stream("GET", "/live")) for _ in range(allowed + 1)]
        assert [stream.status_code for stream in streams] == [200] * (allowed + 1)
        lines = streams[0].aiter_lines()
        async with asyncio.timeout(10):
            while "stream/closed" not in await anext(lines):
                pass
            assert "a newer stream of this account took its place" in await anext(lines)


async def test_an_agent_merges_a_ticket_from_its_page(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user(AGENT, Role.AGENT)
    first = await mailed_ticket(gateway, subject="Printer broken")
    second = await mailed_ticket(gateway, subject="Printer still broken")
    await log_in(client, AGENT)

    page = f"/tickets/{second}"
    merged = await post_form(client, f"{page}/merge", page, into=f"#{first}")
    assert merged.status_code == 303 and merged.headers["location"] == f"/tickets/{first}"
    target = (await client.get(f"/tickets/{first}")).text
    assert target.count('class="message inbound"') == 2 and f'href="/tickets/{second}"' in target
    source = (await client.get(page)).text
    assert 'id="merged-into"' in source and 'id="reply"' not in source and 'id="change"' not in source


@pytest.mark.parametrize("settings_overrides", [{"max_reply_attachment_bytes": 64 * 1024}])
async def test_a_reply_carries_attached_files_up_to_the_limit(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user(AGENT, Role.AGENT)
    number = await mailed_ticket(gateway)
    await log_in(client, AGENT)
    page = f"/tickets/{number}"
    token = csrf_of(await client.get(page))

    sent = await client.post(
        f"{page}/reply",
        data={"csrf": token, "text": "The manual is attached.", "status": "pending"},
        files=[("files", ("manual.pdf", b"%PDF-1.4 manual", "application/pdf")), ("files", ("", b"", "text/plain"))],
    )
    assert sent.status_code == 303, sent.text
    _, messages = await tickets.get_ticket(viewer=await make_user("admin@example.com", Role.ADMIN), number=number)
    assert [(ref.filename, ref.size) for ref in messages[-1].attachments] == [("manual.pdf", 15)]
    shown = (await client.get(page)).text
    assert f"/tickets/{number}/messages/{messages[-1].id}/attachments/0" in shown

    too_big = await client.post(
        f"{page}/reply",
        data={"csrf": token, "text": "Too much."},
        files=[("files", ("big.bin", b"x" * (65 * 1024), "application/octet-stream"))],
    )
    assert too_big.status_code == 413 and "attachments total" in too_big.text
    no_token = await client.post(f"{page}/reply", data={"text": "x"}, files=[("files", ("a.txt", b"a", "text/plain"))])
    assert no_token.status_code == 403


async def test_staff_narrow_the_queue_by_priority_and_category(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user(AGENT, Role.AGENT)
    first = await mailed_ticket(gateway, subject="Invoice wrong")
    second = await mailed_ticket(gateway, subject="Printer jammed")
    await log_in(client, AGENT)
    page = f"/tickets/{first}"
    assert (await post_form(client, f"{page}/change", page, priority="high", category="billing")).status_code == 303

    for params in ({"priority": "high"}, {"category": "billing"}, {"priority": "high", "category": "billing"}):
        shown = (await client.get("/", params={"view": "all", **params})).text
        assert f'id="ticket-{first}"' in shown and f'id="ticket-{second}"' not in shown, params
    assert f'id="ticket-{first}"' not in (await client.get("/", params={"priority": "low"})).text


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ["127.0.0.1"]}])
async def test_cookies_are_secure_behind_a_proxy_that_says_https(gateway: Gateway) -> None:
    await make_user(AGENT, Role.AGENT)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "Sec-Fetch-Site": "same-origin"}
    async with httpx.AsyncClient(base_url=base_url(gateway), headers=headers) as proxied:
        answer = await proxied.post("/login", data={"email": AGENT, "password": PASSWORD})
    assert answer.status_code == 303
    cookies = answer.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("Secure" in cookie and "HttpOnly" in cookie for cookie in cookies)


@pytest.mark.parametrize(
    ("given", "goes_to"),
    [
        ("/tickets/1", "/tickets/1"),
        ("/?view=mine&q=a%20b", "/?view=mine&q=a%20b"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
async def test_after_login_only_a_path_of_ours_is_followed(
    gateway: Gateway, client: httpx.AsyncClient, given: str, goes_to: str
) -> None:
    await make_user(AGENT, Role.AGENT)
    answer = await client.post("/login", data={"email": AGENT, "password": PASSWORD, "next": given})
    assert answer.status_code == 303 and answer.headers["location"] == goes_to


async def test_a_malformed_address_is_an_html_page(gateway: Gateway, client: httpx.AsyncClient) -> None:
    await make_user(AGENT, Role.AGENT)
    await log_in(client, AGENT)
    answer = await client.get("/tickets/not-a-number")
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert "number" in answer.text and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
