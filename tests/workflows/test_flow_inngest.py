"""With Inngest configured, the gateway serves its functions at /api/inngest and its relay sends the outbox there.

The Inngest server cannot run here, so this test plays it: a fake event API takes what the relay sends, and
the test calls /api/inngest the way the server would, feeding back memoised step results.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from helpgate.accounts import skills
from helpgate.accounts.skills import SkillEntry
from helpgate.gateway import Gateway
from helpgate.models import OutboxEvent, Role, Ticket
from helpgate.outbox import events
from tests.conftest import make_user
from tests.fake_inngest import FakeInngest, execute, memoise, request_body
from tests.mail import make_mail, send


@pytest.fixture
def settings_overrides(fake_inngest: FakeInngest) -> dict[str, Any]:
    return {"run_workflows": True, "inngest_dev": "1", "inngest_base_url": fake_inngest.base_url}


async def _sent_event(fake: FakeInngest, name: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _key, batch in fake.events:
            for event in batch:
                if event["name"] == name:
                    return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} event reached Inngest; got {fake.events}")


async def _run(api: httpx.AsyncClient, fn_id: str, event: dict[str, Any]) -> Any:
    """Drive one function run to its end, as the Inngest server does."""
    steps: dict[str, Any] = {}
    for _ in range(10):
        response = await execute(api, f"helpgate-{fn_id}", request_body(event, run_id=f"run-{fn_id}", steps=steps))
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 206, response.text
        memoise(steps, response.json())
    raise AssertionError(f"{fn_id} did not finish")


async def test_mail_runs_through_inngest(gateway: Gateway, api: httpx.AsyncClient, fake_inngest: FakeInngest) -> None:
    assert gateway.workflows is not None and gateway.workflows.back_end == "inngest"
    assert gateway.workflows.runner is None
    introspection = await api.get("/api/inngest")
    assert introspection.status_code == 200 and introspection.json()["function_count"] == 8
    await skills.replace([SkillEntry("printers", "printer toner paper jam")], actor=None)
    ann = await make_user("ann@acme.test", Role.AGENT)
    await ann.set({"skills": ["printers"]})

    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(subject="Help please", body="The printer has a paper jam."))
    await gateway.worker.idle()
    created = await _sent_event(fake_inngest, "ticket/created")
    stored = await OutboxEvent.find_one({"name": "ticket/created"})
    assert stored is not None and created["id"] == str(stored.id)  # Inngest dedupes on the outbox id
    # The customer's text stays in this store: Inngest's triage reads the ticket (its skills come from the body).
    assert "paper jam" in stored.data[events.OPENING]["text"] and events.OPENING not in created["data"]

    result = await _run(api, "triage-ticket", created)
    assert result["source"] == "heuristic" and result["recorded"] is True
    triaged = await _sent_event(fake_inngest, "ticket/triaged")
    assigned = await _run(api, "assign-ticket", triaged)

    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.skills == ["printers"]
    assert assigned["assignee"] == ann.email and ticket.assignee is not None and ticket.assignee.email == ann.email
    again = await _run(api, "assign-ticket", triaged)  # a retried run changes nothing
    assert again["assignee"] is None and "already assigned" in again["reason"]
