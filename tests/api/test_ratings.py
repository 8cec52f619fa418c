"""Customers rate the answer: the solved mail carries signed links to a page that records nothing when opened;
its form records the rating (again: replaced); a forged or expired link is refused; admins get the ratings per
agent and week."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest

from helpgate.core.clock import utcnow, week_of
from helpgate.core.errors import NotFound
from helpgate.gateway import Gateway
from helpgate.models import OutboundMail, Role, Ticket
from helpgate.tickets import ratings
from tests.conftest import login, make_user
from tests.mail import make_mail, send

pytestmark = pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}])


async def solved_mail() -> OutboundMail:
    async with asyncio.timeout(30):
        while (mail := await OutboundMail.find_one({"template": "ticket_solved"})) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return mail


async def test_a_customer_rates_the_answer_from_the_solved_mail(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    await make_user("sam@example.com", Role.AGENT)
    agent = await login(api, "sam@example.com")
    await send(gateway.smtp.port, make_mail(subject="Printer jammed"))
    await gateway.worker.idle()
    assert (await api.patch("/api/tickets/1", json={"assignee": "sam@example.com"}, headers=agent)).status_code == 200
    assert (await api.patch("/api/tickets/1", json={"status": "solved"}, headers=agent)).status_code == 200

    mail = await solved_mail()
    good = re.search(r"Good:\s+\S+(/rate/\S+)", mail.text)
    bad = re.search(r"Not good:\s+\S+(/rate/\S+)", mail.text)
    assert good is not None and bad is not None and 'href="' in mail.html
    page = await api.get(bad.group(1))  # what a mail scanner does too: nothing is recorded
    assert page.status_code == 200 and 'id="score-bad" checked' in page.text
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.rating is None

    token = bad.group(1).split("/rate/")[1].split("?")[0]
    headers = {"Sec-Fetch-Site": "same-origin"}
    rated = await api.post(f"/rate/{token}", data={"score": "bad", "comment": "Took a week."}, headers=headers)
    assert rated.status_code == 200 and 'id="rated"' in rated.text
    again = await api.post(f"/rate/{token}", data={"score": "good", "comment": ""}, headers=headers)
    assert again.status_code == 200
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.rating is not None
    assert (ticket.rating.score, ticket.rating.comment, ticket.rating.agent_email) == ("good", "", "sam@example.com")

    forged = token.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
    assert (await api.post(f"/rate/{forged}", data={"score": "bad"}, headers=headers)).status_code == 404
    other_ticket = "2" + token[token.index(".") :]
    assert (await api.get(f"/rate/{other_ticket}")).status_code == 404
    with pytest.raises(NotFound):
        ratings.ticket_of(token, secret=gateway.load_secret_key(), now=utcnow() + timedelta(days=ratings.LINK_DAYS + 1))
    cross_site = await api.post(f"/rate/{token}", data={"score": "bad"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403

    report = await api.get("/api/reports/satisfaction", params={"weeks": 1}, headers=admin)
    assert report.status_code == 200, report.text
    assert report.json()["by_agent"] == {"sam@example.com": {"good": 1, "bad": 0, "comments": 0}}
    assert report.json()["weeks"] == [
        {"agent": "sam@example.com", "week": week_of(utcnow()), "good": 1, "bad": 0, "comments": 0}
    ]
