"""helpgate's workflow functions, written once against the Step protocol (workflows/step.py).

ticket/created ──▶ triage-ticket ──(ticket/triaged)──▶ assign-ticket ──(ticket/assigned)──▶ notify-agent
              └──▶ acknowledge-customer              └──▶ sla-escalation (sleeps; cancelled by ticket/replied)
ticket/assigned (by staff, to someone else) ──▶ notify-agent
ticket/solved  ──▶ tell-customer-solved
user/created   ──▶ welcome-user
triage/retrain ──▶ retrain-triage (trains the learned triage, sleeps, sends the next triage/retrain)
"""

from __future__ import annotations

from helpgate.workflows.functions.assign import assign_ticket
from helpgate.workflows.functions.deps import Deps
from helpgate.workflows.functions.notify import acknowledge_customer, notify_agent, tell_customer_solved, welcome_user
from helpgate.workflows.functions.retrain import DEFAULT_EVERY, retrain_triage
from helpgate.workflows.functions.sla import sla_escalation
from helpgate.workflows.functions.triage import triage_ticket
from helpgate.workflows.step import Workflow


def build(deps: Deps) -> list[Workflow]:
    """Every function, bound to what it needs."""
    return [
        triage_ticket(deps),
        assign_ticket(deps),
        acknowledge_customer(deps),
        notify_agent(deps),
        tell_customer_solved(deps),
        sla_escalation(deps),
        welcome_user(deps),
        retrain_triage(deps.retrain_every or DEFAULT_EVERY),
    ]


__all__ = ["Deps", "build"]
