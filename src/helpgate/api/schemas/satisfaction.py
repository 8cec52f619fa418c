"""Customers' ratings per agent and week (GET /api/reports/satisfaction)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from helpgate.api import examples
from helpgate.tickets.ratings import Satisfaction, Tally


class TallyOut(BaseModel):
    good: int
    bad: int
    comments: int = Field(description="ratings that came with a comment")

    @classmethod
    def of(cls, tally: Tally) -> TallyOut:
        return cls(good=tally.good, bad=tally.bad, comments=tally.comments)


class AgentWeekOut(TallyOut):
    agent: str = Field(description="the ticket's assignee when it was rated, or (unassigned)")
    week: str = Field(description="ISO week of the rating, such as 2026-W49")


class SatisfactionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SATISFACTION]})
    since: datetime
    until: datetime
    by_agent: dict[str, TallyOut]
    weeks: list[AgentWeekOut] = Field(description="per agent and week, oldest week first")

    @classmethod
    def of(cls, report: Satisfaction) -> SatisfactionOut:
        return cls(
            since=report.since,
            until=report.until,
            by_agent={agent: TallyOut.of(tally) for agent, tally in report.by_agent.items()},
            weeks=[
                AgentWeekOut(agent=agent, week=week, **TallyOut.of(tally).model_dump())
                for (agent, week), tally in report.weeks.items()
            ],
        )
