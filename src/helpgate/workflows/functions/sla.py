"""sla-escalation: wait until the first-response target; unanswered by then, raise priority and tell admins.

Cancelled by `ticket/replied` for the same ticket (an agent answered). If the cancel is missed (a reply
while the runner was down), the step finds `first_response_at` set and does nothing.
The local runner stores a new run already asleep (`sleeps_first`), so it is not executed until the target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from helpgate.core.clock import utcnow
from helpgate.mail_out import compose, outbound
from helpgate.mail_out.templates import TemplateKind
from helpgate.outbox import events
from helpgate.tickets import routing
from helpgate.workflows.functions.deps import Deps, log_failure
from helpgate.workflows.step import Cancel, Context, Step, Workflow

SLEEP_STEP = "until-first-response-target"


def first_sleep(data: dict[str, Any]) -> tuple[str, datetime]:
    """The sleep a run begins with: its step id and wake time, the first-response target (now, if that passed).
    The handler sleeps by it, and the local runner stores a new run already sleeping by it (`sleeps_first`)."""
    return SLEEP_STEP, max(datetime.fromisoformat(data["response_due_at"]), utcnow())


def sla_escalation(deps: Deps) -> Workflow:
    async def escalate_step(ticket_id: PydanticObjectId, priority_was: str, due_at: str) -> dict[str, Any]:
        ticket = await routing.escalate_if_unanswered(ticket_id)
        if ticket is None:
            return {"escalated": False}
        told = []
        for admin in await routing.admins():
            mail = await outbound.queue_automatic(
                outgoing=deps.outgoing,
                template=TemplateKind.SLA_ESCALATION,
                to=admin.email,
                subject=compose.ticket_subject(ticket.subject, ticket.number, prefix="No answer yet: "),
                context={
                    "ticket": outbound.ticket_context(ticket),
                    "priority_was": priority_was,
                    "priority": str(ticket.priority),
                    "due_at": due_at,
                    "assignee": ticket.assignee.email if ticket.assignee else "",
                },
                now=utcnow(),
                ticket=ticket,
                thread=False,
                idempotency=f"sla {ticket.id} {admin.id}",
                to_staff=True,
            )
            if mail is not None:
                told.append(admin.email)
        return {"escalated": True, "priority": str(ticket.priority), "told": told}

    async def handler(ctx: Context, step: Step) -> Any:
        data = ctx.event.data
        step_id, wake_at = first_sleep(data)
        await step.sleep(step_id, max(wake_at - utcnow(), timedelta(0)))
        due_at = datetime.fromisoformat(data["response_due_at"])
        ticket_id = PydanticObjectId(data["ticket_id"])
        return await step.run("escalate", lambda: escalate_step(ticket_id, str(data["priority"]), due_at.isoformat()))

    return Workflow(
        id="sla-escalation",
        name="Escalate a ticket past its first-response target",
        trigger=events.TICKET_TRIAGED,
        handler=handler,
        cancel=(Cancel(event=events.TICKET_REPLIED, match="ticket_id"),),
        on_failure=log_failure,
        sleeps_first=first_sleep,
    )
