"""GET /api/reports/dashboard: the numbers the console's dashboard draws, from tickets worked through the API."""

from __future__ import annotations

from datetime import timedelta

import httpx

from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.models import Role, Ticket
from helpgate.tickets import reports
from helpgate.tickets.reports import Durations
from tests.conftest import make_user
from tests.mail import make_mail, send


def test_durations_are_the_median_and_the_nearest_rank_90th_percentile() -> None:
    assert Durations.of([]) == Durations(count=0, median=None, p90=None)
    assert Durations.of([30.0]) == Durations(count=1, median=30.0, p90=30.0)
    assert Durations.of([float(n) for n in range(10, 0, -1)]) == Durations(count=10, median=5.5, p90=9.0)
    assert Durations.of([float(n) for n in range(1, 12)]).p90 == 10.0  # rank ceil(0.9 * 11) = 10


async def test_the_dashboard_counts_what_happened_to_the_tickets(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    await make_user("sam@example.com", Role.AGENT)
    for number in range(3):
        await send(gateway.smtp.port, make_mail(subject=f"Question {number}"))
    await gateway.worker.idle()
    replied = await api.post("/api/tickets/1/replies", json={"text": "Here you go.", "status": "open"}, headers=admin)
    assert replied.status_code == 201
    assert (await api.patch("/api/tickets/2", json={"status": "solved"}, headers=admin)).status_code == 200
    assigned = await api.patch(
        "/api/tickets/3", json={"assignee": "sam@example.com", "priority": "high"}, headers=admin
    )
    assert assigned.status_code == 200

    answer = await api.get("/api/reports/dashboard", params={"days": 7}, headers=admin)
    assert answer.status_code == 200, answer.text
    board = answer.json()
    assert len(board["days"]) == 7
    assert board["days"][-1] == {"day": utcnow().date().isoformat(), "opened": 3, "solved": 1}
    assert sum(day["opened"] for day in board["days"][:-1]) == 0
    assert board["backlog"]["new"] == {"high": 1, "medium": 0, "low": 0, "none": 0}
    assert board["backlog"]["open"] == {"high": 0, "medium": 0, "low": 0, "none": 1}
    assert board["first_response"]["count"] == 1 and board["first_response"]["median_seconds"] >= 0
    assert board["resolution"]["count"] == 1 and board["resolution"]["p90_seconds"] >= 0
    assert board["sla_breaches"] == 0
    assert board["load"][0] == {"email": "sam@example.com", "name": "", "open": 1, "away": False}
    assert board["triage_sources"] == {"untriaged": 3}  # no workflows ran here


async def test_a_first_response_later_than_its_target_or_missing_past_it_is_a_breach(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    for number in range(3):
        await send(gateway.smtp.port, make_mail(subject=f"Urgent {number}"))
    await gateway.worker.idle()
    now = utcnow()
    await api.post("/api/tickets/1/replies", json={"text": "Late answer."}, headers=admin)
    # Targets as triage would set them: #1 answered after its target, #2 due tomorrow, #3 due an hour ago.
    for number, due in ((1, now - timedelta(hours=2)), (2, now + timedelta(days=1)), (3, now - timedelta(hours=1))):
        await Ticket.find_one({"number": number}).update({"$set": {"response_due_at": due}})

    viewer = await make_user("boss@example.com", Role.ADMIN)
    board = await reports.dashboard(viewer=viewer, now=now)
    assert board.sla_breaches == 2
    assert (await reports.dashboard(viewer=viewer, now=now + timedelta(days=2))).sla_breaches == 3
