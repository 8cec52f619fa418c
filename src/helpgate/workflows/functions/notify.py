"""Mail that workflows send, and the one place that decides who is mailed about a ticket: the customer's
acknowledgement and "solved" mail, the assignee's notification, the welcome.

Each mail is queued inside a step with an idempotency key, so a step that runs again after a crash finds
the mail it queued before instead of queuing a second one.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from helpgate.accounts import users
from helpgate.core.clock import utcnow
from helpgate.mail_out import outbound, suppressions
from helpgate.mail_out.templates import TemplateKind
from helpgate.models import TicketStatus
from helpgate.outbox import events
from helpgate.tickets import replies, tickets
from helpgate.workflows.functions.deps import Deps, log_failure
from helpgate.workflows.step import Context, Step, Workflow


def _queued(mail: Any) -> dict[str, Any]:
    if mail is None:
        return {"queued": False, "reason": "rate limit for automatic mail reached"}
    return {"queued": True, "key": mail.key, "to": mail.to}


def acknowledge_customer(deps: Deps) -> Workflow:
    """Once per ticket; never for automatic mail, suppressed senders or mail that failed DMARC."""

    async def acknowledge_step(
        ticket_id: PydanticObjectId, data: dict[str, Any], answers: outbound.Parent | None
    ) -> dict[str, Any]:
        # The ticket as it opened (carried by its event) is what the acknowledgement needs: who, which mailbox,
        # the number and subject, whether the sender failed DMARC.
        opened = tickets.as_opened(ticket_id, data)
        ticket = opened[0] if opened is not None else await tickets.get_by_id(ticket_id)
        if ticket is None:
            return {"queued": False, "reason": "ticket not found"}
        if ticket.auth_failed:
            return {"queued": False, "reason": "sender failed DMARC: no mail to a possibly forged address"}
        suppressed = await suppressions.reasons([ticket.requester.email])
        if suppressed:
            return {"queued": False, "reason": f"sender suppressed: {suppressed[ticket.requester.email]}"}
        mail = await replies.acknowledge(
            ticket=ticket, outgoing=deps.outgoing, idempotency=f"ack {ticket.id}", screened=True, answers=answers
        )
        return _queued(mail)

    async def handler(ctx: Context, step: Step) -> Any:
        if ctx.event.data.get("automatic"):
            return {"queued": False, "reason": "automatic mail is never answered"}
        ticket_id = PydanticObjectId(ctx.event.data["ticket_id"])
        opened_by = ctx.event.data.get("opened_by")  # absent for tickets opened over the API, and from older versions
        answers = (
            outbound.Parent(str(opened_by["message_id"]), [str(ref) for ref in opened_by.get("references", [])])
            if isinstance(opened_by, dict) and opened_by.get("message_id")
            else None
        )
        return await step.run("acknowledge", lambda: acknowledge_step(ticket_id, ctx.event.data, answers))

    return Workflow(
        id="acknowledge-customer",
        name="Acknowledge a new ticket",
        trigger=events.TICKET_CREATED,
        handler=handler,
        on_failure=log_failure,
    )


def notify_agent(deps: Deps) -> Workflow:
    """Tell the assignee, with the triage's summary and notes: after an automatic assignment, or when staff
    assign someone else (not themselves)."""

    async def notify_step(ticket_id: PydanticObjectId, assignee_id: str, assigned_by: str, key: str) -> dict[str, Any]:
        ticket = await tickets.get_by_id(ticket_id)
        if ticket is None:
            return {"queued": False, "reason": "ticket not found"}
        agent = ticket.assignee
        if agent is None or str(agent.user_id) != assignee_id:
            return {"queued": False, "reason": "assigned to someone else meanwhile: they are told"}
        triage = None
        if ticket.triage is not None:
            triage = {
                **ticket.triage.model_dump(include={"summary", "helpful_notes", "source"}),
                "priority": str(ticket.priority),
                "category": ticket.category or "",
            }
        mail = await outbound.queue_assigned(
            outgoing=deps.outgoing,
            ticket=ticket,
            to=agent.email,
            agent_name=agent.name,
            assigned_by=assigned_by,
            triage=triage,
            now=utcnow(),
            idempotency=key,
        )
        return _queued(mail)

    async def by_whom(data: dict[str, Any]) -> str:
        if data.get("by") is None:
            return f"Automatic assignment ({data.get('reason', '')})"
        staff = await users.get(PydanticObjectId(str(data["by"])))
        return (staff.name or staff.email) if staff is not None else "A colleague"

    async def handler(ctx: Context, step: Step) -> Any:
        data = ctx.event.data
        if data.get("by") is not None and data.get("by") == data.get("assignee_id"):
            return {"queued": False, "reason": "assigned to themselves"}
        ticket_id = PydanticObjectId(data["ticket_id"])
        key = f"assigned {ctx.event.id}"

        async def notify() -> dict[str, Any]:
            return await notify_step(ticket_id, str(data["assignee_id"]), await by_whom(data), key)

        return await step.run("notify", notify)

    return Workflow(
        id="notify-agent",
        name="Tell the agent about a ticket assigned to them",
        trigger=events.TICKET_ASSIGNED,
        handler=handler,
        on_failure=log_failure,
    )


def tell_customer_solved(deps: Deps) -> Workflow:
    """The "your ticket is solved" mail, when staff mark a ticket solved (not when it is reopened meanwhile)."""

    async def solved_step(ticket_id: PydanticObjectId, key: str) -> dict[str, Any]:
        ticket = await tickets.get_by_id(ticket_id)
        if ticket is None:
            return {"queued": False, "reason": "ticket not found"}
        if ticket.status is not TicketStatus.SOLVED:
            return {"queued": False, "reason": f"{ticket.status} again before the mail went out"}
        return _queued(await replies.tell_solved(ticket=ticket, outgoing=deps.outgoing, idempotency=key))

    async def handler(ctx: Context, step: Step) -> Any:
        ticket_id = PydanticObjectId(ctx.event.data["ticket_id"])
        key = f"solved {ctx.event.id}"
        return await step.run("tell-customer", lambda: solved_step(ticket_id, key))

    return Workflow(
        id="tell-customer-solved",
        name="Tell the customer their ticket is solved",
        trigger=events.TICKET_SOLVED,
        handler=handler,
        on_failure=log_failure,
    )


def welcome_user(deps: Deps) -> Workflow:
    """A welcome mail for accounts an admin made through the API or the CLI (customers created from their
    own mail get the ticket acknowledgement; self-service sign-ups get the mail with their code)."""

    async def welcome_step(user_id: PydanticObjectId) -> dict[str, Any]:
        user = await users.get(user_id)
        if user is None or not user.active:
            return {"queued": False, "reason": "user not found or inactive"}
        mail = await outbound.queue_automatic(
            outgoing=deps.outgoing,
            template=TemplateKind.WELCOME,
            to=user.email,
            subject=f"Welcome to {deps.outgoing.display_name}",
            context={
                "user_name": user.name,
                "email": user.email,
                "role": str(user.role),
                "support_address": deps.support_address,
            },
            now=utcnow(),
            idempotency=f"welcome {user.id}",
        )
        return _queued(mail)

    async def handler(ctx: Context, step: Step) -> Any:
        source = ctx.event.data.get("source")
        if source in ("mail", "signup"):  # a customer from mail is acknowledged; a sign-up gets its code mail
            return {"queued": False, "reason": f"created by {source}"}
        user_id = PydanticObjectId(ctx.event.data["user_id"])
        return await step.run("welcome", lambda: welcome_step(user_id))

    return Workflow(
        id="welcome-user",
        name="Welcome a new user",
        trigger=events.USER_CREATED,
        handler=handler,
        on_failure=log_failure,
    )


__all__ = ["acknowledge_customer", "notify_agent", "tell_customer_solved", "welcome_user"]
