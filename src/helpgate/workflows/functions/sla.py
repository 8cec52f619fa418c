"""sla-escalation: wait until the first-response target; unanswered by then, raise priority and tell admins.

Cancelled by `ticket/replied` for the same ticket (an agent answered). If the cancel is missed (a reply
while the runner was down), the step finds `first_response_at` set and does nothing.
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
        due_at = datetime.fromisoformat(data["response_due_at"])
        await step.sleep("until-first-response-target", max(due_at - utcnow(), timedelta(0)))
        ticket_id = PydanticObjectId(data["ticket_id"])
        return await step.run("escalate", lambda: escalate_step(ticket_id, str(data["priority"]), due_at.isoformat()))

    return Workflow(
        id="sla-escalation",
        name="Escalate a ticket past its first-response target",
        trigger=events.TICKET_TRIAGED,
        handler=handler,
        cancel=(Cancel(event=events.TICKET_REPLIED, match="ticket_id"),),
        on_failure=log_failure,
    )
