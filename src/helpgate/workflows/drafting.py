"""Reply drafts for agents (API and console): the thread read as its viewer may see it, a limit per agent, and
the AI's draft, which is returned, never sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from helpgate.accounts import sessions
from helpgate.core import rate_limits
from helpgate.core.errors import Conflict, Forbidden, TooManyAttempts
from helpgate.core.rate_limits import Limit
from helpgate.models import User
from helpgate.tickets import tickets
from helpgate.workflows.ai import drafts
from helpgate.workflows.ai.drafts import Draft
from helpgate.workflows.ai.provider import Provider

PER_HOUR = Limit(30, timedelta(hours=1))
NO_AI = "no AI is configured (set GEMINI_API_KEY or OPENAI_BASE_URL): the keyword triage writes no drafts"


async def draft(*, viewer: User, number: int, drafter: Provider | None, now: datetime) -> Draft:
    """The AI's draft of the next reply on ticket `number`: Forbidden for customers, Conflict without an AI,
    TooManyAttempts past PER_HOUR drafts by this agent, TriageFailed (502) when the AI gives no usable answer."""
    if not viewer.is_staff:
        raise Forbidden("only agents and admins can do this")
    ticket, messages = await tickets.get_ticket(viewer=viewer, number=number)
    if drafter is None:
        raise Conflict(NO_AI)
    if not await rate_limits.hit(key=f"draft:{viewer.id}", limit=PER_HOUR, now=now):
        raise TooManyAttempts("too many drafts; try again later", retry_after=sessions.retry_after(PER_HOUR, now))
    return await drafter.draft(drafts.thread_of(ticket, messages))
