"""A mail to the listener ends, with no further action, triaged, assigned, acknowledged and notified.

The whole gateway runs (SMTP listener, store, local runner, outbound worker), mail goes out to a
Mailtrap-like sink, and Gemini (or an OpenAI-compatible AI) is a local fake server driven through the real
google-genai (or openai) client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from helpgate.accounts import skills, users
from helpgate.accounts.skills import SkillEntry
from helpgate.audit import audit
from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.models import (
    AuditEntry,
    OutboundMail,
    OutboxEvent,
    Priority,
    Role,
    Ticket,
    TicketStatus,
    UnfinishedChange,
    User,
    WorkflowRun,
)
from helpgate.outbox import events
from helpgate.tickets import replies, tickets, unfinished
from helpgate.tickets.routing import RAISED
from helpgate.workflows.ai.triage import MAX_BODY_CHARS
from helpgate.workflows.functions.sla import SLEEP_STEP
from helpgate.workflows.local_step import step_key
from helpgate.workflows.step import Event
from tests.conftest import login, make_user
from tests.fake_gemini import FakeGemini, answer, running_fake_gemini
from tests.fake_openai import FakeOpenAI, running_fake_openai
from tests.fake_openai import answer as answer_openai
from tests.mail import make_mail, send
from tests.mail_capture import CaptureServer, wait_for_status

CATALOG = [
    SkillEntry("printers", "printer toner paper jam"),
    SkillEntry("billing", "invoice refund payment"),
]


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    """Parametrize to change more settings."""
    return {}


@pytest.fixture
def settings_overrides(sink: CaptureServer, extra_settings: dict[str, Any]) -> dict[str, Any]:
    return {**sink.settings(), "mail_from": "Acme Support <help@acme.test>", "run_workflows": True, **extra_settings}


async def _staff() -> tuple[User, User]:
    await skills.replace(CATALOG, actor=None)
    ann = await make_user("ann@acme.test", Role.AGENT)
    bob = await make_user("bob@acme.test", Role.AGENT)
    await User.get_pymongo_collection().update_one({"_id": ann.id}, {"$set": {"skills": ["printers"]}})
    await User.get_pymongo_collection().update_one({"_id": bob.id}, {"$set": {"skills": ["billing"]}})
    return ann, bob


async def _mail_in(gateway: Gateway, message: EmailMessage) -> Ticket:
    assert gateway.smtp is not None and gateway.workflows is not None
    await send(gateway.smtp.port, message)
    await gateway.worker.idle()
    await gateway.workflows.wait_idle(30)
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None
    return ticket


def _by_recipient(sink: CaptureServer) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for mail in sink.received:
        for rcpt in mail.rcpt_tos:
            found.setdefault(rcpt, []).append(mail.message)
    return found


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_mail_becomes_triaged_assigned_acknowledged_ticket(
    gateway: Gateway, sink: CaptureServer, api: httpx.AsyncClient
) -> None:
    ann, _bob = await _staff()
    await make_user("jane@example.org", Role.CUSTOMER)
    mail = make_mail(subject="Printer jam again", body="The printer in room 4 has a paper jam. Urgent please.")
    ticket = await _mail_in(gateway, mail)

    assert ticket.triage is not None and ticket.triage.source == "heuristic"
    assert ticket.triage.fallback_reason and "GEMINI_API_KEY" in ticket.triage.fallback_reason
    assert ticket.skills == ["printers"]
    assert ticket.priority is Priority.HIGH  # "urgent"
    assert ticket.assignee is not None and ticket.assignee.email == ann.email
    assert ticket.response_due_at is not None and ticket.assigned_at is not None

    as_agent = (await api.get("/api/tickets/1", headers=await login(api, ann.email))).json()
    as_customer = (await api.get("/api/tickets/1", headers=await login(api, "jane@example.org"))).json()
    assert as_agent["triage"]["source"] == "heuristic" and as_agent["triage"]["summary"]
    assert as_agent["response_due_at"] is not None
    assert as_customer["triage"] is None and as_customer["response_due_at"] is None

    await sink.wait_for(5)  # three welcomes, the acknowledgement, the notification
    received = _by_recipient(sink)
    [ack] = [mail for mail in received["jane@example.org"] if not mail["Subject"].startswith("Welcome")]
    assert ack["Subject"] == "Re: Printer jam again [#1]" and ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == mail["Message-ID"] and mail["Message-ID"] in ack["References"]  # threaded
    assert "opened ticket #1" in _text(ack)
    [note] = [mail for mail in received[ann.email] if not mail["Subject"].startswith("Welcome")]
    assert note["Subject"] == "Assigned to you: Printer jam again [#1]"
    assert "Automatic assignment" in _text(note) and "heuristic triage" in _text(note)
    assert "printers" in _text(note)  # the helpful notes name what decided
    assert not {event.status for event in await OutboxEvent.find_all().to_list()} - {"sent"}


async def test_triage_and_acknowledgement_take_what_ticket_created_carries_and_read_the_store_for_an_older_event(
    gateway: Gateway, sink: CaptureServer
) -> None:
    await _staff()
    ticket = await _mail_in(gateway, make_mail(subject="Paper jam", body="The printer in room 4 has a paper jam."))
    created = await OutboxEvent.find_one({"name": events.TICKET_CREATED})
    assert created is not None and ticket.id is not None
    opening = created.data[events.OPENING]
    assert opening["ticket"]["subject"] == "Paper jam" and "room 4 has a paper jam" in opening["text"]
    assert opening["ticket"]["requester"]["email"] == "jane@example.org" and opening["ticket"]["priority"] is None
    assert gateway.workflows is not None and gateway.workflows.runner is not None

    # The text comes from the event, not the store: for a ticket that is gone, it still classifies, records nothing.
    gone_id = str(PydanticObjectId())
    gone_ticket = {**opening["ticket"], "_id": gone_id, "id": gone_id, "subject": "Hi"}
    gone = {**created.data, "ticket_id": gone_id, events.OPENING: {"ticket": gone_ticket, "text": "ON FIRE"}}
    await gateway.workflows.runner.dispatch(Event(id="announced", name=events.TICKET_CREATED, data=gone))
    # An event of an older version carries no text: triage reads the ticket and its first message.
    older = {name: value for name, value in created.data.items() if name != events.OPENING}
    await Ticket.get_pymongo_collection().update_one({"_id": ticket.id}, {"$set": {"priority": None}})
    await gateway.workflows.runner.dispatch(Event(id="older", name=events.TICKET_CREATED, data=older))
    await gateway.workflows.wait_idle(30)

    announced = await WorkflowRun.find_one({"function_id": "triage-ticket", "event_id": "announced"})
    assert announced is not None and announced.output == {"source": "heuristic", "recorded": False}
    [classified] = [step["data"] for step in announced.steps.values() if step["id"] == "classify"]
    assert classified["triage"]["priority"] == "high" and classified["triage"]["skills"] == []  # "on fire"
    # The acknowledgement too takes the ticket as its event carried it.
    acknowledged = await WorkflowRun.find_one({"function_id": "acknowledge-customer", "event_id": "announced"})
    assert acknowledged is not None and acknowledged.output is not None and acknowledged.output["queued"] is True
    read = await WorkflowRun.find_one({"function_id": "triage-ticket", "event_id": "older"})
    assert read is not None and read.output is not None and read.output["recorded"] is True
    [classified] = [step["data"] for step in read.steps.values() if step["id"] == "classify"]
    assert classified["triage"]["skills"] == ["printers"]  # "paper jam", read from the stored first message


def test_ticket_created_carries_as_much_text_as_triage_reads() -> None:
    assert tickets.OPENING_TEXT_CHARS >= MAX_BODY_CHARS


async def test_redelivered_event_starts_nothing_twice(gateway: Gateway, sink: CaptureServer) -> None:
    await _staff()
    await _mail_in(gateway, make_mail())
    assert gateway.workflows is not None and gateway.workflows.runner is not None
    runs_before = await WorkflowRun.find_all().count()
    created = await OutboxEvent.find_one({"name": "ticket/created"})
    assert created is not None

    # Emitted again, as a use case retried after a crash emits it: its runs were started with it (by its key).
    await events.emit(created.name, key=created.key, data=created.data)
    # Delivered again by a relay (an event stored pending, by an instance that runs no workflows).
    await gateway.workflows.runner.dispatch(Event(id=created.key, name=created.name, data=created.data))
    await gateway.workflows.wait_idle(30)

    assert await WorkflowRun.find_all().count() == runs_before
    acknowledgements = await OutboundMail.find({"template": "ticket_acknowledgement"}).to_list()
    assert len(acknowledgements) == 1


async def test_automatic_mail_gets_no_acknowledgement(gateway: Gateway, sink: CaptureServer) -> None:
    await _staff()
    message = make_mail(subject="Out of office")
    message["Auto-Submitted"] = "auto-replied"
    ticket = await _mail_in(gateway, message)

    assert ticket.triage is not None  # still triaged and routed for an agent to see
    assert await OutboundMail.find({"template": "ticket_acknowledgement"}).count() == 0


async def test_ticket_without_matching_agent_goes_to_an_admin(gateway: Gateway, sink: CaptureServer) -> None:
    await skills.replace(CATALOG, actor=None)
    await make_user("ann@acme.test", Role.AGENT)  # no skills
    boss = await make_user("boss@acme.test", Role.ADMIN)
    ticket = await _mail_in(gateway, make_mail(subject="Refund", body="Please refund my last invoice."))

    assert ticket.skills == ["billing"]
    assert ticket.assignee is not None and ticket.assignee.email == boss.email


@pytest.mark.parametrize("extra_settings", [{"sla_medium_hours": 1 / 3600, "sla_low_hours": 1 / 3600}])
async def test_unanswered_ticket_is_escalated_and_admins_told(gateway: Gateway, sink: CaptureServer) -> None:
    boss = await make_user("boss@acme.test", Role.ADMIN)
    ticket = await _mail_in(gateway, make_mail(subject="Question", body="How do I change my shipping address?"))
    assert gateway.workflows is not None
    triaged = await OutboxEvent.find_one({"name": "ticket/triaged"})  # the ticket may be escalated already
    assert triaged is not None
    first_priority = Priority(triaged.data["priority"])

    for _ in range(100):
        escalated = await Ticket.get(ticket.id)
        if escalated is not None and escalated.escalated_at is not None:
            break
        await gateway.workflows.wait_idle(5)
    assert escalated is not None and escalated.escalated_at is not None
    assert first_priority is not Priority.HIGH and escalated.priority is RAISED[first_priority]
    mails = await OutboundMail.find({"template": "sla_escalation"}).to_list()
    assert [mail.to for mail in mails] == [[boss.email]]


@pytest.mark.parametrize("extra_settings", [{"sla_medium_hours": 60 / 3600, "sla_low_hours": 60 / 3600}])
async def test_agent_reply_cancels_escalation(gateway: Gateway, sink: CaptureServer) -> None:
    await make_user("boss@acme.test", Role.ADMIN)
    agent = await make_user("ann@acme.test", Role.AGENT)
    ticket = await _mail_in(gateway, make_mail(subject="Question", body="How do I change my shipping address?"))
    assert gateway.workflows is not None and ticket.priority is not Priority.HIGH
    outgoing = gateway.workflows.deps.outgoing

    _message, mail = await replies.reply(author=agent, number=ticket.number, text="Like this.", outgoing=outgoing)
    await gateway.workflows.wait_idle(10)
    await wait_for_status(mail.key, "sent")

    after = await Ticket.get(ticket.id)
    assert after is not None and after.escalated_at is None and after.priority is ticket.priority
    sla_runs = await WorkflowRun.find({"function_id": "sla-escalation"}).to_list()
    assert [run.status for run in sla_runs] == ["cancelled"]  # a cancelled run is never resumed


async def test_the_escalation_run_is_stored_asleep_until_the_target_and_not_executed_before(
    gateway: Gateway, sink: CaptureServer
) -> None:
    ticket = await _mail_in(gateway, make_mail(subject="Question", body="How do I change my shipping address?"))
    assert ticket.response_due_at is not None and ticket.response_due_at > utcnow()

    [run] = await WorkflowRun.find({"function_id": "sla-escalation"}).to_list()
    assert run.status == "sleeping" and run.next_run_at == ticket.response_due_at
    assert run.steps == {step_key(SLEEP_STEP): {"id": SLEEP_STEP, "wake_at": ticket.response_due_at}}
    assert run.claim is None and run.updated_at == run.created_at  # only inserted: never claimed nor suspended


async def test_new_agent_gets_a_welcome(gateway: Gateway, sink: CaptureServer) -> None:
    await users.create(
        actor=None, email="newbie@acme.test", role=Role.AGENT, password="long-enough-password", name="Newbie"
    )
    assert gateway.workflows is not None
    await gateway.workflows.wait_idle(10)
    [welcome] = await sink.wait_for(1)
    assert welcome.rcpt_tos == ["newbie@acme.test"] and "newbie@acme.test (agent)" in _text(welcome.message)


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    async with running_fake_gemini() as fake:
        yield fake


class TestWithGemini:
    @pytest.fixture
    def settings_overrides(self, sink: CaptureServer, fake_gemini: FakeGemini) -> dict[str, Any]:
        return {
            **sink.settings(),
            "run_workflows": True,
            "gemini_api_key": "test-key",
            "gemini_base_url": fake_gemini.base_url,
            "gemini_model": "gemini-test",
        }

    async def test_gemini_triage_lands_on_the_ticket(
        self, gateway: Gateway, sink: CaptureServer, fake_gemini: FakeGemini
    ) -> None:
        await _staff()
        fake_gemini.play(
            answer(
                {
                    "category": "billing",
                    "priority": "low",
                    "skills": ["billing", "admin"],
                    "summary": "Customer asks for a refund.",
                    "helpful_notes": "Check the last invoice.",
                    "language": "en",
                    "sentiment": "neutral",
                },
                input_tokens=321,
                output_tokens=45,
            )
        )
        ticket = await _mail_in(gateway, make_mail(subject="Money back", body="I want my money back."))

        assert ticket.triage is not None and ticket.triage.source == "gemini"
        assert ticket.triage.model == "gemini-test"
        assert (ticket.triage.input_tokens, ticket.triage.output_tokens) == (321, 45)
        assert ticket.category == "billing" and ticket.priority is Priority.LOW
        assert ticket.skills == ["billing"]  # "admin" is not in the catalog
        assert ticket.assignee is not None and ticket.assignee.email == "bob@acme.test"
        [request] = fake_gemini.requests
        assert request.headers["x-goog-api-key"] == "test-key" and "I want my money back." in request.body.decode()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with running_fake_openai() as fake:
        yield fake


class TestWithOpenAI:
    @pytest.fixture
    def settings_overrides(self, sink: CaptureServer, fake_openai: FakeOpenAI) -> dict[str, Any]:
        return {
            **sink.settings(),
            "run_workflows": True,
            "openai_base_url": f"{fake_openai.base_url}/v1",  # no GEMINI_API_KEY: the base URL chooses OpenAI
            "openai_api_key": "sk-test",
            "openai_model": "llama-test",
        }

    async def test_openai_triage_lands_on_the_ticket(
        self, gateway: Gateway, sink: CaptureServer, fake_openai: FakeOpenAI
    ) -> None:
        await _staff()
        triage = {
            "category": "billing",
            "priority": "high",
            "skills": ["billing"],
            "summary": "Customer asks for a refund.",
            "helpful_notes": "Check the last invoice.",
            "language": "en",
            "sentiment": "negative",
        }
        fake_openai.play(answer_openai(triage, input_tokens=210, output_tokens=33))
        ticket = await _mail_in(gateway, make_mail(subject="Money back", body="I want my money back."))

        assert ticket.triage is not None and ticket.triage.source == "openai"
        assert (ticket.triage.model, ticket.triage.input_tokens, ticket.triage.output_tokens) == ("llama-test", 210, 33)
        assert ticket.category == "billing" and ticket.priority is Priority.HIGH
        assert ticket.assignee is not None and ticket.assignee.email == "bob@acme.test"
        [request] = fake_openai.requests
        assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer sk-test"
        assert "I want my money back." in request.json()["messages"][1]["content"]


async def test_an_assignment_notice_is_not_sent_once_someone_else_has_the_ticket(
    gateway: Gateway, sink: CaptureServer
) -> None:
    ann, bob = await _staff()
    ticket = await _mail_in(gateway, make_mail(subject="Printer jam again"))
    assert ticket.assignee is not None and ticket.assignee.email == ann.email
    assert gateway.workflows is not None and gateway.workflows.runner is not None
    # A notice for Bob that runs only after the ticket went back to Ann (as after a delay or a crash).
    late = {**tickets.ticket_ref(ticket), "assignee_id": str(bob.id), "by": None, "reason": "test"}
    await gateway.workflows.runner.dispatch(Event(id="late-notice", name=events.TICKET_ASSIGNED, data=late))
    await gateway.workflows.wait_idle(30)

    run = await WorkflowRun.find_one({"function_id": "notify-agent", "event_id": "late-notice"})
    assert run is not None and run.output == {
        "queued": False,
        "reason": "assigned to someone else meanwhile: they are told",
    }
    notices = await OutboundMail.find({"template": "ticket_assigned"}).to_list()
    assert [mail.to for mail in notices] == [[ann.email]]


@pytest.mark.parametrize("extra_settings", [{"run_workflows": False}])
async def test_ticket_mail_is_sent_by_the_workflows_and_not_for_a_ticket_reopened_before_they_ran(
    gateway: Gateway, sink: CaptureServer, api: httpx.AsyncClient
) -> None:
    # This instance runs no workflows: its requests change tickets and announce it, and mail nobody.
    assert gateway.smtp is not None and gateway.workflows is None
    await send(gateway.smtp.port, make_mail(subject="Printer jam again"))
    await gateway.worker.idle()
    await make_user("boss@acme.test", Role.ADMIN)
    headers = await login(api, "boss@acme.test")
    for status in ("solved", "open"):  # reopened before any workflow ran
        changed = await api.patch("/api/tickets/1", json={"status": status}, headers=headers)
        assert changed.status_code == 200, changed.text
    assert await OutboundMail.find_all().count() == 0
    assert await OutboxEvent.find({"name": events.TICKET_SOLVED}).count() == 1

    await gateway.stop()

    other = Gateway(gateway.settings.model_copy(update={"run_workflows": True}))  # one that runs them
    await other.start()
    try:
        assert other.workflows is not None
        await other.workflows.wait_idle(30)
        solved = await WorkflowRun.find_one({"function_id": "tell-customer-solved"})
        assert solved is not None
        assert solved.output == {"queued": False, "reason": "open again before the mail went out"}
        templates = sorted(mail.template for mail in await OutboundMail.find_all().to_list())
        assert templates == ["ticket_acknowledgement", "ticket_assigned", "welcome"]  # the admin took it: no agent
    finally:
        await other.stop()


@pytest.mark.parametrize("extra_settings", [{"run_workflows": False}])
async def test_a_change_cut_off_before_its_announcement_is_announced_once_when_the_client_retries(
    gateway: Gateway, sink: CaptureServer, api: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(subject="Printer jam again"))
    await gateway.worker.idle()
    await make_user("boss@acme.test", Role.ADMIN)
    ann = await make_user("ann@acme.test", Role.AGENT)
    headers = await login(api, "boss@acme.test")
    change = {"status": "solved", "assignee": ann.email}
    first = await api.patch("/api/tickets/1", json=change, headers=headers)
    assert first.status_code == 200, first.text
    # The request wrote the ticket and was cut off before its events were stored (its instance was killed).
    for name in (events.TICKET_SOLVED, events.TICKET_ASSIGNED):
        await OutboxEvent.find({"name": name}).delete()

    for _retry in range(2):  # the client retries, twice
        again = await api.patch("/api/tickets/1", json=change, headers=headers)
        assert again.status_code == 200, again.text

    assert await OutboxEvent.find({"name": events.TICKET_SOLVED}).count() == 1
    [assigned] = await OutboxEvent.find({"name": events.TICKET_ASSIGNED}).to_list()
    assert assigned.data["assignee_id"] == str(ann.id) and assigned.data["by"] is not None
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.solved_at is not None


async def test_a_change_cut_off_after_its_write_is_audited_and_announced_once_by_the_finisher(
    gateway: Gateway, sink: CaptureServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gateway.smtp is not None and gateway.workflows is not None
    await send(gateway.smtp.port, make_mail(subject="Printer jam again"))
    await gateway.worker.idle()
    await gateway.workflows.wait_idle(30)
    await make_user("boss@acme.test", Role.ADMIN)
    ann = await make_user("ann@acme.test", Role.AGENT)
    headers = await login(api, "boss@acme.test")

    async def cut_off(**_kwargs: Any) -> None:  # the instance stops right after the ticket's write
        raise ConnectionError("cut off")

    monkeypatch.setattr(audit, "record", cut_off)
    failed = await api.patch("/api/tickets/1", json={"status": "solved", "assignee": ann.email}, headers=headers)
    assert failed.status_code == 500
    monkeypatch.undo()
    ticket = await Ticket.find_one({"number": 1})
    assert ticket is not None and ticket.status is TicketStatus.SOLVED and ticket.assignee is not None
    assert await AuditEntry.find({"action": "ticket.updated"}).count() == 0
    assert await OutboxEvent.find({"name": events.TICKET_SOLVED}).count() == 0
    # A change whose write never happened (its request failed before it) leaves a record that is discarded.
    never = UnfinishedChange(ticket_id=ticket.id, number=1, at=utcnow(), actor_email="boss@acme.test")
    await never.insert()

    assert await unfinished.finish(now=utcnow()) == 0  # younger than GRACE: maybe still in progress
    later = utcnow() + unfinished.GRACE * 2
    assert await unfinished.finish(now=later) == 1
    assert await unfinished.finish(now=later) == 0  # finished once
    await gateway.workflows.wait_idle(30)

    [entry] = await AuditEntry.find({"action": "ticket.updated"}).to_list()
    assert entry.actor_email == "boss@acme.test" and entry.changes == {"status": "solved", "assignee": ann.email}
    assert await OutboxEvent.find({"name": events.TICKET_SOLVED}).count() == 1
    [assigned] = await OutboxEvent.find({"name": events.TICKET_ASSIGNED, "data.by": {"$ne": None}}).to_list()
    assert assigned.data["assignee_id"] == str(ann.id)
    assert await UnfinishedChange.find_all().count() == 0
    notices = await OutboundMail.find({"template": {"$in": ["ticket_assigned", "ticket_solved"]}}).to_list()
    assert sorted(mail.template for mail in notices) == ["ticket_assigned", "ticket_solved"]


async def test_an_automatic_assignment_cut_off_before_its_announcement_is_announced_when_retried(
    gateway: Gateway, sink: CaptureServer
) -> None:
    ann, _bob = await _staff()
    ticket = await _mail_in(gateway, make_mail(subject="Printer jam again"))
    assert ticket.assignee is not None and ticket.assignee.email == ann.email
    assert gateway.workflows is not None and gateway.workflows.runner is not None
    # The assignment was written, its announcement never stored: the step runs again (a retry after a crash).
    await OutboxEvent.find({"name": events.TICKET_ASSIGNED}).delete()
    await WorkflowRun.find({"function_id": "notify-agent"}).delete()  # the runs it would have started
    await OutboundMail.find({"template": "ticket_assigned"}).delete()
    triaged = await OutboxEvent.find_one({"name": events.TICKET_TRIAGED})
    assert triaged is not None
    await gateway.workflows.runner.dispatch(Event(id="retried", name=triaged.name, data=triaged.data))
    await gateway.workflows.wait_idle(30)

    [assigned] = await OutboxEvent.find({"name": events.TICKET_ASSIGNED}).to_list()
    assert assigned.data["assignee_id"] == str(ann.id) and assigned.data["by"] is None
    notices = await OutboundMail.find({"template": "ticket_assigned"}).to_list()
    assert [mail.to for mail in notices] == [[ann.email]]
