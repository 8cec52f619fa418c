"""assign-ticket: after triage, give the ticket to the agent whose skills fit best (least loaded on ties)."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from helpgate.outbox import events
from helpgate.tickets import routing
from helpgate.workflows.functions.deps import Deps, log_failure
from helpgate.workflows.step import Context, Step, Workflow


def assign_ticket(deps: Deps) -> Workflow:
    async def assign_step(ticket_id: PydanticObjectId, skills: list[str] | None) -> dict[str, Any]:
        ticket, choice = await routing.assign_automatically(ticket_id, skills=skills)
        return {
            "assignee": choice.user.email if choice.user else None,
            "reason": choice.reason,
            "ticket_number": ticket.number if ticket else None,
        }

    async def handler(ctx: Context, step: Step) -> Any:
        ticket_id = PydanticObjectId(ctx.event.data["ticket_id"])
        skills = ctx.event.data.get("skills")  # announced by triage (absent from events of older versions)
        return await step.run("assign", lambda: assign_step(ticket_id, skills if isinstance(skills, list) else None))

    return Workflow(
        id="assign-ticket",
        name="Assign a triaged ticket",
        trigger=events.TICKET_TRIAGED,
        handler=handler,
        on_failure=log_failure,
        concurrency=1,  # one choice at a time, so two tickets arriving together see each other's load
    )
