"""Agents answer tickets through the API and the customer gets the mail (captured by a Mailtrap-like sink)."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from helpgate.accounts import users
from helpgate.core.security import hash_password
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mail_out import message_ids
from helpgate.models import OutboundMail, Role, Ticket, TicketStatus
from tests.api.conftest import forbid_in_responses
from tests.conftest import PASSWORD, login, make_user
from tests.mail import make_mail, send
from tests.mail_capture import USERNAME, CaptureServer, wait_for_status


@pytest.fixture
def settings_overrides(sink: CaptureServer, request: pytest.FixtureRequest) -> dict[str, Any]:
    extra: dict[str, Any] = getattr(request, "param", {})  # indirect parametrization adds to these
    return {
        **sink.settings(),
        "mail_from": "Acme Support <help@acme.test>",
        "max_reply_attachment_bytes": 64 * 1024,
        **extra,
    }


async def _ticket(gateway: Gateway, **mail: Any) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>", **mail))
    await gateway.worker.idle()


async def _agent(api: httpx.AsyncClient, email: str = "agent@example.com", role: Role = Role.AGENT) -> dict[str, str]:
    await make_user(email, role)
    return await login(api, email)


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()).replace("\r\n", "\n"), str(html.get_content()).replace("\r\n", "\n")


async def test_reply_reaches_customer_threaded_with_both_parts(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    await _ticket(gateway)
    headers = await _agent(api)

    response = await api.post(
        "/api/tickets/1/replies", json={"text": "Hello Jane,\n\nunplug it & wait."}, headers=headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["direction"] == "outbound" and body["kind"] == "email"
    assert body["delivery"]["status"] in ("queued", "sending", "sent")
    [received] = await sink.wait_for(1)
    assert received.tls and received.login == USERNAME
    # From the address the customer wrote to (not HELPGATE_MAIL_FROM), with our display name
    assert received.mail_from == "support@localhost" and received.rcpt_tos == ["jane@example.org"]
    mail = received.message
    assert mail["From"] == "Acme Support <support@localhost>"
    assert mail["To"] == "jane@example.org"
    assert mail["Subject"] == "Re: Printer on fire [#1]"
    assert mail["In-Reply-To"] == "<first@example.org>"
    assert mail["References"] == "<first@example.org>"
    assert mail["Message-ID"] == f"<{body['message_id']}>" and body["message_id"].endswith("@localhost")
    assert message_ids.ticket_of(body["message_id"], secret=gateway.secret_key) == 1
    assert message_ids.ticket_of_address(str(mail["Reply-To"]), secret=gateway.secret_key) == 1
    assert str(mail["Reply-To"]).startswith("support+1.")
    assert mail["Auto-Submitted"] is None  # written by a person
    assert mail["X-Loop"] == "help@acme.test"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = _parts(mail)
    assert "Hello Jane,\n\nunplug it & wait." in text and "#1" in text
    assert "<p>unplug it &amp; wait.</p>" in html
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.status is TicketStatus.PENDING and ticket.message_count == 2


OUTLOOK_ID = "AM0PR07MB5987B2A8F39C7A1D9C3E4F5AD9A42@AM0PR07MB5987.eurprd07.prod.outlook.com"
EARLIER_ID = "DB9PR02MB7194E1C0B5A3D2F8C6E4A9B7D1F3E5C8A0B2D4F6E8A1C3@DB9PR02MB7194.eurprd02.prod.outlook.com"


async def test_reply_to_outlook_keeps_long_message_ids_whole(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    """Issue 14, finding 7: Outlook 365 Message-IDs (over 76 characters) went out as RFC 2047 encoded-words."""
    assert gateway.smtp is not None
    raw = (
        "From: Jane Doe <jane@example.org>\r\nTo: support@localhost\r\nSubject: Printer on fire\r\n"
        f"Message-ID: <{OUTLOOK_ID}>\r\nIn-Reply-To: <{EARLIER_ID}>\r\nReferences:\r\n <{EARLIER_ID}>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHelp, the printer is on fire.\r\n"
    )
    await send(gateway.smtp.port, raw.encode())
    await gateway.worker.idle()
    headers = await _agent(api)

    response = await api.post("/api/tickets/1/replies", json={"text": "Unplug it."}, headers=headers)

    assert response.status_code == 201, response.text
    [received] = await sink.wait_for(1)
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head and all(len(line) <= 998 for line in head.split(b"\r\n"))
    mail = received.message
    assert mail["In-Reply-To"] == f"<{OUTLOOK_ID}>"
    assert mail["References"].split() == [f"<{EARLIER_ID}>", f"<{OUTLOOK_ID}>"]
    assert mail["Message-ID"] == f"<{response.json()['message_id']}>"


async def test_reply_with_html_cc_and_attachment(gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    pdf = b"%PDF-1.4 not really a pdf\x00\xff"

    response = await api.post(
        "/api/tickets/1/replies",
        json={
            "text": "See the manual.",
            "html": "<p>See <b>the manual</b>.</p><script>alert(1)</script>",
            "cc": ["Boss@Example.org"],
            "attachments": [
                {
                    "filename": "../../manual.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(pdf).decode(),
                }
            ],
        },
        headers=headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["attachments"] == [
        {"filename": "_.._manual.pdf", "content_type": "application/pdf", "size": len(pdf), "purged_at": None}
    ]
    assert response.json()["cc"] == ["boss@example.org"]
    assert response.json()["html"] == "<p>See <b>the manual</b>.</p>", "the API shows the reply's HTML sanitised"
    [received] = await sink.wait_for(1)
    assert received.rcpt_tos == ["jane@example.org", "boss@example.org"]
    mail = received.message
    assert mail["Cc"] == "boss@example.org"
    assert mail.get_content_type() == "multipart/mixed"
    text, html = _parts(mail)
    assert "See the manual." in text
    assert "<b>the manual</b>" in html and "script" not in html
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "_.._manual.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf


async def test_note_is_never_mailed_nor_shown_to_the_customer(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    await _ticket(gateway)
    headers = await _agent(api)

    note = await api.post("/api/tickets/1/notes", json={"text": "Customer is grumpy, be nice."}, headers=headers)
    reply = await api.post("/api/tickets/1/replies", json={"text": "We are on it."}, headers=headers)

    assert note.status_code == 201 and reply.status_code == 201
    assert note.json()["kind"] == "note" and note.json()["direction"] == "internal"
    assert note.json()["delivery"] is None
    await wait_for_status(reply.json()["message_id"], "sent")
    [received] = await sink.wait_for(1)
    assert b"grumpy" not in received.data
    assert await OutboundMail.find_all().count() == 1
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.message_count == 2  # the note is not counted: customers see the count
    agent_view = (await api.get("/api/tickets/1", headers=headers)).json()
    assert [m["kind"] for m in agent_view["messages"]] == ["email", "note", "email"]
    customer = await _customer(api)
    customer_view = (await api.get("/api/tickets/1", headers=customer)).json()
    assert [m["kind"] for m in customer_view["messages"]] == ["email", "email"]
    assert all(m["delivery"] is None for m in customer_view["messages"])


async def _customer(api: httpx.AsyncClient, email: str = "jane@example.org") -> dict[str, str]:
    customer = await users.get_by_email(email)
    assert customer is not None
    customer.password_hash = hash_password(PASSWORD)
    await customer.save()
    return await login(api, email)


async def test_customers_see_no_triage_nor_assignment(gateway: Gateway, api: httpx.AsyncClient) -> None:
    """Issue 14, finding 13: customers saw priority, category, skills and the assignee's address."""
    await _ticket(gateway)
    admin = await _agent(api, "boss@example.com", Role.ADMIN)
    await users.create(actor=None, email="ann@example.com", role=Role.AGENT, password=PASSWORD, name="Ann")
    triage = {"assignee": "ann@example.com", "priority": "high", "category": "hardware"}
    assert (await api.patch("/api/tickets/1", json=triage, headers=admin)).status_code == 200
    await Ticket.get_pymongo_collection().update_one({"number": 1}, {"$set": {"skills": ["printers"]}})
    ann = await login(api, "ann@example.com")
    assert (await api.post("/api/tickets/1/replies", json={"text": "Unplug it."}, headers=ann)).status_code == 201
    customer = await _customer(api)

    staff_view = (await api.get("/api/tickets/1", headers=ann)).json()
    with forbid_in_responses(api, "ann@example.com", "hardware", "printers"):
        listed = (await api.get("/api/tickets", headers=customer)).json()["items"]
        detail = (await api.get("/api/tickets/1", headers=customer)).json()

    assert (staff_view["priority"], staff_view["category"], staff_view["skills"]) == ("high", "hardware", ["printers"])
    assert staff_view["assignee"] == {"email": "ann@example.com", "name": "Ann"}
    for ticket in (listed[0], detail):
        assert (ticket["priority"], ticket["category"], ticket["skills"], ticket["assignee"]) == (None, None, [], None)
    # Ann's reply reached the customer from the support address, and shows so: her name, not her address.
    assert detail["messages"][-1]["from"] == {"email": "help@acme.test", "name": "Ann"}
    for query in ({"priority": "high"}, {"category": "hardware"}, {"assignee": "none"}, {"sort": "priority"}):
        answer = await api.get("/api/tickets", params=query, headers=customer)
        assert answer.status_code == 403, query
        assert answer.json() == {"detail": "only agents and admins filter or sort by priority, category or assignee"}


