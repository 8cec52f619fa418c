"""triage-ticket: on a new ticket, decide category, priority and skills (the AI provider, else the heuristic)."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from helpgate.accounts import skills
from helpgate.models import Priority, Ticket, TriageRecord
from helpgate.outbox import events
from helpgate.tickets import categories, routing, tickets
from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai import learning
from helpgate.workflows.ai.triage import MAX_BODY_CHARS, SkillInfo, TicketText, TriageOutcome
from helpgate.workflows.ai.triaging import triage_ticket as classify
from helpgate.workflows.functions.deps import Deps, log_failure
from helpgate.workflows.step import Context, Step, Workflow


def _text(ticket: Ticket, first_text: str) -> tuple[TicketText, routing.Seen]:
    text = TicketText(
        number=ticket.number,
        subject=ticket.subject,
        body=first_text[:MAX_BODY_CHARS],
        requester=ticket.requester.email,
    )
    return text, routing.Seen.of(ticket)


async def _read(ticket_id: PydanticObjectId, data: dict[str, Any]) -> tuple[TicketText, routing.Seen] | None:
    """The new ticket and its first message: as `ticket/created` carried them, else read from the store (None: the
    ticket is gone). What triage records is conditional on the fields it read (Seen), so a change since is kept."""
    if (opened := tickets.as_opened(ticket_id, data)) is not None:
        return _text(*opened)
    ticket = await tickets.get_by_id(ticket_id)
    if ticket is None:
        return None
    first = await tickets.opening_message(ticket)
    return _text(ticket, first.text if first else "")


def triage_ticket(deps: Deps) -> Workflow:
    async def classify_step(ticket_id: PydanticObjectId, data: dict[str, Any]) -> dict[str, Any] | None:
        found = await _read(ticket_id, data)
        if found is None:
            return None
        text, seen = found
        catalog = [SkillInfo(name=skill.name, description=skill.description) for skill in await skills.for_triage()]
        kinds = [
            CategoryEntry(entry.name, entry.description, tuple(entry.keywords))
            for entry in await categories.for_triage()
        ]
        learned = await learning.for_triage() if deps.retrain_every is not None else None
        outcome = await classify(text, catalog, deps.triager, kinds, learned=learned)
        return {**outcome.model_dump(mode="json"), "seen": seen.as_json()}

    async def record_step(ticket_id: PydanticObjectId, answer: dict[str, Any]) -> dict[str, Any]:
        outcome = TriageOutcome.model_validate({name: value for name, value in answer.items() if name != "seen"})
        triage = outcome.triage
        record = TriageRecord(
            source=outcome.source,
            model=outcome.model,
            summary=triage.summary,
            helpful_notes=triage.helpful_notes,
            language=triage.language,
            sentiment=triage.sentiment,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            latency_ms=outcome.latency_ms,
            attempts=outcome.attempts,
            fallback_reason=outcome.fallback_reason,
        )
        seen = answer.get("seen")  # absent from runs of an older version: the ticket is read
        ticket = await routing.record_triage(
            ticket_id,
            seen=routing.Seen.from_json(seen) if isinstance(seen, dict) else None,
            priority=Priority(triage.priority),
            category=triage.category,
            skills=triage.skills,
            record=record,
            targets=deps.targets,
        )
        if ticket is None:
            return {"recorded": False}
        return {"recorded": True, "priority": str(ticket.priority), "category": ticket.category}

    async def handler(ctx: Context, step: Step) -> Any:
        ticket_id = PydanticObjectId(ctx.event.data["ticket_id"])
        # Reads the ticket and asks the model: repeated after a crash rather than recorded before the next step.
        answer = await step.run("classify", lambda: classify_step(ticket_id, ctx.event.data), reads_only=True)
        if answer is None:
            return {"skipped": "ticket not found"}
        recorded = await step.run("record", lambda: record_step(ticket_id, answer))
        return {"source": answer["source"], **recorded}

    return Workflow(
        id="triage-ticket",
        name="Triage a new ticket",
        trigger=events.TICKET_CREATED,
        handler=handler,
        retries=4,
        on_failure=log_failure,
    )
