"""The triage a ticket gets: the configured AI provider's; otherwise (no AI, or it failed) the learned classifier's
where it beat the keyword tables, else the keyword tables'; the ticket says which and why."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from helpgate.core import metrics
from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai.heuristic import heuristic_triage
from helpgate.workflows.ai.learned import learned_triage
from helpgate.workflows.ai.learning import Active
from helpgate.workflows.ai.provider import Provider, TriageFailed
from helpgate.workflows.ai.triage import DEFAULT_CATEGORIES, SkillInfo, TicketText, TriageOutcome

logger = logging.getLogger(__name__)

NO_KEY_REASON = "no AI provider configured (GEMINI_API_KEY, OPENAI_BASE_URL)"
NO_KEY_KIND = "no_key"


async def triage_ticket(
    ticket: TicketText,
    catalog: Sequence[SkillInfo],
    triager: Provider | None,
    categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES,
    *,
    learned: Active | None = None,
) -> TriageOutcome:
    """The provider's triage when one is configured and answers; otherwise the `learned` model's (when given: it
    beat the keyword tables) or the heuristic's, saying why. All choose from `categories` (the store's catalog; the
    defaults when not given)."""
    started = time.monotonic()
    if triager is None:
        return _fallback(ticket, catalog, categories, learned, NO_KEY_REASON, started, None, None)
    try:
        outcome = await triager.triage(ticket, catalog, categories)
    except TriageFailed as failure:
        return _fallback(ticket, catalog, categories, learned, failure.detail, started, failure, triager.model)
    logger.info(
        "triage.done ticket=%s source=%s latency_ms=%s attempts=%s category=%s priority=%s",
        ticket.number,
        outcome.source,
        outcome.latency_ms,
        outcome.attempts,
        outcome.triage.category,
        outcome.triage.priority,
    )
    metrics.observe_triage(source=outcome.source, fallback_reason=None, seconds=time.monotonic() - started)
    return outcome


def _fallback(
    ticket: TicketText,
    catalog: Sequence[SkillInfo],
    categories: Sequence[CategoryEntry],
    learned: Active | None,
    reason: str,
    started: float,
    failure: TriageFailed | None,
    model: str | None,
) -> TriageOutcome:
    if learned is not None:
        triage = learned_triage(ticket, catalog, categories, learned.classifier, learned.answers, learned.about)
    else:
        triage = heuristic_triage(ticket, catalog, categories)
    source = "learned" if learned is not None else "heuristic"
    outcome = TriageOutcome(
        triage=triage,
        source=source,
        model=model,  # the AI model that was asked, if any: its failed calls may have cost tokens
        input_tokens=failure.input_tokens if failure else None,
        output_tokens=failure.output_tokens if failure else None,
        latency_ms=round((time.monotonic() - started) * 1000),
        attempts=failure.attempts if failure else 0,
        fallback_reason=reason,
    )
    logger.info(
        "triage.fallback ticket=%s source=%s latency_ms=%s attempts=%s category=%s priority=%s reason=%s",
        ticket.number,
        source,
        outcome.latency_ms,
        outcome.attempts,
        triage.category,
        triage.priority,
        reason,
    )
    kind = failure.kind if failure else NO_KEY_KIND
    metrics.observe_triage(source=source, fallback_reason=kind, seconds=time.monotonic() - started)
    return outcome
