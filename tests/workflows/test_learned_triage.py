"""The learned triage on the real store: trained from the tickets staff reviewed, stored as data, answering where
the keyword tables would once it beats them on held-out tickets, and retrained by a chain of runs that reschedules
itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.models import Message, OutboxEvent, RunStatus, Ticket, TriageModel, WorkflowRun
from helpgate.outbox import events
from helpgate.tickets import categories
from helpgate.tickets.categories import DEFAULTS
from helpgate.workflows.ai import learning
from helpgate.workflows.ai.learned import MIN_EXAMPLES
from helpgate.workflows.ai.triage import TicketText
from helpgate.workflows.ai.triaging import triage_ticket
from helpgate.workflows.functions.retrain import retrain_triage
from helpgate.workflows.runner import LocalRunner
from helpgate.workflows.step import Event
from tests.reviewed import BILLING_TICKETS, PRINTER_TICKETS, PRINTERS, mixed, reviewed

Store = AsyncMongoClient[dict[str, Any]]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def test_the_model_answers_as_learned_once_it_beats_the_keyword_tables(store: Store) -> None:
    await categories.replace([*DEFAULTS, PRINTERS], actor=None)
    await reviewed(mixed())

    trained = await learning.retrain(now=utcnow())

    # The keyword tables call printer tickets "other", and so low: the agents left them medium.
    assert trained == {"trained": True, "examples": 48, "held_out": 12, "answers": ["category", "priority"]}
    state = await learning.state()
    assert state.model is not None
    assert state.model.category_accuracy > state.model.keywords_category_accuracy  # the keywords never say printers
    learned = await learning.for_triage()
    assert learned is not None and learned.answers == ("category", "priority")
    ticket = TicketText(99, "Printer in the lobby", "The lobby printer has a paper jam again.", "c@example.com")
    catalog = [*DEFAULTS, PRINTERS]
    outcome = await triage_ticket(ticket, [], None, catalog, learned=learned)
    assert (outcome.source, outcome.triage.category, outcome.triage.priority) == ("learned", "printers", "medium")
    assert outcome.triage.helpful_notes.startswith("Learned triage (trained ")
    keywords = await triage_ticket(ticket, [], None, catalog)
    assert (keywords.source, keywords.triage.category, keywords.triage.priority) == ("heuristic", "other", "low")


async def test_the_keyword_tables_answer_until_the_model_beats_them(store: Store) -> None:
    await reviewed([(*row, "printers") for row in PRINTER_TICKETS[: MIN_EXAMPLES - 1]])

    assert await learning.retrain(now=utcnow()) == {"trained": False, "reviewed": MIN_EXAMPLES - 1}
    assert await learning.for_triage() is None

    await Ticket.get_pymongo_collection().delete_many({})
    await Message.get_pymongo_collection().delete_many({})
    await reviewed([(*row, "billing") for row in BILLING_TICKETS])  # the keyword tables get every one right

    trained = await learning.retrain(now=utcnow())

    assert trained["trained"] is True and trained["answers"] == []  # as good is not better
    assert await learning.for_triage() is None


async def test_the_model_is_stored_as_data_and_a_new_process_reads_the_same_one(store: Store) -> None:
    await categories.replace([*DEFAULTS, PRINTERS], actor=None)
    await reviewed(mixed())
    await learning.retrain(now=utcnow())
    before = await learning.for_triage()
    assert before is not None

    raw = await TriageModel.get_pymongo_collection().find_one({"key": "triage"})
    assert raw is not None
    model = raw["model"]
    terms = model["terms"].split("\n")
    assert len(np.frombuffer(model["idf"], dtype="<f4")) == len(terms)  # numbers and words, nothing to unpickle
    head = model["category"]
    assert len(np.frombuffer(head["weights"], dtype="<f4")) % len(head["classes"]) == 0

    restarted = learning.Models()  # as a new process finds it: nothing cached
    after = await restarted.active(str(TriageModel.get_pymongo_collection().database.name))
    assert after is not None and after is not before and after.answers == before.answers
    catalog = [*DEFAULTS, PRINTERS]
    for subject, body in [("Toner", "The toner on floor 9 is empty."), ("Refund", "Please refund invoice 7.")]:
        assert after.classifier.predict(subject, body, catalog) == before.classifier.predict(subject, body, catalog)


async def test_the_retrain_chain_trains_sleeps_and_sends_its_next_run_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reviewed(mixed())
    every = timedelta(hours=24)
    runner = LocalRunner([retrain_triage(every)], sweep_interval=0.1, lease=timedelta(seconds=3))
    undispatch = events.dispatch_on_emit(lambda id, name, data: runner.dispatch(Event(id=id, name=name, data=data)))
    await runner.start()
    try:
        chain = await learning.start_chain(now=utcnow())
        assert chain is not None
        assert await learning.start_chain(now=utcnow()) is None  # another instance starting: one chain

        async def runs(*statuses: RunStatus) -> list[WorkflowRun]:
            found = await WorkflowRun.find({"function_id": "retrain-triage"}).sort("created_at").to_list()
            return found if [run.status for run in found] == list(statuses) else []

        await until(lambda: _truthy(runs(RunStatus.SLEEPING)))
        first = (await learning.state()).model
        assert first is not None and first.examples == 48

        later = utcnow() + every + timedelta(seconds=1)  # a day on: the sleep is over
        for module in ("runner", "local_step", "functions.retrain"):
            monkeypatch.setattr(f"helpgate.workflows.{module}.utcnow", lambda: later)
        runner.wake()
        await until(lambda: _truthy(runs(RunStatus.COMPLETED, RunStatus.SLEEPING)))
    finally:
        undispatch()
        await runner.stop(1.0)

    assert await OutboxEvent.find({"name": events.TRIAGE_RETRAIN}).count() == 2  # the start, then the first run's
    second = (await learning.state()).model
    assert second is not None and second.trained_at > first.trained_at
    state = await learning.state()
    assert state.next_training_at is not None and state.next_training_at > later
    assert await learning.start_chain(now=later) is None  # on schedule: a restart starts nothing


async def test_a_chain_a_later_start_replaced_stops_at_its_next_turn(store: Store) -> None:
    await reviewed(mixed())
    old = await learning.start_chain(now=utcnow() - timedelta(days=3))
    assert old is not None
    new = await learning.start_chain(now=utcnow())  # the old one is days late: gone
    assert new is not None and new != old

    runner = LocalRunner([retrain_triage()], sweep_interval=0.1, lease=timedelta(seconds=3))
    await runner.start()
    try:
        await runner.dispatch(Event(id="late", name=events.TRIAGE_RETRAIN, data={"chain": old}))
        await runner.wait_idle(20.0)
    finally:
        await runner.stop(1.0)

    run = await WorkflowRun.find_one({"function_id": "retrain-triage"})
    assert run is not None and run.status is RunStatus.COMPLETED and run.output == {"superseded": True}
    assert (await learning.state()).model is None  # it trained nothing and scheduled nothing after itself


async def _truthy(found: Awaitable[list[Any]]) -> bool:
    return bool(await found)
