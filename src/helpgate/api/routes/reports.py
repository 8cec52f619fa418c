"""Reports for admins: the dashboard's numbers, as the console's dashboard draws them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from helpgate.api.deps import AdminUser
from helpgate.api.openapi import errors
from helpgate.api.schemas.reports import DashboardOut
from helpgate.core.clock import utcnow
from helpgate.tickets import reports

router = APIRouter(prefix="/api/reports", tags=["reports"], responses=errors(401, 403, 422))


@router.get("/dashboard")
async def dashboard(
    admin: AdminUser,
    days: Annotated[int, Query(ge=1, le=reports.MAX_DAYS, description="the period: this many UTC days to today")] = 30,
) -> DashboardOut:
    """Tickets opened and solved per day, the backlog by status and priority, first-response and resolution
    times (median and 90th percentile), SLA breaches, each agent's open tickets, and who triaged the tickets."""
    return DashboardOut.of(await reports.dashboard(viewer=admin, now=utcnow(), days=days))
