"""Triage quality for admins: how often the agents kept what triage decided, per source and week, and the state
of the learned triage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from helpgate.api.deps import AdminUser
from helpgate.api.openapi import errors
from helpgate.api.schemas.triage import TriageQualityOut
from helpgate.core.clock import utcnow
from helpgate.tickets import triage_quality
from helpgate.workflows.ai import learning

router = APIRouter(prefix="/api/triage", tags=["triage"], responses=errors(401, 403, 422))


@router.get("/quality")
async def quality(
    admin: AdminUser,
    weeks: Annotated[int, Query(ge=1, le=triage_quality.MAX_WEEKS, description="ISO weeks, this one included")] = 12,
) -> TriageQualityOut:
    """Of the tickets staff reviewed (changed a triaged category, priority or skills, or solved one as triaged),
    per triage source and ISO week: how many kept triage's category and priority; and which categories staff
    changed into which. A ticket is counted once, by its latest review. `learned`: the classifier trained on the
    reviewed tickets, how it did against the keyword tables, and which fields it answers."""
    quality = await triage_quality.quality(viewer=admin, now=utcnow(), weeks=weeks)
    return TriageQualityOut.of(quality, await learning.state())
