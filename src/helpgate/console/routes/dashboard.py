"""The admins' dashboard: the numbers of GET /api/reports/dashboard, drawn (inline SVG, made on the server)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from helpgate.console import charts, pages
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer
from helpgate.core.clock import utcnow
from helpgate.tickets import reports, triage_quality
from helpgate.workflows.ai import learning

routes = router()

PERIODS = (7, 30, 90)


@routes.get("/dashboard")
async def dashboard(
    request: Request, viewer: CurrentViewer, days: Annotated[int, Query(ge=1, le=reports.MAX_DAYS)] = 30
) -> Response:
    now = utcnow()
    board = await reports.dashboard(viewer=viewer.user, now=now, days=days)
    quality = await triage_quality.quality(viewer=viewer.user, now=now, weeks=-(-days // 7))
    return pages.page(
        request,
        viewer,
        "dashboard.html.j2",
        board=board,
        quality=quality,
        learned=(await learning.state()).model,
        chart=charts.opened_and_solved(board.days),
        duration=charts.duration,
        periods=PERIODS,
        period=days,
        most_load=max([1, *(each.open for each in board.load)]),
    )