async def test_customers_get_403_on_their_ticket_and_404_on_others(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _ticket(gateway)
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender="bob@example.org"), sender="bob@example.org")
    await gateway.worker.idle()
    jane = await _customer(api)

    for path, body in (
        ("/api/tickets/{n}/replies", {"text": "hi"}),
        ("/api/tickets/{n}/notes", {"text": "hi"}),
    ):
        own = await api.post(path.format(n=1), json=body, headers=jane)
        other = await api.post(path.format(n=2), json=body, headers=jane)
        assert own.status_code == 403 and own.json() == {"detail": "only agents and admins can do this"}
        assert other.status_code == 404 and other.json() == {"detail": "ticket 2 not found"}
    assert (await api.patch("/api/tickets/1", json={"status": "solved"}, headers=jane)).status_code == 403
    assert (await api.patch("/api/tickets/2", json={"status": "solved"}, headers=jane)).status_code == 404
    assert await OutboundMail.find_all().count() == 0


@pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}], indirect=True)  # the workflows mail
async def test_patch_assigns_and_solves_with_automatic_mail(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    await _ticket(gateway)
    assert gateway.workflows is not None
    await gateway.workflows.wait_idle(30)  # acknowledged; nobody to assign it to yet
    await sink.wait_for(1)
    sink.received.clear()
    headers = await _agent(api, "boss@example.com", Role.ADMIN)
    await make_user("ann@example.com", Role.AGENT)

    assigned = await api.patch(
        "/api/tickets/1",
        json={"assignee": "ann@example.com", "priority": "high", "category": "hardware"},
        headers=headers,
    )
    solved = await api.patch("/api/tickets/1", json={"status": "solved"}, headers=headers)

    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"] == {"email": "ann@example.com", "name": ""}
    assert assigned.json()["priority"] == "high" and assigned.json()["category"] == "hardware"
    assert solved.json()["status"] == "solved" and solved.json()["priority"] == "high"
    received = await sink.wait_for(4)  # and the welcome mails of the two accounts
    by_rcpt = {mail.rcpt_tos[0]: mail.message for mail in received if "Welcome" not in mail.message["Subject"]}
    to_agent, to_customer = by_rcpt["ann@example.com"], by_rcpt["jane@example.org"]
    assert to_agent["Subject"] == "Assigned to you: Printer on fire [#1]"
    assert to_agent["Auto-Submitted"] == "auto-replied" and to_agent["In-Reply-To"] is None
    assert "boss@example.com assigned ticket #1 to you" in _parts(to_agent)[0]
    assert to_customer["Subject"] == "Re: Printer on fire [#1]"
    assert to_customer["Auto-Submitted"] == "auto-replied"
    assert to_customer["In-Reply-To"] == "<first@example.org>"
    assert "is now solved" in _parts(to_customer)[0]


async def test_patch_rejects_unknown_assignee_and_null_status(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    customer = await api.patch("/api/tickets/1", json={"assignee": "jane@example.org"}, headers=headers)
    nobody = await api.patch("/api/tickets/1", json={"assignee": "nobody@example.com"}, headers=headers)
    null_status = await api.patch("/api/tickets/1", json={"status": None}, headers=headers)
    unknown_field = await api.patch("/api/tickets/1", json={"requester": "x@example.org"}, headers=headers)
    assert customer.status_code == 422 and "not an active agent or admin" in customer.json()["detail"]
    assert nobody.status_code == 422
    assert null_status.status_code == 422 and unknown_field.status_code == 422


@pytest.mark.parametrize("category", ["bill\ning", "bill\ring", "bell\x07", "tab\there", "nul\x00", "del\x7f"])
async def test_patch_rejects_control_characters_in_category(
    gateway: Gateway, api: httpx.AsyncClient, category: str
) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    response = await api.patch("/api/tickets/1", json={"category": category}, headers=headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "category"] and "no control characters" in error["msg"]
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.category is None
    kept = await api.patch("/api/tickets/1", json={"category": "  billing  "}, headers=headers)
    assert kept.status_code == 200 and kept.json()["category"] == "billing"


async def test_assigning_yourself_sends_nothing_and_unassign_works(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    mine = await api.patch("/api/tickets/1", json={"assignee": "agent@example.com"}, headers=headers)
    cleared = await api.patch("/api/tickets/1", json={"assignee": None}, headers=headers)
    assert mine.json()["assignee"]["email"] == "agent@example.com"
    assert cleared.json()["assignee"] is None
    assert await OutboundMail.find_all().count() == 0


async def test_ticket_shows_delivery_state_of_each_reply(
    gateway: Gateway, api: httpx.AsyncClient, sink: CaptureServer
) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    sent = (await api.post("/api/tickets/1/replies", json={"text": "one"}, headers=headers)).json()
    await wait_for_status(sent["message_id"], "sent")
    sink.handler.data_replies.append("550 5.7.1 Relaying denied for this address")
    failed = (await api.post("/api/tickets/1/replies", json={"text": "two"}, headers=headers)).json()
    await wait_for_status(failed["message_id"], "failed")

    messages = (await api.get("/api/tickets/1", headers=headers)).json()["messages"]

    inbound, first, second = messages
    assert inbound["delivery"] is None
    assert first["delivery"]["status"] == "sent" and first["delivery"]["smtp_reply"].startswith("250 ")
    assert first["delivery"]["attempts"] == 1 and first["delivery"]["sent_at"]
    assert second["delivery"]["status"] == "failed"
    assert second["delivery"]["smtp_reply"] == "550 5.7.1 Relaying denied for this address"
    assert "550 5.7.1" in second["delivery"]["reason"]


async def test_reply_can_leave_the_ticket_open(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    response = await api.post("/api/tickets/1/replies", json={"text": "more soon", "status": "open"}, headers=headers)
    assert response.status_code == 201
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.status is TicketStatus.OPEN


async def test_attachments_over_the_cap_are_413(gateway: Gateway, api: httpx.AsyncClient, settings: Settings) -> None:
    await _ticket(gateway)
    headers = await _agent(api)
    big = base64.b64encode(b"x" * (settings.max_reply_attachment_bytes + 1)).decode()
    response = await api.post(
        "/api/tickets/1/replies",
        json={"text": "file", "attachments": [{"filename": "big.bin", "content_base64": big}]},
        headers=headers,
    )
    bad = await api.post(
        "/api/tickets/1/replies",
        json={"text": "file", "attachments": [{"filename": "a.bin", "content_base64": "not base64!"}]},
        headers=headers,
    )
    assert response.status_code == 413 and "at most" in response.json()["detail"]
    assert bad.status_code == 422
    assert await OutboundMail.find_all().count() == 0
