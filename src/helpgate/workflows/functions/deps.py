"""What workflow functions need from the running gateway, passed in (never read from globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from helpgate.mail_out.outgoing import Outgoing
from helpgate.tickets.routing import Targets
from helpgate.workflows.ai.provider import Provider
from helpgate.workflows.step import Context

log = logging.getLogger("helpgate.workflows")


@dataclass(frozen=True)
class Deps:
    outgoing: Outgoing
    targets: Targets
    support_address: str  # where customers write (named in the welcome mail)
    triager: Provider | None = None  # None: the heuristic triage
    retrain_every: timedelta | None = None  # how often the learned triage is trained; None: no learned triage


async def log_failure(ctx: Context, error: str) -> None:
    """The on-failure handler of every function: one line an operator can search for."""
    log.error(
        "workflow.failed_for_good event=%s name=%s ticket=%s error=%s",
        ctx.event.id,
        ctx.event.name,
        ctx.event.data.get("ticket_number"),
        error,
    )
