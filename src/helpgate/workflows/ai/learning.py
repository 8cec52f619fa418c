"""The learned triage in the store: trained from the tickets staff reviewed, kept in one document every instance reads
(workflows/models/triage_model.py), read by triage at most every RECENT_SECONDS per process, and retrained by one
chain of workflow runs (workflows/functions/retrain.py) that `start_chain` starts when none is on schedule.

The labels are what staff left on a reviewed ticket (`Ticket.triage_review`: corrected, or solved as triaged), the
text is its first message as triage read it. learned.py trains and judges the classifier.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from helpgate.core.clock import aware, stored
from helpgate.core.recent import Recent
from helpgate.models import Message, Ticket
from helpgate.outbox import events
from helpgate.tickets import categories
from helpgate.tickets.categories import CategoryEntry
from helpgate.tickets.tickets import CONFIRMED, CORRECTED
from helpgate.workflows.ai.learned import MIN_EXAMPLES, PRIORITIES, Classifier, Example, learn
from helpgate.workflows.ai.triage import MAX_BODY_CHARS
from helpgate.workflows.models.triage_model import KEY, Facts, Trained, TriageModel

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5_000  # the most recently reviewed tickets trained on
RECENT_SECONDS = 10.0  # a model another instance trained reaches triage here within this
GRACE = timedelta(hours=1)  # a chain this late for its next training counts as gone: a start begins another
_BATCH = 500  # first messages read per query
_HEADER = {"model.trained_at": True, "model.answers": True}
_NOT_THE_WEIGHTS = {"model.terms": False, "model.idf": False, "model.category": False, "model.priority": False}


async def examples(limit: int = MAX_EXAMPLES) -> list[Example]:
    """The reviewed tickets with the category and priority staff left on them, most recently reviewed first."""
    reviewed = (
        await Ticket.get_pymongo_collection()
        .find(
            {"triage_review.outcome": {"$in": [CORRECTED, CONFIRMED]}},
            projection={"number": True, "subject": True, "origin_key": True, "triage_review": True},
        )
        .sort("triage_review.at", -1)
        .limit(limit)
        .to_list()
    )
    labelled = [
        doc
        for doc in reviewed
        if doc["triage_review"].get("category") and doc["triage_review"].get("priority") in PRIORITIES
    ]
    bodies: dict[str, str] = {}
    keys = [doc["origin_key"] for doc in labelled]
    for start in range(0, len(keys), _BATCH):
        found = Message.get_pymongo_collection().find(
            {"dedupe_key": {"$in": keys[start : start + _BATCH]}}, projection={"dedupe_key": True, "text": True}
        )
        bodies.update({doc["dedupe_key"]: doc.get("text", "") async for doc in found})
    return [
        Example(
            number=doc["number"],
            subject=doc["subject"],
            body=bodies.get(doc["origin_key"], "")[:MAX_BODY_CHARS],
            category=doc["triage_review"]["category"],
            priority=doc["triage_review"]["priority"],
        )
        for doc in labelled
    ]


async def retrain(*, now: datetime) -> dict[str, Any]:
    """Train on the reviewed tickets (off the event loop) and store the model; what happened, as JSON."""
    found = await examples()
    catalog = [CategoryEntry(each.name, each.description, tuple(each.keywords)) for each in await categories.catalog()]
    try:
        learnt = await asyncio.to_thread(learn, found, catalog)
    except Exception as error:  # a workflow step's edge: the chain goes on, the last model keeps answering
        log.exception("triage_model.training_failed reviewed=%d", len(found))
        return {"trained": False, "reviewed": len(found), "error": f"{type(error).__name__}: {error}"}
    if learnt is None:
        log.info("triage_model.not_trained reviewed=%d needed=%d", len(found), MIN_EXAMPLES)
        return {"trained": False, "reviewed": len(found)}
    model = learnt.to_stored(trained_at=stored(now))
    await TriageModel.get_pymongo_collection().update_one(
        {"key": KEY}, {"$set": {"model": model.model_dump()}}, upsert=True
    )
    MODELS.forget(_database())
    log.info(
        "triage_model.trained examples=%d held_out=%d category=%.3f keywords_category=%.3f priority=%.3f "
        "keywords_priority=%.3f answers=%s",
        learnt.examples,
        learnt.held_out,
        learnt.accuracy["category"],
        learnt.keywords["category"],
        learnt.accuracy["priority"],
        learnt.keywords["priority"],
        ",".join(learnt.answers) or "none",
    )
    return {"trained": True, "examples": learnt.examples, "held_out": learnt.held_out, "answers": list(learnt.answers)}


@dataclass(frozen=True)
class Active:
    """A stored model that answers at least one field, decoded."""

    classifier: Classifier
    answers: tuple[str, ...]
    about: str  # for the notes: when and on what it was trained, how it did


def _about(model: Trained) -> str:
    return (
        f"trained {model.trained_at:%Y-%m-%d} on {model.examples} reviewed tickets; on {model.held_out} held out, "
        f"category {model.category_accuracy:.0%} vs keywords {model.keywords_category_accuracy:.0%}, "
        f"priority {model.priority_accuracy:.0%} vs keywords {model.keywords_priority_accuracy:.0%}"
    )


class Models:
    """The stored model as triage reads it, per process and database: its header at most every `seconds`, the
    model itself decoded once per training."""

    def __init__(self, *, seconds: float = RECENT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._headers = Recent(self._header, seconds=seconds, clock=clock)
        self._decoded: dict[str, tuple[datetime, Active | None]] = {}

    @staticmethod
    async def _header() -> dict[str, Any] | None:
        return await TriageModel.get_pymongo_collection().find_one({"key": KEY}, projection=_HEADER)

    async def active(self, database: str) -> Active | None:
        header = await self._headers.get(database)
        model = (header or {}).get("model") or {}
        if not model.get("answers"):
            return None
        kept = self._decoded.get(database)
        if kept is not None and kept[0] == model["trained_at"]:
            return kept[1]
        document = await TriageModel.find_one({"key": KEY})
        stored_model = document.model if document is not None else None
        active = None
        if stored_model is not None and stored_model.answers:
            classifier = Classifier.from_stored(stored_model)  # None: trained by an older version, on other features
            if classifier is not None:
                active = Active(classifier, tuple(stored_model.answers), _about(stored_model))
        # Keyed by what was decoded: a model trained between the two reads is decoded again at the next look.
        self._decoded[database] = (stored_model.trained_at if stored_model else model["trained_at"], active)
        return active

    def forget(self, database: str) -> None:
        self._headers.forget(database)


MODELS = Models()


def _database() -> str:
    return str(TriageModel.get_pymongo_collection().database.name)


async def for_triage() -> Active | None:
    """The learned model when it answers a field (it beat the keyword tables), else None."""
    return await MODELS.active(_database())


@dataclass(frozen=True)
class State:
    next_training_at: datetime | None  # when the retraining chain trains next
    model: Facts | None  # the stored model's facts; None: none trained yet


async def state() -> State:
    """The stored schedule and model facts, without the weights."""
    found = await TriageModel.get_pymongo_collection().find_one({"key": KEY}, projection=_NOT_THE_WEIGHTS)
    if found is None:
        return State(None, None)
    due, model = found.get("next_training_at"), found.get("model")
    return State(aware(due) if due else None, Facts.model_validate(model) if model else None)


async def start_chain(*, now: datetime) -> str | None:
    """Start a retraining chain unless one is on schedule (its next training is not over GRACE late); the chain's id,
    or None. Instances starting together start one: the first to write the new chain's id emits its event."""
    collection = TriageModel.get_pymongo_collection()
    current = await collection.find_one({"key": KEY}, projection={"chain": True, "next_training_at": True})
    due = current.get("next_training_at") if current else None
    if current is not None and current.get("chain") and due is not None and aware(due) + GRACE > now:
        return None
    chain = uuid.uuid4().hex
    if current is None:
        try:
            await TriageModel(chain=chain, next_training_at=stored(now)).insert()
        except DuplicateKeyError:
            return None
    else:
        taken = await collection.update_one(
            {"key": KEY, "chain": current.get("chain"), "next_training_at": due},
            {"$set": {"chain": chain, "next_training_at": stored(now)}},
        )
        if not taken.modified_count:
            return None
    await events.emit(events.TRIAGE_RETRAIN, key=f"triage-retrain {chain}", data={"chain": chain})
    log.info("triage_model.chain_started chain=%s", chain)
    return chain


async def is_current(chain: str) -> bool:
    """Whether `chain` is the retraining chain on schedule (a later start replaced an older one)."""
    found = await TriageModel.get_pymongo_collection().find_one({"key": KEY}, projection={"chain": True})
    return found is not None and found.get("chain") == chain


async def schedule(chain: str, *, at: datetime) -> None:
    """The chain trains next at `at`."""
    await TriageModel.get_pymongo_collection().update_one(
        {"key": KEY, "chain": chain}, {"$set": {"next_training_at": stored(at)}}
    )
