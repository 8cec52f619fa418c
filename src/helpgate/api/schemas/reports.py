"""The dashboard's numbers (GET /api/reports/dashboard)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from helpgate.api import examples
from helpgate.tickets.reports import Dashboard, Durations

NO_PRIORITY = "none"


class DayOut(BaseModel):
    day: date
    opened: int
    solved: int  # marked solved by staff that day


class DurationsOut(BaseModel):
    count: int = Field(description="tickets measured")
    median_seconds: float | None
    p90_seconds: float | None = Field(description="90th percentile (nearest rank)")

    @classmethod
    def of(cls, durations: Durations) -> DurationsOut:
        return cls(count=durations.count, median_seconds=durations.median, p90_seconds=durations.p90)


class LoadOut(BaseModel):
    email: str
    name: str
    open: int = Field(description="open tickets (new, open, pending) assigned to them")
    away: bool


class DashboardOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.DASHBOARD]})
    since: datetime
    until: datetime
    days: list[DayOut] = Field(description="each day of the period, oldest first (UTC days)")
    backlog: dict[str, dict[str, int]] = Field(description="open tickets now, by status then priority (`none`)")
    first_response: DurationsOut = Field(description="tickets opened in the period that got an agent's reply")
    resolution: DurationsOut = Field(description="tickets solved in the period: from opened to solved")
    sla_breaches: int = Field(description="tickets opened in the period answered after their target, or not yet")
    load: list[LoadOut] = Field(description="active agents and admins, most open tickets first")
    triage_sources: dict[str, int] = Field(description="tickets opened in the period by who triaged them")

    @classmethod
    def of(cls, dashboard: Dashboard) -> DashboardOut:
        return cls(
            since=dashboard.since,
            until=dashboard.until,
            days=[DayOut(day=day.day, opened=day.opened, solved=day.solved) for day in dashboard.days],
            backlog={
                str(status): {str(priority or NO_PRIORITY): count for priority, count in row.items()}
                for status, row in dashboard.backlog.items()
            },
            first_response=DurationsOut.of(dashboard.first_response),
            resolution=DurationsOut.of(dashboard.resolution),
            sla_breaches=dashboard.sla_breaches,
            load=[LoadOut(email=each.email, name=each.name, open=each.open, away=each.away) for each in dashboard.load],
            triage_sources=dashboard.triage_sources,
        )
