"""Reports for admins: the dashboard's numbers, as the console's dashboard draws them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from helpgate.api.deps import AdminUser
from helpgate.api.openapi import errors
from helpgate.api.schemas.reports import DashboardOut
from helpgate.api.schemas.satisfaction import SatisfactionOut
from helpgate.core.clock import utcnow
from helpgate.tickets import ratings, reports

router = APIRouter(prefix="/api/reports", tags=["reports"], responses=errors(401, 403, 422))


@router.get("/satisfaction")
async def satisfaction(
    admin: AdminUser,
    weeks: Annotated[int, Query(ge=1, le=ratings.MAX_WEEKS, description="ISO weeks, this one included")] = 12,
) -> SatisfactionOut:
    """Customers' ratings (the links in the `ticket_solved` mail) per agent (the ticket's assignee when it was
    rated) and per ISO week: good, not good, and how many came with a comment. A ticket counts once, by its
    latest rating."""
    return SatisfactionOut.of(await ratings.satisfaction(viewer=admin, now=utcnow(), weeks=weeks))


@router.get("/dashboard")
async def dashboard(
    admin: AdminUser,
    days: Annotated[int, Query(ge=1, le=reports.MAX_DAYS, description="the period: this many UTC days to today")] = 30,
) -> DashboardOut:
    """Tickets opened and solved per day, the backlog by status and priority, first-response and resolution
    times (median and 90th percentile), SLA breaches, each agent's open tickets, and who triaged the tickets."""
    return DashboardOut.of(await reports.dashboard(viewer=admin, now=utcnow(), days=days))
