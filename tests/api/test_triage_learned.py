"""The learned triage in a running gateway: its retraining chain starts with the gateway, a trained model triages new
mail where the keyword tables would (no AI configured), and GET /api/triage/quality shows it: its state, and the
tickets it triaged per source."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.models import OutboxEvent, Role, RunStatus, Ticket, WorkflowRun
from helpgate.outbox import events
from helpgate.tickets import categories
from helpgate.tickets.categories import DEFAULTS
from helpgate.workflows.ai import learning
from tests.conftest import login, make_user
from tests.mail import make_mail, send
from tests.reviewed import PRINTERS, mixed, reviewed

pytestmark = pytest.mark.parametrize("settings_overrides", [{"run_workflows": True, "triage_retrain_hours": 24}])


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(30):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def sleeping_chain() -> bool:
    runs = await WorkflowRun.find({"function_id": "retrain-triage"}).to_list()
    return [run.status for run in runs] == [RunStatus.SLEEPING]


async def triaged_ticket() -> bool:
    ticket = await Ticket.find_one({"number": 1})
    return ticket is not None and ticket.triage is not None


async def test_new_mail_is_triaged_as_learned_and_the_quality_report_shows_it(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    await until(sleeping_chain)  # started with the gateway: nothing to train on yet, asleep till tomorrow
    assert await OutboxEvent.find({"name": events.TRIAGE_RETRAIN}).count() == 1
    before = (await api.get("/api/triage/quality", headers=admin)).json()["learned"]
    assert before["trained_at"] is None and before["answers"] == [] and before["next_training_at"] is not None

    await categories.replace([*DEFAULTS, PRINTERS], actor=None)
    await reviewed(mixed(), first=1001)
    await learning.retrain(now=utcnow())  # as the chain's next turn does
    await send(gateway.smtp.port, make_mail(subject="Printer", body="The printer in the lobby has a paper jam."))
    await until(triaged_ticket)
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.triage is not None
    assert (ticket.triage.source, ticket.category, str(ticket.priority)) == ("learned", "printers", "medium")

    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    assert (await api.patch("/api/tickets/1", json={"priority": "high"}, headers=agent)).status_code == 200
    answer = await api.get("/api/triage/quality", headers=admin)
    assert answer.status_code == 200, answer.text
    quality = answer.json()
    assert quality["by_source"]["learned"] == {"reviewed": 1, "corrected": 1, "category_kept": 1, "priority_kept": 0}
    learned = quality["learned"]
    assert (learned["examples"], learned["held_out"], learned["answers"]) == (48, 12, ["category", "priority"])
    assert learned["category_accuracy"] > learned["keywords_category_accuracy"]
