"""What staff make of triage is kept on the ticket and measured: changing a triaged category, priority or skills
is a correction (what triage said stays from the first one), solving a ticket as triaged a confirmation; GET
/api/triage/quality counts them per source and week."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from helpgate.core.clock import utcnow, week_of
from helpgate.gateway import Gateway
from helpgate.models import Role, Ticket
from tests.conftest import login, make_user
from tests.mail import make_mail, send

pytestmark = pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}])


async def triaged(count: int) -> list[Ticket]:
    async with asyncio.timeout(30):
        while True:
            found = await Ticket.find().sort("number").to_list()
            if len(found) == count and all(ticket.triage is not None for ticket in found):
                return found
            await asyncio.sleep(0.1)


async def test_corrections_and_confirmations_are_kept_and_counted(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    put = await api.put("/api/skills", json=[{"name": "printers"}], headers=admin)
    assert put.status_code == 200
    for subject in ("Invoice charged twice", "Question about my account", "Thanks for the help"):
        await send(gateway.smtp.port, make_mail(subject=subject, body=subject))
    first, second, third = await triaged(3)

    same: dict[str, Any] = {"category": first.category}
    assert (await api.patch("/api/tickets/1", json=same, headers=agent)).status_code == 200  # nothing corrected
    other = "shipping" if second.category != "shipping" else "sales"  # a category triage did not give
    changed = {"category": other, "priority": "high"}
    assert (await api.patch("/api/tickets/2", json=changed, headers=agent)).status_code == 200
    assert (await api.patch("/api/tickets/2", json={"skills": ["printers"]}, headers=agent)).status_code == 200
    assert (await api.patch("/api/tickets/3", json={"status": "solved"}, headers=agent)).status_code == 200
    assert (await api.patch("/api/tickets/3", json={"status": "open"}, headers=agent)).status_code == 200
    assert (await api.patch("/api/tickets/3", json={"status": "solved"}, headers=agent)).status_code == 200
    unknown = await api.patch("/api/tickets/1", json={"skills": ["juggling"]}, headers=agent)
    assert unknown.status_code == 422 and "unknown skills: juggling" in unknown.text

    reviewed = {ticket.number: ticket.triage_review for ticket in await Ticket.find().to_list()}
    assert reviewed[1] is None
    review = reviewed[2]
    assert review is not None and review.outcome == "corrected" and review.by_email == "agent@example.com"
    assert (review.said_category, review.said_priority, review.said_skills) == (
        second.category,
        str(second.priority) if second.priority else None,
        second.skills,
    )
    assert (review.category, review.priority, review.skills) == (other, "high", ["printers"])
    assert reviewed[3] is not None and reviewed[3].outcome == "confirmed" and reviewed[3].source == "heuristic"

    answer = await api.get("/api/triage/quality", params={"weeks": 2}, headers=admin)
    assert answer.status_code == 200, answer.text
    quality = answer.json()
    kept_priority = 2 if second.priority == "high" else 1
    kept = {"reviewed": 2, "corrected": 1, "category_kept": 1, "priority_kept": kept_priority}
    assert quality["by_source"] == {"heuristic": kept}
    assert quality["weeks"] == [{"source": "heuristic", "week": week_of(utcnow()), **kept}]
    assert quality["confusion"][third.category or "none"][third.category or "none"] >= 1
    assert quality["confusion"][second.category or "none"].get(other) == 1
